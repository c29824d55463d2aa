"""Prompts: the internal message format and the only place prompt text is built."""

from longlens.prompts.messages import Image, Message, Part, Text, Video, forced_prefix
from longlens.prompts.profiles import ZoomProfile, load_profile, profile_names
from longlens.prompts.zoom import ClipView, format_question, zoom_messages

__all__ = [
    "ClipView",
    "Image",
    "Message",
    "Part",
    "Text",
    "Video",
    "ZoomProfile",
    "forced_prefix",
    "format_question",
    "load_profile",
    "profile_names",
    "zoom_messages",
]

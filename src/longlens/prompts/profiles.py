"""Prompt profiles: the exact strings a checkpoint was trained on, kept as package data.

A profile is data, not code, so a checkpoint's protocol can be checked byte for byte and a new one added
without touching the loop. `load_profile("love-r1")` reads ``prompts/data/love-r1.json``; a path to a JSON
file with the same fields works too.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path

from longlens.errors import LongLensError


@dataclass(frozen=True)
class ZoomProfile:
    name: str
    origin: str
    system: str
    full_video_label: str
    """printf-style, takes (0, int(duration))."""
    clip_label: str
    """printf-style, takes (int(start), int(end))."""
    instruction: str
    """Appended to the question: how to answer or zoom."""
    choice_suffix: str
    """Appended to a multiple-choice question after its option lines."""
    open_suffix: str
    """Appended to an open (free-text) question."""
    span_suffix: str
    """Appended to a temporal-grounding question (the answer is ``[start, end]``)."""
    zoom_prefix: str
    answer_prefix: str
    """Forced at the last step, so the model must answer."""
    question_styles: dict = field(default_factory=dict, hash=False)
    """Other ways of writing a multiple-choice question, by name: ``{"template": "{question}...{options}",
    "option": "({letter}) {text}", "suffix": ...}`` (options joined by newlines). "default" is the Video-MME way
    built from `choice_suffix`."""
    presets: dict = field(default_factory=dict, hash=False)
    """Paper settings per benchmark (``{"lvbench": {"question_style": ..., "fast_frames": ...}}``): see
    `agents.zoom.paper_config`."""


def profile_names(kind: str = "zoom") -> list[str]:
    """Names of the packaged profiles of one kind ("zoom" or "navigate")."""
    data = resources.files("longlens.prompts") / "data"
    names = sorted(p.name[:-5] for p in data.iterdir() if p.name.endswith(".json"))
    kinds = {n: json.loads((data / f"{n}.json").read_text(encoding="utf-8")).get("kind", "zoom") for n in names}
    return [n for n in names if kinds[n] == kind]


def load_profile(name_or_path: str = "love-r1") -> ZoomProfile:
    """A zoom profile by name (packaged) or path."""
    data = read_profile(name_or_path, "zoom")
    wanted = {f.name for f in fields(ZoomProfile)}
    required = {f.name for f in fields(ZoomProfile) if f.default is MISSING and f.default_factory is MISSING}
    missing = required - set(data)
    if missing:
        raise LongLensError(f"prompt profile {name_or_path!r} lacks {', '.join(sorted(missing))}")
    return ZoomProfile(**{k: data[k] for k in wanted if k in data})


def read_profile(name_or_path: str, kind: str) -> dict:
    """The JSON of a profile of `kind`, by packaged name or path; a one-line error otherwise."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        ref = resources.files("longlens.prompts") / "data" / f"{name_or_path}.json"
        if not ref.is_file():
            raise LongLensError(f"unknown {kind} prompt profile {name_or_path!r}; known: "
                                f"{', '.join(profile_names(kind))} (or a .json path)")
        text = ref.read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("kind", "zoom") != kind:
        raise LongLensError(f"prompt profile {name_or_path!r} is a {data.get('kind', 'zoom')} profile, "
                            f"not a {kind} one; known {kind} profiles: {', '.join(profile_names(kind))}")
    return data

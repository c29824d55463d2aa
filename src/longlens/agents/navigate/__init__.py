"""The navigate agent (LongVideo-R1): `tree` partitions the video, `captions` captions its nodes (kept in a
store), `actions` parses the reasoning model's turns, `loop` runs the rounds of tool calls."""

from longlens.agents.navigate.loop import INVALID, VIDEOQA_RULES, NavigateAgent, NavigateConfig, caption_model_name

__all__ = ["INVALID", "VIDEOQA_RULES", "NavigateAgent", "NavigateConfig", "caption_model_name"]

"""The zoom agent (LOVE-R1): `actions` parses a reply (`Answer | Zoom | Malformed`), `loop` runs the fast view,
zoom steps and the forced last step."""

from longlens.agents.zoom.loop import AGENTS, IntervalPolicy, SharedFrames, ZoomAgent, ZoomConfig, paper_config

__all__ = ["AGENTS", "IntervalPolicy", "SharedFrames", "ZoomAgent", "ZoomConfig", "paper_config"]

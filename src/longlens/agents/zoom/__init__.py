"""The zoom agent (LOVE-R1): `actions` parses a reply (`Answer | Zoom | Malformed`), `loop` runs the fast view,
zoom steps and the forced last step, `policy` turns an asked interval into a clip, `shared` keeps the frames of
the videos in flight."""

from longlens.agents.zoom.loop import AGENTS, ZoomAgent, ZoomConfig, paper_config
from longlens.agents.zoom.policy import ClipDecision, IntervalPolicy
from longlens.agents.zoom.shared import SharedFrames

__all__ = ["AGENTS", "ClipDecision", "IntervalPolicy", "SharedFrames", "ZoomAgent", "ZoomConfig", "paper_config"]

"""Agents: parse actions, run the zoom and navigate loops, record traces."""

from longlens.agents.zoom.actions import Action, Answer, Malformed, Zoom, last_boxed, parse_action, parse_choice

__all__ = ["Action", "Answer", "Malformed", "Zoom", "last_boxed", "parse_action", "parse_choice"]

"""Serving the agents: an OpenAI-compatible HTTP API (`http`, `longlens serve`) and MCP tools (`mcp`,
`longlens mcp`), over one `Service` (agents, video root, frame cache, limits)."""

from longlens.serve.service import Limits, RequestError, ServedAgent, Service

__all__ = ["Limits", "RequestError", "ServedAgent", "Service"]

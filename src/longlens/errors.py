"""Exceptions that LongLens raises on bad input.

Every error carries a one-line message that names the thing at fault and, where there is one, the fix.
The CLI prints that line and exits with status 2; nothing else is shown.
"""


class LongLensError(Exception):
    """Base class: bad input or bad configuration, reported to the user in one line."""


class VideoError(LongLensError):
    """A video file cannot be used: missing, empty, truncated, not a video, or undecodable."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class PlanError(LongLensError, ValueError):
    """A sampling request that cannot be met (a clip too short, outside the video, reversed)."""


class ConfigError(LongLensError, ValueError):
    """A setting out of its range or not one of its choices, in any config (agents, recipes, rows): one rule for
    every config check, a user error the CLI prints in one line and a `ValueError` for code that checks values."""


class MissingExtraError(LongLensError, ImportError):
    """An optional dependency is not installed."""

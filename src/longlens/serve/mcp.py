"""`longlens mcp`: the agents as MCP tools (the official `mcp` SDK), over stdio or streamable HTTP.

Tools: ``ask_video(path, question, options?, agent?)``, ``video_info(path)`` and
``video_frames(path, start_s, end_s, n)`` (images). Paths are judged as `longlens serve` judges them (under
``--videos``, or a ``data:`` URL; ``http(s)`` only with ``--allow-url``), with the same limits. A refused or
failed call is a tool error with a one-line reason.
"""

from __future__ import annotations

import io
import time

import numpy as np

from longlens.errors import LongLensError
from longlens.serve.service import RequestError, Service, check_options, summary
from longlens.video import decode
from longlens.video.plan import index_plan

MAX_FRAMES = 32
FRAME_SIDE = 768


def create_server(service: Service):
    from mcp.server.mcpserver import Image, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("longlens", instructions=(
        "Answers questions about long videos. Paths are relative to the server's video folder. ask_video runs an "
        "agent (zoom by default) and returns its answer with a summary of what it looked at; video_info and "
        "video_frames show the video itself."))

    def fail(exc: Exception) -> ToolError:
        return ToolError(str(exc))

    def info_of(path: str):
        try:
            return service.open(service.resolve(path, "path"), "path")
        except RequestError as exc:
            raise fail(exc) from None

    @server.tool()
    def ask_video(path: str, question: str, options: list[str] | None = None, agent: str | None = None) -> dict:
        """Answer a question about a video. `options` are the choices (answered with a letter), none for an open
        question; `agent` is one of the served agents (default: the first)."""
        t0 = time.perf_counter()
        try:
            served = service.agent(agent or next(iter(service.agents)))
            if not question.strip():
                raise RequestError(400, "missing_question", "the question is empty", "question")
            choices = check_options(options) if options is not None else ()
            info = service.open(service.resolve(path, "path"), "path")
            trace = service.answer(served, info, question.strip(), choices)
        except RequestError as exc:
            raise fail(exc) from None
        except LongLensError as exc:
            raise ToolError(f"the agent's model failed: {exc}") from None
        return summary(trace, served, time.perf_counter() - t0)

    @server.tool()
    def video_info(path: str) -> dict:
        """Duration, frame rate, size, codec and keyframes of a video."""
        info = info_of(path)
        return {"duration_s": round(info.duration_s, 3), "fps": round(info.fps, 3), "frames": info.n_frames,
                "width": info.width, "height": info.height, "rotation": info.rotation, "codec": info.codec,
                "keyframes": len(info.keyframes)}

    @server.tool()
    def video_frames(path: str, start_s: float, end_s: float, n: int = 8) -> list:
        """`n` frames (1 to 32) evenly spread over [start_s, end_s] seconds, as JPEG images (longer side at most
        768 pixels), each preceded by its time."""
        info = info_of(path)
        if not 1 <= n <= MAX_FRAMES:
            raise ToolError(f"n must be 1 to {MAX_FRAMES}, got {n}")
        if not (0 <= start_s <= end_s <= info.duration_s + 1e-6):
            raise ToolError(f"[{start_s:g}, {end_s:g}] must lie inside the video [0, {info.duration_s:.2f}] s, "
                            "start before end")
        times = np.linspace(start_s, end_s, n) if n > 1 else np.asarray([start_s])
        plan = index_plan(info, [info.index_at(float(t)) for t in times], max_side=FRAME_SIDE)
        frames = decode(info, plan, cache=service.cache)
        from PIL import Image as PILImage

        out: list = []
        for pixels, t in zip(frames.frames, frames.times_s, strict=True):
            buf = io.BytesIO()
            PILImage.fromarray(pixels).save(buf, format="JPEG", quality=90)
            out += [f"frame at {t:.2f} s", Image(data=buf.getvalue(), format="jpeg")]
        return out

    return server

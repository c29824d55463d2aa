"""What `longlens serve` and `longlens mcp` share: the agents they answer with, where a request's video may come
from, and the limits (concurrent questions, time, upload size).

A request names its video one of three ways, each judged here before anything is decoded:

* a path (plain, or ``file://``) under the server's ``--videos`` root: judged by the path as written, with
  ``..`` resolved but symlinks not followed (a link inside the root is the operator's choice);
* an ``http(s)://`` URL, only when the server allows URLs: downloaded to the server's upload folder, at most
  ``max_upload_mb``;
* an uploaded file as a ``data:`` URL (base64), at most ``max_upload_mb``.

Downloads and uploads are stored by content hash, so the same video sent twice is stored once and its frames,
cached by content, are decoded once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from longlens.agents.trace import Step, Trace
from longlens.errors import LongLensError, VideoError
from longlens.video import FrameCache, VideoInfo, open_video


class RequestError(LongLensError):
    """A request we refuse: `status` is the HTTP status, `code` the OpenAI error code, str() the one-line reason."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


Runner = Callable[..., Trace]
"""``runner(video, question, options, on_step=...) -> Trace``: an agent's ``run``."""


@dataclass(frozen=True)
class ServedAgent:
    name: str
    """The model id clients ask for, e.g. ``longlens-zoom``."""
    run: Runner
    backend: str
    """What answers underneath, in words (``offline``, ``openai:Qwen/...``)."""
    line: Callable[[Step], str] = lambda step: f"step {step.index}"
    """A step as one line of text (what `longlens ask` prints for it): streamed replies send these."""


@dataclass(frozen=True)
class Limits:
    concurrency: int = 4
    """Questions answered at once; more wait for a slot (within their timeout)."""
    timeout_s: float = 600.0
    """A question not answered within this is refused (the agent finishes its work in the background)."""
    max_upload_mb: float = 512.0
    allow_url: bool = False

    def __post_init__(self):
        if self.concurrency < 1:
            raise LongLensError(f"--concurrency must be 1 or more, got {self.concurrency}")
        if not self.timeout_s > 0:
            raise LongLensError(f"--timeout must be more than 0 seconds, got {self.timeout_s}")
        if not self.max_upload_mb > 0:
            raise LongLensError(f"--max-upload-mb must be more than 0, got {self.max_upload_mb}")


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)
_EXT = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm", "video/x-matroska": ".mkv",
        "video/x-msvideo": ".avi", "video/mpeg": ".mpg"}


@dataclass
class Service:
    """The served agents, the video root, the frame cache and the limits: one per server process."""

    agents: dict[str, ServedAgent]
    videos: Path | None
    """Paths in requests must lie under this folder (None: the server takes no paths)."""
    cache: FrameCache | None
    limits: Limits = field(default_factory=Limits)
    uploads: Path | None = None
    """Where uploaded and downloaded videos are stored (default: `uploads` in the cache folder, or a temp folder)."""

    def __post_init__(self):
        if not self.agents:
            raise LongLensError("no agent to serve")
        if self.videos is not None:
            self.videos = Path(os.path.abspath(self.videos))
            if not self.videos.is_dir():
                raise LongLensError(f"--videos {self.videos}: no such folder; give the folder your videos are in")
        if self.uploads is None:
            base = self.cache.root if self.cache is not None else Path(tempfile.gettempdir()) / "longlens-serve"
            self.uploads = Path(base) / "uploads"
        self._slots = threading.BoundedSemaphore(self.limits.concurrency)

    # ------------------------------------------------------------------ agents
    def agent(self, name: str | None) -> ServedAgent:
        if not name:
            if len(self.agents) == 1:
                return next(iter(self.agents.values()))
            raise RequestError(400, "model_not_found", "name a model: " + ", ".join(self.agents), "model")
        if name not in self.agents:
            raise RequestError(404, "model_not_found",
                               f"no model {name!r} here; this server has {', '.join(self.agents)}", "model")
        return self.agents[name]

    def answer(self, agent: ServedAgent, video: VideoInfo, question: str, options: tuple[str, ...],
               on_step: Callable[[Step], None] | None = None, *, waited_s: float = 0.0) -> Trace:
        """Run `agent` on the question, in one of the server's slots (waiting for one within the timeout)."""
        if not self._slots.acquire(timeout=max(self.limits.timeout_s - waited_s, 0.001)):
            raise RequestError(503, "server_busy", f"all {self.limits.concurrency} question slots stayed busy for "
                                                   f"{self.limits.timeout_s:g} s; retry later or raise --concurrency")
        try:
            return agent.run(video, question, options, on_step=on_step)
        finally:
            self._slots.release()

    # ------------------------------------------------------------------ videos
    def resolve(self, ref: str, param: str = "video") -> Path:
        """The local file a request's video reference names (a path, an http(s) URL or a data: URL)."""
        ref = (ref or "").strip()
        if not ref:
            raise RequestError(400, "missing_video", "the request names no video: send a video_url part "
                                                     "(a path under the server's --videos, or a data: URL)", param)
        if ref[:5].lower() == "data:":
            return self._upload(ref, param)
        scheme = urlparse(ref).scheme.lower()
        if scheme in ("http", "https"):
            return self._download(ref, param)
        if scheme == "file":
            ref = unquote(urlparse(ref).path)
        elif scheme and len(scheme) > 1:  # (a one-letter scheme is a Windows drive)
            raise RequestError(400, "invalid_video", f"unsupported video URL scheme {scheme!r}: give a path under "
                                                     "--videos, an http(s) URL or a data: URL", param)
        return self._confined(ref, param)

    def _confined(self, ref: str, param: str) -> Path:
        if self.videos is None:
            raise RequestError(400, "paths_not_served", "this server takes no video paths (start it with --videos "
                                                        "DIR), only uploads as data: URLs", param)
        p = Path(ref)
        full = Path(os.path.normpath(p if p.is_absolute() else self.videos / p))  # '..' resolved, links not followed
        root = self.videos
        if full != root and root not in full.parents:
            raise RequestError(403, "path_outside_root", f"{ref}: outside the server's video folder; give a path "
                                                         "relative to it", param)
        if not full.is_file():
            raise RequestError(404, "video_not_found", f"{ref}: no such video in the server's video folder", param)
        return full

    def _upload(self, ref: str, param: str) -> Path:
        m = _DATA_URL.match(ref)
        if not m:
            raise RequestError(400, "invalid_video", "a data: URL must be base64 (data:video/mp4;base64,...)", param)
        payload = ref[m.end():]
        limit = int(self.limits.max_upload_mb * 2**20)
        if len(payload) * 3 // 4 > limit:
            raise RequestError(413, "video_too_large", f"the uploaded video is about {len(payload) * 3 / 4 / 2**20:.0f}"
                                                       f" MB; this server takes at most {self.limits.max_upload_mb:g} "
                                                       "MB (--max-upload-mb)", param)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "invalid_video", "the data: URL is not valid base64", param) from None
        if not data:
            raise RequestError(400, "invalid_video", "the uploaded video is empty (0 bytes)", param)
        return self._store(data, _EXT.get((m.group("mime") or "").lower(), ".mp4"))

    def _download(self, url: str, param: str) -> Path:
        if not self.limits.allow_url:
            raise RequestError(403, "urls_not_allowed", "this server does not fetch video URLs (start it with "
                                                        "--allow-url); send a path under --videos or a data: URL",
                               param)
        import urllib.error
        import urllib.request

        limit = int(self.limits.max_upload_mb * 2**20)
        chunks, size = [], 0
        try:
            with urllib.request.urlopen(url, timeout=min(self.limits.timeout_s, 120)) as r:  # noqa: S310 (http(s) only)
                while chunk := r.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise RequestError(413, "video_too_large", f"{url}: more than {self.limits.max_upload_mb:g} "
                                                                   "MB (--max-upload-mb)", param)
                    chunks.append(chunk)
        except urllib.error.HTTPError as exc:
            raise RequestError(400, "video_not_found", f"{url}: the server answered HTTP {exc.code}", param) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RequestError(400, "video_not_found", f"{url}: cannot be fetched ({type(exc).__name__})",
                               param) from None
        suffix = Path(urlparse(url).path).suffix.lower()
        return self._store(b"".join(chunks), suffix if re.fullmatch(r"\.[a-z0-9]{2,5}", suffix) else ".mp4")

    def _store(self, data: bytes, suffix: str) -> Path:
        path = self.uploads / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return path

    def open(self, path: Path, param: str = "video") -> VideoInfo:
        """The video's `VideoInfo`; an unreadable video is the client's error (400), with the reason."""
        try:
            return open_video(path, cache=self.cache)
        except VideoError as exc:
            raise RequestError(400, "unreadable_video", self._public(str(exc)), param) from None

    def _public(self, message: str) -> str:
        """A video error as a client may see it: without the server's folders in it."""
        for root in (self.videos, self.uploads):
            if root is not None:
                message = message.replace(str(root) + os.sep, "")
        return message


def summary(trace: Trace, agent: ServedAgent, wall_s: float) -> dict:
    """The trace in brief, for the `longlens` field of a reply and the result of the MCP tool (documented in the
    README): the answer as the reply states it, the option letter, whether it is a guess, the clips zoomed, the
    steps, tokens, frames and seconds."""
    t = trace.totals
    spans = [s.clip_added for s in trace.steps if s.clip_added]
    return {
        "agent": agent.name,
        "backend": agent.backend,
        "answer": reply_text(trace),
        "choice": trace.choice,
        "guessed": bool(t.guessed),
        "steps": t.steps,
        "spans": spans,
        "visual_tokens": t.visual_tokens,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "frames_decoded": t.frames_decoded,
        "model_s": round(t.model_s, 3),
        "wall_s": round(wall_s, 3),
        "error": trace.error,
    }


def reply_text(trace: Trace) -> str:
    """The answer as a chat reply: the option letter and its text, or the open answer (no boxes)."""
    if trace.choice and trace.options and ord(trace.choice) - 65 < len(trace.options):
        return f"{trace.choice}. {trace.options[ord(trace.choice) - 65]}"
    return trace.answer or ""


def check_options(options, param: str = "options") -> tuple[str, ...]:
    """A request's answer options: 2 to 10 non-empty strings (stripped); `RequestError` otherwise."""
    if not (isinstance(options, (list, tuple)) and 2 <= len(options) <= 10
            and all(isinstance(o, str) and o.strip() for o in options)):
        raise RequestError(400, "invalid_request", f"'{param}' must be a list of 2 to 10 non-empty strings", param)
    return tuple(o.strip() for o in options)


_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[.):]\s+(.+?)\s*$")


def split_options(text: str) -> tuple[str, tuple[str, ...]]:
    """A question's text and its options, when the options are lines ``A. ...`` (A, B, C ... in order)."""
    lines = text.splitlines()
    options: list[str] = []
    rest: list[str] = []
    for line in lines:
        m = _OPTION_LINE.match(line)
        if m and m.group(1) == chr(65 + len(options)):
            options.append(m.group(2))
        else:
            rest.append(line)
    if len(options) < 2:
        return text.strip(), ()
    return "\n".join(rest).strip(), tuple(options)


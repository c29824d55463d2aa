"""The frames of a synthetic video without encoding: scenes, moving shapes, needles and frame code.

A video is a sequence of scenes cut hard into one another. Frames are made directly as yuv420p planes:
a scene's texture is computed once, larger than the frame, and every frame is a slice of it (the camera
pans) plus a few small precomputed patches. ``FrameMaker`` renders any frame by index and gives the
answer key.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from longlens.synth.code import MAX_INDEX, FrameCodePainter
from longlens.synth.key import AnswerKey
from longlens.synth.needles import SynthError, _plan_needles
from longlens.synth.patches import TEXT_CAP, _moving_shape_patch, _Patch
from longlens.synth.texture import _even, _scene_texture

# --- scenes --------------------------------------------------------------------------------------------


def _reflect(p: int, span: int) -> int:
    """Bounce ``p`` back and forth in [0, span]."""
    if span <= 0:
        return 0
    m = p % (2 * span)
    return m if m <= span else 2 * span - m


@dataclass
class _Mover:
    patch: _Patch
    x0: int
    y0: int
    vx: int  # even, px per frame; 2 mod 4 so that the shape moves on every frame
    vy: int

    def draw(self, Y, U, V, k: int) -> None:
        H, W = Y.shape
        x = _reflect(self.x0 + self.vx * k, W - self.patch.w)
        y = _reflect(self.y0 + self.vy * k, H - self.patch.h)
        self.patch.draw(Y, U, V, x & ~1, y & ~1)


class _Scene:
    """Textures, camera path and moving shapes of one scene (built on first use)."""

    def __init__(self, seed: int, index: int, start: int, width: int, height: int, fps: float):
        self.start = start
        rng = np.random.default_rng([seed, 2, index])
        self.mx, self.my = max(2, _even(0.12 * width)), max(2, _even(0.12 * height))
        scale = height / 720.0
        self.y, self.u, self.v = _scene_texture(rng, height + 2 * self.my, width + 2 * self.mx, scale)
        self.fps = fps

        def path(m: int) -> tuple[float, ...]:
            a1 = m * rng.uniform(0.5, 0.85)
            a2 = (m - a1) * rng.uniform(0.2, 0.9)
            return (
                a1,
                rng.uniform(8, 30),
                rng.uniform(0, 2 * math.pi),
                a2,
                rng.uniform(2.5, 7),
                rng.random() * 6,
            )

        self.px, self.py = path(self.mx), path(self.my)
        self.movers = []
        for _ in range(int(rng.integers(2, 5))):
            patch = _moving_shape_patch(rng, height)
            speed = rng.uniform(1.5, 6.0) * scale * 30.0 / fps
            angle = rng.uniform(-0.9, 0.9)
            vx = 2 + 4 * max(0, round((speed * math.cos(angle) - 2) / 4))
            vx = vx if rng.random() < 0.5 else -vx
            vy = 2 * round(speed * math.sin(angle) / 2)
            x0 = int(rng.integers(0, max(1, width - patch.w) // 2 + 1)) * 2
            y0 = int(rng.integers(0, max(1, height - patch.h) // 2 + 1)) * 2
            self.movers.append(_Mover(patch, x0, y0, vx, vy))

    def offset(self, i: int) -> tuple[int, int]:
        t = (i - self.start) / self.fps
        out = []
        for m, (a1, p1, f1, a2, p2, f2) in ((self.mx, self.px), (self.my, self.py)):
            o = m + a1 * math.sin(2 * math.pi * t / p1 + f1) + a2 * math.sin(2 * math.pi * t / p2 + f2)
            out.append(min(2 * m, max(0, round(o))))
        return out[0], out[1]


def _fps_fraction(fps: float | Fraction) -> Fraction:
    f = Fraction(fps)
    if f.denominator > 1001:
        f = f.limit_denominator(1001)
    return f


class FrameMaker:
    """The frames and answer key of one synthetic video, without encoding (random access by index).

    ``render(i)`` returns frame ``i`` as a uint8 array of shape (H*3//2, W): the Y, U and V planes of
    yuv420p one after another, as ``av.VideoFrame.from_ndarray(..., format="yuv420p")`` takes it.
    """

    def __init__(
        self,
        *,
        duration_s: float,
        width: int = 1280,
        height: int = 720,
        fps: float = 30,
        gop_s: float = 5.0,
        seed: int = 0,
        needles: int | None = None,
        needle_kinds: Sequence[str] = ("text", "object"),
        frame_code: bool = False,
        scene_s: tuple[float, float] = (10.0, 60.0),
        text_cap: float = TEXT_CAP,
    ):
        _check_geometry(duration_s, width, height, fps, gop_s, scene_s)
        if not isinstance(text_cap, int | float) or not 0.005 <= text_cap <= 0.2:
            raise SynthError(f"text_cap must be a fraction of the frame height from 0.005 to 0.2, got {text_cap!r}")
        self.width, self.height = int(width), int(height)
        self.rate = _fps_fraction(fps)
        self.fps = float(self.rate)
        self.gop_s = float(gop_s)
        self.seed = int(seed)
        self.frame_count = round(duration_s * self.fps)
        if self.frame_count < 1:
            raise SynthError(f"duration {duration_s:g} s is shorter than one frame at {self.fps:g} fps")
        self.frame_code = bool(frame_code)
        if self.frame_code and self.frame_count - 1 > MAX_INDEX:
            raise SynthError(
                f"frame codes support at most {MAX_INDEX + 1} frames "
                f"({(MAX_INDEX + 1) / self.fps / 60:.1f} min at {self.fps:g} fps); "
                f"this video has {self.frame_count}"
            )
        kinds = tuple(dict.fromkeys(needle_kinds))
        bad = [k for k in kinds if k not in ("text", "object")]
        if bad:
            raise SynthError(f"unknown needle kind {bad[0]!r} (choose from text, object)")
        self.scene_starts = _plan_scenes(np.random.default_rng([self.seed, 0]), self.frame_count, self.fps, scene_s)
        self.needles = _plan_needles(
            np.random.default_rng([self.seed, 1]), self.frame_count, self.fps, needles, kinds,
            self.width, self.height, text_cap,
        )  # fmt: skip
        self._needle_starts = [n.start for n in self.needles]
        self._painter = FrameCodePainter(self.width, self.height) if self.frame_code else None
        self._scene: _Scene | None = None
        self._scene_index = -1
        self._lock = threading.Lock()

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def key(self, video: str) -> AnswerKey:
        """The answer key, naming the video file ``video``."""
        return AnswerKey(
            video=video,
            duration_s=self.duration_s,
            width=self.width,
            height=self.height,
            fps=self.fps,
            seed=self.seed,
            gop_s=self.gop_s,
            needles=tuple(n.needle for n in self.needles),
            frame_code=self.frame_code,
            scene_starts_s=tuple(s / self.fps for s in self.scene_starts),
        )

    def _scene_for(self, i: int) -> _Scene:
        k = bisect_right(self.scene_starts, i) - 1
        if k != self._scene_index or self._scene is None:
            self._scene = _Scene(self.seed, k, self.scene_starts[k], self.width, self.height, self.fps)
            self._scene_index = k
        return self._scene

    def render(self, i: int) -> np.ndarray:
        """Frame ``i`` as yuv420p planes, shape (H*3//2, W), uint8."""
        W, H = self.width, self.height
        buf = np.empty(W * H * 3 // 2, np.uint8)
        Y = buf[: W * H].reshape(H, W)
        U = buf[W * H : W * H * 5 // 4].reshape(H // 2, W // 2)
        V = buf[W * H * 5 // 4 :].reshape(H // 2, W // 2)
        self.render_into(i, Y, U, V)
        return buf.reshape(H * 3 // 2, W)

    def render_into(self, i: int, Y: np.ndarray, U: np.ndarray, V: np.ndarray) -> None:
        """Paint frame ``i`` into existing planes: ``Y`` (H, W), ``U`` and ``V`` (H/2, W/2), uint8."""
        if not 0 <= i < self.frame_count:
            raise IndexError(f"frame {i} outside 0..{self.frame_count - 1}")
        W, H = self.width, self.height
        with self._lock:
            scene = self._scene_for(i)
        ox, oy = scene.offset(i)
        Y[:] = scene.y[oy : oy + H, ox : ox + W]
        U[:] = scene.u[oy // 2 : oy // 2 + H // 2, ox // 2 : ox // 2 + W // 2]
        V[:] = scene.v[oy // 2 : oy // 2 + H // 2, ox // 2 : ox // 2 + W // 2]
        for mover in scene.movers:
            mover.draw(Y, U, V, i - scene.start)
        k = bisect_right(self._needle_starts, i) - 1
        if k >= 0 and i < self.needles[k].end:
            n = self.needles[k]
            n.patch.draw(Y, U, V, n.x, n.y)
        if self._painter is not None:
            self._painter.draw(Y, U, V, i)


def _check_geometry(duration_s, width, height, fps, gop_s, scene_s) -> None:
    def positive(name: str, value) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise SynthError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise SynthError(f"{name} must be positive, got {value!r}")
        return v

    positive("duration", duration_s)
    positive("fps", fps)
    positive("gop", gop_s)
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise SynthError(f"{name} must be an integer, got {v!r}")
        if v < 64 or v % 2:
            raise SynthError(f"{name} must be even and at least 64 pixels, got {v}")
        if v > 8192:
            raise SynthError(f"{name} must be at most 8192 pixels, got {v}")
    lo, hi = (positive("scene length", s) for s in scene_s)
    if hi < lo:
        raise SynthError(f"scene length range {scene_s} is reversed")


def _plan_scenes(rng: np.random.Generator, n: int, fps: float, scene_s: tuple[float, float]) -> list[int]:
    """First frame of each scene; the last scene absorbs a remainder shorter than half the minimum."""
    lo, hi = scene_s
    starts, pos = [0], 0
    while True:
        length = max(1, round(rng.uniform(lo, hi) * fps))
        if pos + length >= n - round(lo * fps / 2):
            return starts
        pos += length
        starts.append(pos)

"""What becomes of an interval the model asks to zoom into: `IntervalPolicy.apply` -> `ClipDecision` (the
reference inference's padding, clamping and widening, and the rules that end zooming)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from longlens.agents.trace import Stop
from longlens.spans import iou


@dataclass(frozen=True)
class IntervalPolicy:
    """How a requested [start, end] becomes a slow clip (reference inference:
    HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/model_sample_frame.py:564-582)."""

    pad_s: float = 5.0
    """Padding added on each side, then clamped to [0, int(D)]."""
    min_span_s: float = 3.0
    """A clip shorter than this after padding ends zooming (the next step is the forced answer)."""
    widen_to_s: float | None = 30.0
    """Shorter clips are widened, centred, to min(widen_to_s, D * widen_fraction); None: never."""
    widen_fraction: float = 1 / 8
    max_overlap: float = 0.3
    """A clip whose IoU with an accepted clip exceeds this ends zooming, without being added."""
    swap_reversed: bool = True
    """Read [end, start] as [start, end] (the reference sorts the two numbers); else end zooming."""
    reject_outside: bool = False
    """End zooming on an interval that lies wholly outside [0, D] (an option). The reference only pads and
    clamps: [402, 450] on a 400 s video becomes [397, 400], then widened to [383, 400]."""
    whole_video_fallback: bool = True
    """At the forced step with no clip accepted, show the whole video as the slow clip."""

    def apply(self, start: float, end: float, duration_s: float, accepted: list[tuple[float, float]]) -> ClipDecision:
        """What becomes of an asked [start, end]: a clip, or zooming stops (and why)."""
        error = None
        if end < start:
            if not self.swap_reversed:
                return ClipDecision(None, "reversed interval: zooming stops", f"reversed interval [{start:g}, {end:g}]",
                                    Stop.REVERSED)
            error = f"reversed interval [{start:g}, {end:g}]; read as [{end:g}, {start:g}]"
            start, end = end, start
        if self.reject_outside and (start > duration_s or end < 0):
            outside = f"interval [{start:g}, {end:g}] lies outside the video [0, {duration_s:.0f}]"
            return ClipDecision(None, "outside the video: zooming stops", (f"{error}; " if error else "") + outside,
                                Stop.OUTSIDE)
        s = max(start - self.pad_s, 0.0)
        e = min(end + self.pad_s, float(int(duration_s)))
        notes = [f"asked [{start:g}, {end:g}]"]
        if self.pad_s:
            notes.append(f"padded to [{s:g}, {e:g}]")
        if e - s < self.min_span_s:
            return ClipDecision(None, "; ".join([*notes, f"shorter than {self.min_span_s:g} s: zooming stops"]), error,
                                Stop.TOO_SHORT)
        if self.widen_to_s is not None:
            span = min(self.widen_to_s, duration_s * self.widen_fraction)
            if e - s < span:
                m = (s + e) / 2
                s, e = float(int(max(m - span / 2, 0))), float(int(min(m + span / 2, duration_s)))
                notes.append(f"widened to [{s:g}, {e:g}]")
        for c in accepted:
            if iou((s, e), c) > self.max_overlap:
                notes.append(f"overlaps [{c[0]:g}, {c[1]:g}] (IoU {iou((s, e), c):.2f}): zooming stops")
                return ClipDecision(None, "; ".join(notes), error, Stop.OVERLAP)
        return ClipDecision((s, e), "; ".join(notes), error, None)


class ClipDecision(NamedTuple):
    """What `IntervalPolicy.apply` made of an asked interval."""

    clip: tuple[float, float] | None
    """The slow clip, or None: zooming stops."""
    note: str
    """What was done, for people."""
    error: str | None
    """The model's mistake, if any."""
    stop: Stop | None
    """Why zooming stops (None when there is a clip)."""

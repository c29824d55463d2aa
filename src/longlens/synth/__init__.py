"""Synthetic long H.264 videos with known answers, for tests, demos and benchmarks (no downloads).

``make_video`` writes the video and its answer key (needles: short text labels or coloured shapes, each
with a 4-option question); ``read_frame_code`` reads back the frame index drawn with ``frame_code=True``.
"""

from longlens.synth.code import read_frame_code
from longlens.synth.frames import FrameMaker
from longlens.synth.key import AnswerKey, Needle, load_answer_key
from longlens.synth.maker import make_video
from longlens.synth.needles import NUMBERS, WORDS, SynthError, default_needle_count
from longlens.synth.patches import COLOURS, SHAPES

__all__ = [
    "COLOURS",
    "NUMBERS",
    "SHAPES",
    "WORDS",
    "AnswerKey",
    "FrameMaker",
    "Needle",
    "SynthError",
    "default_needle_count",
    "load_answer_key",
    "make_video",
    "read_frame_code",
]

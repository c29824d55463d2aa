"""The embedded offline backend on real generated videos: zoom finds and reads needles; uniform does worse."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends.offline import OfflineBackend, ocr, vision
from longlens.backends.offline.backend import _read_prompt
from longlens.prompts import format_question, load_profile, zoom_messages
from longlens.synth import make_video
from longlens.video import FrameCache


@pytest.fixture(scope="session")
def needle_videos(tmp_path_factory):
    """Five 30-minute 640x360 videos (10 fps, to keep them quick to make) with two text needles each."""
    root = tmp_path_factory.mktemp("needles")
    out = []
    for seed in range(5):
        path = root / f"v{seed}.mp4"
        key = make_video(path, duration_s=1800, width=640, height=360, fps=10, seed=100 + seed, needles=2,
                         needle_kinds=("text",))
        out += [(path, n) for n in key.needles]
    return out


@pytest.fixture(scope="session")
def object_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("objects") / "o.mp4"
    key = make_video(path, duration_s=240, width=640, height=360, seed=7, needles=3, needle_kinds=("object",))
    return path, key


def test_zoom_reads_text_needles_and_uniform_does_worse(needle_videos, tmp_path, capsys):
    backend = OfflineBackend()
    cache = FrameCache(tmp_path / "cache")
    zoom_right, zoom_tokens = 0, 0
    for path, needle in needle_videos:
        trace = ZoomAgent(backend, ZoomConfig(), cache=cache).run(path, needle.question, needle.options)
        zoom_right += trace.choice == needle.answer
        zoom_tokens = max(zoom_tokens, trace.steps[-1].visual_tokens)
    # the uniform baseline gets at least the visual tokens of the zoom agent's largest final step
    frames = math.ceil(zoom_tokens / (12 * 21) * 2)  # 336x588 frames: 12 x 21 tokens per 2 frames
    uniform = ZoomConfig(agent="uniform", uniform_frames=frames)
    uniform_right = 0
    for path, needle in needle_videos:
        trace = ZoomAgent(backend, uniform, cache=cache).run(path, needle.question, needle.options)
        uniform_right += trace.choice == needle.answer
        assert trace.steps[0].visual_tokens >= zoom_tokens
    with capsys.disabled():
        print(f"\noffline backend, 10 text needles in 30-minute videos: zoom {zoom_right}/10, "
              f"uniform ({frames} frames, >= {zoom_tokens} visual tokens) {uniform_right}/10")
    # 8/10 on the reference's frames: the two misses zoom into the other needle's label, since the offline
    # backend does not yet read which label the question asks about (issue 19); 9/10 before, on nearest frames
    assert zoom_right >= 8
    assert uniform_right <= zoom_right - 3


def test_colour_and_shape_questions(object_video, tmp_path):
    path, key = object_video
    backend = OfflineBackend()
    right = 0
    for needle in key.needles:
        trace = ZoomAgent(backend, ZoomConfig(), cache=FrameCache(tmp_path)).run(path, needle.question, needle.options)
        right += trace.choice == needle.answer
    assert right == len(key.needles)


def test_open_question_answers_with_the_text_read(needle_videos, tmp_path):
    path = needle_videos[0][0]
    words = {n.content for p, n in needle_videos if p == path}  # two labels in this video
    trace = ZoomAgent(OfflineBackend(), ZoomConfig(), cache=FrameCache(tmp_path)).run(
        path, "What is written on the small white label?")
    assert trace.answer in words and trace.choice is None


def test_reads_the_prompt_it_is_given():
    profile = load_profile()
    text = format_question(profile, "Which word appears?", ["CAT", "DOG", "EMU", "OWL"])
    fs = _frameset(np.zeros((4, 112, 196, 3), np.uint8))
    p = _read_prompt(zoom_messages(profile, text, 600, fs, prefix=profile.answer_prefix))
    assert p.question == "Which word appears?" and p.options == ["CAT", "DOG", "EMU", "OWL"] and p.forced
    assert len(p.views) == 1 and p.views[0].span == (0.0, 600.0)


def test_guess_is_said_to_be_a_guess():
    profile = load_profile()
    fs = _frameset(np.full((4, 112, 196, 3), 90, np.uint8))
    messages = zoom_messages(profile, format_question(profile, "Why?", ["a", "b"]), 600, fs,
                             prefix=profile.answer_prefix)
    reply = OfflineBackend().generate(messages)
    assert "guess" in reply.text and reply.prefix == profile.answer_prefix
    assert reply.text.rstrip().endswith(("\\boxed{A}", "\\boxed{B}"))


def test_text_matching_ignores_spaces_and_case():
    assert ocr.match_score("ROCKET", "ro cket 44") == 1.0
    assert ocr.match_score("Blue whale", "BLUEWHALE") == 1.0
    assert 0.7 < ocr.match_score("TEAPOT", "TEAP0T") < 1.0
    assert ocr.match_score("TEAPOT", "") == 0.0


def test_colour_names_and_shapes():
    assert vision.name_colour([240, 130, 20]) == "orange"
    assert vision.name_colour([30, 60, 220]) == "blue"
    assert vision.name_colour([200, 40, 190], ["red", "magenta"]) == "magenta"
    for shape in ("circle", "square", "triangle", "star", "cross", "hexagon"):
        mask = np.zeros((80, 80), bool)
        mask[10:70, 10:70] = vision.shape_template(shape, 60, 60)
        assert vision.name_shape(mask, ["circle", "square", "triangle", "star", "cross", "hexagon"])[0] == shape


def _frameset(frames):
    from longlens.video import FramePlan, FrameSet

    n = len(frames)
    plan = FramePlan("fast", tuple(range(n)), tuple(float(i) for i in range(n)), frames.shape[1], frames.shape[2],
                     2.0, (0.0, float(n)))
    return FrameSet(frames, tuple(range(n)), tuple(float(i) for i in range(n)), plan, "x.mp4", "x")


def _scene(objects=(), labels=(), size=(336, 588)) -> np.ndarray:
    """A grey frame with vivid shapes ((shape, rgb, x, y, side)) and white text labels ((text, x, y))."""
    from longlens.synth.patches import _text_patch

    h, w = size
    frame = np.full((h, w, 3), 90, np.uint8)
    for shape, rgb, x, y, side in objects:
        frame[y : y + side, x : x + side][vision.shape_template(shape, side, side)] = rgb
    for text, x, y in labels:
        patch = np.clip(_text_patch(text, h).y, 0, 255).astype(np.uint8)
        frame[y : y + patch.shape[0], x : x + patch.shape[1]] = patch[..., None]
    return frame


def _ask(frames: list[np.ndarray], question: str, options: list[str]) -> str:
    from longlens.prompts import Image, Message, Text

    text = question + "".join(f"\n{chr(65 + i)}. {o}" for i, o in enumerate(options))
    parts = tuple(Image(f, float(i)) for i, f in enumerate(frames)) + (Text(text),)
    return OfflineBackend().generate((Message("user", parts),)).text


def test_an_object_question_is_answered_about_the_object_it_names():
    # a large red circle and a smaller blue star in one close-up: each question is about the one it names
    frame = _scene(objects=[("circle", (230, 30, 30), 60, 80, 110), ("star", (30, 70, 230), 330, 120, 80)])
    assert "\\boxed{B}" in _ask([frame], "What shape is the blue object that briefly appears in the video?",
                                ["circle", "star", "square", "triangle"])
    assert "\\boxed{A}" in _ask([frame], "What shape is the red object that briefly appears in the video?",
                                ["circle", "star", "square", "triangle"])
    assert "\\boxed{C}" in _ask([frame], "What colour is the star that briefly appears in the video?",
                                ["red", "green", "blue", "yellow"])
    # a colour no object has: no evidence, so no claim about the wrong object
    assert "guess" in _ask([frame], "What shape is the green object that briefly appears in the video?",
                           ["circle", "star", "square", "triangle"])


def test_every_label_in_the_frames_is_read_once():
    from longlens.backends.offline import labels

    one = _scene(labels=[("GUITAR", 40, 60), ("WALRUS", 300, 200)])
    two = _scene(labels=[("GUITAR", 40, 60), ("PEBBLE", 420, 100)])
    three = _scene(labels=[("MANGO", 200, 250)])
    frames = np.stack([one, one, two, three, three])
    assert [len(labels.tracks(frames[:k])) for k in (1, 3, 5)] == [2, 3, 4]  # GUITAR stays one track
    read = labels.read_labels(frames, [0.0, 1.0, 2.0, 3.0, 4.0])
    assert [ocr.normalise(lb.text) for lb in read] == ["GUITAR", "WALRUS", "PEBBLE", "MANGO"]
    assert [lb.time_s for lb in read] == [0.0, 0.0, 2.0, 3.0]
    # the question asks about the fourth label of five frames: it is read, not only the largest few
    assert "\\boxed{D}" in _ask(list(frames), "Which word appears on the small white label shown in the video?",
                                ["ANCHOR", "BEETLE", "CAMERA", "MANGO"])


def test_a_label_too_small_to_read_still_singles_out_its_option():
    """A label 6 px tall in the overview (drawn in Pillow's own font, not the one the backend renders with) correlates
    best with its own text among same-length options: the hint the zoom ranks candidates with."""
    from PIL import Image, ImageDraw, ImageFont

    from longlens.backends.offline import vision

    def overview_label(text: str) -> np.ndarray:
        font = ImageFont.load_default(size=60)
        left, top, right, bottom = font.getbbox(text)
        cap = bottom - top
        img = Image.new("L", (right - left + int(1.2 * cap), int(1.9 * cap)), 255)
        ImageDraw.Draw(img).text((int(0.6 * cap) - left, int(0.45 * cap) - top), text, fill=0, font=font)
        h = 6
        return np.asarray(img.resize((round(img.width * h / img.height), h), Image.Resampling.BOX), np.float32)

    groups = [["CHERRY", "HELMET", "PLANET", "BONNET"], ["COBRA", "HERON", "FERRY", "EAGLE"],
              ["2371", "3690", "5130", "8125"], ["MEADOW", "BUTTON", "ENGINE", "TURTLE"]]
    right = 0
    for options in groups:
        for truth in options:
            like = {o: vision.text_likeness(overview_label(truth), o) for o in options}
            right += max(like, key=like.get) == truth
    assert right >= 12, f"{right} of 16"  # chance: 4

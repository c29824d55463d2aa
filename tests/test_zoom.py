"""The zoom loop with scripted replies, the love-r1 prompt bytes, the interval policy and the baselines."""

from __future__ import annotations

import json

import pytest

from longlens.agents.trace import Stop, Trace
from longlens.agents.zoom import IntervalPolicy, ZoomAgent, ZoomConfig
from longlens.backends import BackendError, ScriptedBackend
from longlens.prompts import Text, Video, format_question, load_profile
from longlens.spans import iou

ZOOM = "I need to zoom in on the video.\n\n"
ANSWER = "I get the answer.\n\n"
OPTIONS = ["red", "green", "blue", "white"]

SYSTEM = ("You are a helpful assistant. The red numbers on each frame represent the timestamp in seconds and "
          "you can refer them during temporal grounding.")
INSTRUCTION = (
    "\nBased on the video and the user question, determine whether the visual content is sufficient to answer "
    "the question. If you have enough information, reason using the visual content and provide your final answer "
    "within \\boxed{}. Otherwise, you may zoom in a specific interval of the video related to the question for "
    "more details based on your reasoning. Also provide the time span of the interval in seconds within "
    "\\boxed{[start_time, end_time]}."
)


def test_love_r1_profile_bytes():
    p = load_profile("love-r1")
    assert p.system == SYSTEM
    assert p.instruction == INSTRUCTION
    assert p.full_video_label % (0, 690) == "Full video [0, 690]:"
    assert p.clip_label % (600, 610) == "Subset zoom-in video clip [600, 610]:"
    assert p.zoom_prefix == "I need to zoom in on the video.\n\n"
    assert p.answer_prefix == "I get the answer.\n\n"
    assert p.choice_suffix == "\nProvide only the single option letter (e.g., A, B, C, D, etc.) as the answer."
    assert "HumanMLLM/LOVE-R1" in p.origin


def test_question_formatting():
    p = load_profile()
    assert format_question(p, "Which word?", ["CAT", "DOG"]) == (
        "Which word?\nA. CAT\nB. DOG\n\nProvide only the single option letter (e.g., A, B, C, D, etc.) as the answer."
    )
    assert format_question(p, "What is written?") == "What is written?\nProvide your text answer."
    plain = format_question(p, "Which?", ["Red", "Blue", "Green"])
    for lettered in (["A. Red", "B. Blue", "C. Green"], ["(A) Red", "(B) Blue", "(C) Green"],
                     ["A) Red", "B) Blue", "C) Green"], ["A: Red", "B: Blue", "C: Green"]):
        assert format_question(p, "Which?", lettered) == plain  # not "A. A. Red"
    # letters that are part of the answers, or out of order, are kept
    assert "A. B. Blue\nB. A. Red" in format_question(p, "Which?", ["B. Blue", "A. Red"])
    assert "A. A. Red\nB. Blue" in format_question(p, "Which?", ["A. Red", "Blue"])


def user_text(request) -> str:
    return "".join(p["text"] if p["type"] == "text" else "<video>" for p in request["messages"][1]["content"])


def test_zoom_zoom_forced_answer(coded_video):
    backend = ScriptedBackend([ZOOM + "\\boxed{[4, 6]}", ZOOM + "\\boxed{[2, 3]}", ANSWER + "\\boxed{C}"])
    trace = ZoomAgent(backend).run(coded_video, "What colour?", OPTIONS)
    assert (trace.answer, trace.choice) == ("C", "C")
    assert [s.action["kind"] for s in trace.steps] == ["zoom", "zoom", "answer"]
    # 20 s video: padding +-5 s, widening to min(30, 20/8) = 2.5 s does nothing here
    assert trace.steps[0].clip_added == [0.0, 11.0]
    assert trace.steps[1].clip_added is None and "IoU" in trace.steps[1].note  # overlaps [0, 11]: stop zooming
    assert [r["messages"][-1]["role"] for r in backend.requests] == ["user", "user", "assistant"]
    assert backend.requests[2]["messages"][-1]["content"][0]["text"] == ANSWER
    q = format_question(load_profile(), "What colour?", OPTIONS) + INSTRUCTION
    assert user_text(backend.requests[0]) == "Full video [0, 20]:<video>" + q
    assert user_text(backend.requests[1]) == "Full video [0, 20]:<video>Subset zoom-in video clip [0, 11]:<video>" + q
    assert backend.requests[0]["messages"][0] == {"role": "system", "content": [{"type": "text", "text": SYSTEM}]}
    assert trace.totals.steps == 3 and trace.totals.visual_tokens == sum(s.visual_tokens for s in trace.steps)


def test_two_zooms_then_forced_answer_with_clips_sorted(coded_video):
    backend = ScriptedBackend([ZOOM + "\\boxed{[15, 16]}", ZOOM + "\\boxed{[1, 2]}", ANSWER + "\\boxed{A}"])
    trace = ZoomAgent(backend).run(coded_video, "Q?", OPTIONS)
    assert [s.clip_added for s in trace.steps[:2]] == [[10.0, 20.0], [0.0, 7.0]]
    assert user_text(backend.requests[2]).startswith(
        "Full video [0, 20]:<video>Subset zoom-in video clip [0, 7]:<video>Subset zoom-in video clip [10, 20]:<video>")
    fast, first, second = (p for p in backend.requests[2]["messages"][1]["content"] if p["type"] == "video")
    assert fast["n_frames"] == 40 and fast["height"] == 168  # short video: 2x budgets
    assert first["n_frames"] == 14 and second["n_frames"] == 20 and first["height"] == 476
    assert trace.steps[2].visual_tokens == fast["visual_tokens"] + first["visual_tokens"] + second["visual_tokens"]


def test_answer_at_step_one(coded_video):
    backend = ScriptedBackend([ANSWER + "Clearly \\boxed{D}"])
    trace = ZoomAgent(backend).run(coded_video, "Q?", OPTIONS)
    assert trace.choice == "D" and len(trace.steps) == 1 and trace.steps[0].forced_prefix is None


def test_malformed_reply_is_recorded_and_the_loop_goes_on(coded_video):
    backend = ScriptedBackend(["I am not sure what to do.", ANSWER + "\\boxed{B}"])
    trace = ZoomAgent(backend).run(coded_video, "Q?", OPTIONS)
    assert trace.choice == "B"
    assert "no \\boxed{}" in trace.steps[0].error
    # no clip accepted: the forced step shows the whole video as the slow clip
    assert "whole video" in trace.steps[1].note
    assert "Subset zoom-in video clip [0, 20]:" in user_text(backend.requests[1])


def test_out_of_range_and_reversed_intervals(coded_video):
    replies = [ZOOM + "\\boxed{[12, 8]}", ZOOM + "\\boxed{[300, 400]}", ANSWER + "\\boxed{A}"]
    # the reference pads and clamps only: [295, 20] is shorter than 3 s, so zooming stops (no model mistake)
    trace = ZoomAgent(ScriptedBackend(list(replies))).run(coded_video, "Q?", OPTIONS)
    assert "reversed" in trace.steps[0].error and trace.steps[0].clip_added == [3.0, 17.0]
    assert "shorter than 3 s" in trace.steps[1].note and trace.steps[1].clip_added is None
    assert trace.choice == "A" and trace.totals.errors == 1
    # the option: an interval wholly outside the video is a mistake
    policy = IntervalPolicy(reject_outside=True)
    trace = ZoomAgent(ScriptedBackend(list(replies)), ZoomConfig(policy=policy)).run(coded_video, "Q?", OPTIONS)
    assert "outside the video" in trace.steps[1].error and trace.totals.errors == 2


def test_interval_rules(coded_video):
    """The reference reads whole seconds only: a decimal or clock interval ends zooming; lenient zooms."""
    replies = [ZOOM + "\\boxed{[2.5, 6]}", ANSWER + "\\boxed{B}"]
    trace = ZoomAgent(ScriptedBackend(list(replies))).run(coded_video, "Q?", OPTIONS)
    assert trace.steps[0].action["kind"] == "malformed" and "whole seconds" in trace.steps[0].error
    assert "whole video" in trace.steps[1].note and trace.choice == "B"
    trace = ZoomAgent(ScriptedBackend(list(replies)), ZoomConfig(intervals="lenient")).run(coded_video, "Q?", OPTIONS)
    assert trace.steps[0].clip_added is not None and trace.choice == "B"


def test_zoom_at_forced_step_gives_no_answer(coded_video):
    backend = ScriptedBackend([ANSWER + "\\boxed{[1, 5]}"])
    trace = ZoomAgent(backend, ZoomConfig(max_steps=1)).run(coded_video, "Q?", OPTIONS)
    assert trace.answer == "" and trace.choice is None and "forced" in trace.steps[0].error


def test_script_exhaustion_is_a_backend_error(coded_video):
    with pytest.raises(BackendError):
        ZoomAgent(ScriptedBackend([])).run(coded_video, "Q?", OPTIONS)


def test_trace_round_trip(coded_video, tmp_path):
    backend = ScriptedBackend([ZOOM + "\\boxed{[4, 6]}", ANSWER + "\\boxed{C}"])
    trace = ZoomAgent(backend, ZoomConfig(max_steps=2)).run(coded_video, "Q?", OPTIONS)
    path = trace.save(tmp_path / "t.json")
    data = json.loads(path.read_text())
    assert data["version"] == 2 and "frames" not in json.dumps(data["steps"][0]["prompt"]).replace("n_frames", "")
    assert Trace.load(path) == trace


@pytest.mark.parametrize("agent,n_videos,first_clip", [
    ("no-zoom", 1, None), ("unified-zoom", 2, "[0, 20]"), ("random-zoom", 2, None), ("uniform", 1, None)])
def test_baselines_use_one_forced_step(coded_video, agent, n_videos, first_clip):
    backend = ScriptedBackend([ANSWER + "\\boxed{B}"])
    trace = ZoomAgent(backend, ZoomConfig(agent=agent)).run(coded_video, "Q?", OPTIONS)
    assert trace.choice == "B" and len(trace.steps) == 1 and trace.agent == agent
    videos = [p for p in backend.requests[0]["messages"][1]["content"] if p["type"] == "video"]
    assert len(videos) == n_videos
    if first_clip:
        assert f"Subset zoom-in video clip {first_clip}:" in user_text(backend.requests[0])
    if agent == "uniform":
        assert videos[0]["n_frames"] == 64
    if agent == "random-zoom":
        again = ScriptedBackend([ANSWER + "\\boxed{B}"])
        ZoomAgent(again, ZoomConfig(agent=agent)).run(coded_video, "Q?", OPTIONS)
        assert again.requests[0]["messages"] == backend.requests[0]["messages"]  # seeded


def test_interval_policy_rules():
    p = IntervalPolicy()
    assert p.apply(600, 610, 3600, [])[0] == (590.0, 620.0)  # padded to [595, 615], widened to 30 s, centred
    assert p.apply(50, 70, 60, [])[0] == (45.0, 60.0)  # clamped to [0, int(D)]
    clip, note, err, stop = p.apply(100, 101, 60, [])  # the reference: [95, 60] is shorter than 3 s
    assert clip is None and "shorter than 3 s" in note and err is None and stop == Stop.TOO_SHORT
    assert p.apply(62, 70, 60, [])[0] == (54.0, 60.0)  # [57, 60] kept (as the reference does), widened
    clip, _, err, stop = IntervalPolicy(reject_outside=True).apply(100, 101, 60, [])
    assert clip is None and "outside the video" in err and stop == Stop.OUTSIDE
    assert p.apply(59, 59, 60, [])[0] == (53.0, 60.0)  # padded to [54, 60], widened to 7.5 s, clamped
    clip, note, err, stop = p.apply(300, 310, 3600, [(290.0, 320.0)])
    assert clip is None and "IoU" in note and err is None and stop == Stop.OVERLAP
    assert IntervalPolicy(pad_s=0, min_span_s=3).apply(10, 11, 3600, [])[0] is None
    assert IntervalPolicy(widen_to_s=None).apply(600, 610, 3600, [])[0] == (595.0, 615.0)
    assert IntervalPolicy(swap_reversed=False).apply(10, 5, 3600, []).stop == Stop.REVERSED
    assert p.apply(600, 610, 3600, []).stop is None
    assert iou((0, 10), (10, 20)) == 0 and iou((0, 10), (5, 15)) == pytest.approx(5 / 15)


def test_templates_a_and_b_replace_fast_frames(coded_video):
    for template in ("a", "b"):
        backend = ScriptedBackend([ZOOM + "\\boxed{[8, 10]}", ANSWER + "\\boxed{B}"])
        ZoomAgent(backend, ZoomConfig(max_steps=2, template=template)).run(coded_video, "Q?", OPTIONS)
        parts = backend.requests[1]["messages"][1]["content"]
        kinds = {p["type"] for p in parts}
        assert kinds == ({"text", "image"} if template == "a" else {"text", "video"})
        if template == "b":
            labels = [p["label"] for p in parts if p["type"] == "video"]
            assert labels == ["fast", "clip [3, 15]", "fast"]


def test_messages_hold_frames_with_true_times(coded_video):
    backend = ScriptedBackend([ANSWER + "\\boxed{B}"])
    agent = ZoomAgent(backend, ZoomConfig(max_steps=1, agent="no-zoom"))
    trace = agent.run(coded_video, "Q?", OPTIONS)
    video = trace.steps[0].prompt[1]["content"][1]
    assert video["type"] == "video" and video["times_s"][0] == 0.0 and len(video["times_s"]) == 40
    assert isinstance(Text("x"), Text) and Video  # the part types are public


def test_grounding_questions_ask_for_a_span_in_the_checkpoints_words():
    from longlens.prompts.navigate import SPAN_REQUEST, first_message, load_navigate_profile
    from longlens.prompts.profiles import load_profile
    from longlens.prompts.zoom import format_question

    profile = load_profile("love-r1")
    # LOVE-R1's RL TYPE_TEMPLATE["tal"], byte for byte
    assert format_question(profile, "person opens a door.", task="grounding") == (
        "person opens a door.\nProvide the answer in list format, ie, [start_time, end_time].")
    assert format_question(profile, "Q?", ("x", "y")).endswith(profile.choice_suffix)
    nav = load_navigate_profile("longvideo-r1")
    msg = first_message(nav, "person opens a door.", (), 60.0, [(0.0, 60.0, "a room")], task="grounding")
    assert SPAN_REQUEST in msg.parts[0].text


def test_scripted_backend_hands_each_reply_out_once_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    from longlens.backends.scripted import ScriptedBackend
    from longlens.prompts.messages import Message

    backend = ScriptedBackend([f"reply {i}" for i in range(400)])
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda _: backend.generate((Message.text("user", "q"),)).text, range(400)))
    assert sorted(texts) == sorted(f"reply {i}" for i in range(400))

"""Building LOVE-R1 training data: clip captions, teacher CoTs and hard-example mining (the reference's
HumanMLLM/LOVE-R1@aa1facb process_data/ scripts).

The teacher and the caption model are the scripted OpenAI-compatible server; its recorded requests show
the exact prompts sent. Mining uses an in-process backend that records the decoding settings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from longlens.backends.base import DEFAULT_GEN, Backend, Completion, GenConfig
from longlens.backends.openai_client import OpenAIBackend
from longlens.backends.scripted_server import ScriptedServer
from longlens.bench.benchmarks.needles import load as load_needles
from longlens.bench.sample import Sample
from longlens.cli.main import main
from longlens.data.clipcaps import ClipCaptions, ClipSettings, caption_clips, clip_plan, clip_spans
from longlens.data.mining import MineConfig, Miner, mine
from longlens.data.rows import RLRow, read_jsonl
from longlens.data.teacher import Teacher, TeacherConfig, check_answer, check_zoom, make_cots
from longlens.errors import LongLensError
from longlens.prompts.teacher import load_teacher_prompts
from longlens.video import open_video

DATA = Path(__file__).parents[1] / "src" / "longlens" / "prompts" / "data" / "love-r1-teacher.json"
ZOOM = "I need to zoom in on the video.\n\n"
ANSWER = "I get the answer.\n\n"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """Two 30 s needle videos with two needles each: 4 questions with truth spans."""
    from media import needle_suite

    return needle_suite(tmp_path_factory.mktemp("suite"), (1, 2), duration_s=30, needles=2, stem="v")


@pytest.fixture(scope="module")
def samples(suite):
    return load_needles(suite).samples


def posts(server: ScriptedServer) -> list[dict]:
    return [r for r in server.requests if "messages" in r]


def texts(request: dict) -> list[str]:
    out = []
    for m in request["messages"]:
        content = m["content"]
        out += [content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"]
    return out


def zoom_reply(span, note="The key moment is there.") -> str:
    return f"{note} \\boxed{{[{int(span[0])}, {int(span[1]) + 1}]}}"


# ---------------------------------------------------------------- the prompts, byte for byte
def test_teacher_prompts_are_the_reference_bytes():
    p = load_teacher_prompts()
    digest = {k: hashlib.sha256(getattr(p, k).encode()).hexdigest()[:16] for k in
              ("caption_prompt", "question_label", "options_label", "zoom_instruction", "answer_instruction",
               "answer_hint")}
    assert digest == {"caption_prompt": "e3cf9f794f5f8cc1", "question_label": "1e0dad3efa18570e",
                      "options_label": "9e9eb25e016e976a", "zoom_instruction": "1bea1754f2209281",
                      "answer_instruction": "4fbb4fad1cb19d23", "answer_hint": "f7cc83d86eb191b9"}
    assert p.caption_prompt == "Elaborate on the visual and narrative elements of the video briefly."
    assert p.zoom_instruction.startswith("\nYou do not know the answer") and p.zoom_instruction.endswith("reasoning.\n")
    assert "within \\boxed{[start_time, end_time]}.\n- In the reasoning" in p.zoom_instruction
    assert p.answer_instruction.startswith("\nActing as you are watching a video not images or frames.")
    assert p.answer_hint.format(letter="C") == " Hint: the answer is C. But do not mention the hint in your reasoning."
    origin = json.loads(DATA.read_text(encoding="utf-8"))["origin"]
    assert "HumanMLLM/LOVE-R1" in origin and "build_cgbench_sample_cot.py" in origin
    assert "build_cgbench_answer_cot.py" in origin and "HumanMLLM/LOVE-R1@aa1facb" in origin


def test_teacher_profile_is_not_a_zoom_profile():
    from longlens.prompts import profile_names

    assert "love-r1-teacher" not in profile_names("zoom") and "love-r1-teacher" not in profile_names("navigate")


# ---------------------------------------------------------------- clips
def test_clips_are_whole_and_sampled_as_the_reference(suite, samples):
    assert clip_spans(35.0, 10) == [(0, 10), (10, 20), (20, 30)]
    assert clip_spans(30.0, 10) == [(0, 10), (10, 20), (20, 30)] and clip_spans(9.9, 10) == []
    info = open_video(samples[0].video)
    plan = clip_plan(info, (10, 20), ClipSettings())
    assert plan.n_frames == 20 and not plan.stamp
    assert plan.indices[0] == 100 and plan.indices[-1] == 200  # linspace(int(s*fps), min(N-1, int(e*fps)))
    # get_video_hw(H, W, 512*28*28): smart_resize with min P and max 1.05 P (the small frames grow)
    assert (plan.height, plan.width) == (476, 868) and 512 * 28 * 28 <= 476 * 868 <= 1.05 * 512 * 28 * 28
    last = clip_plan(info, (20, 30), ClipSettings(clip_s=10))
    assert last.indices[-1] == info.n_frames - 1


def test_captions_cli_asks_each_clip_once_then_never(suite, tmp_path):
    store = tmp_path / "store"
    cmd = ["data", "captions", "needles", "--data", str(suite), "--out", str(store), "--concurrency", "2",
           "--cache-dir", str(tmp_path / "cache")]
    with ScriptedServer(["Caption text."], repeat_last=True) as server:
        assert main([*cmd, "--caption-url", server.url]) == 0
        sent = posts(server)
        assert len(sent) == 6  # 2 videos x 3 clips of 10 s
        for r in sent:
            assert [m["role"] for m in r["messages"]] == ["user"]  # no system prompt
            assert texts(r) == ["Elaborate on the visual and narrative elements of the video briefly."]
            assert r["temperature"] == 0.0 and r["max_tokens"] == 2048
        assert main([*cmd, "--caption-url", server.url]) == 0
        assert len(posts(server)) == 6  # cached: no model call
        assert main([*cmd, "--caption-url", server.url, "--clip-s", "15"]) == 0
        assert len(posts(server)) == 10  # other settings, other captions: 2 clips of 15 s per video
    info = open_video(load_needles(suite).samples[0].video)
    with pytest.raises(LongLensError, match="several models or clip lengths"):
        ClipCaptions.find(store, info)
    joined = ClipCaptions.find(store, info, clip_s=10.0).joined()
    assert joined == "[0, 10]: Caption text.\n[10, 20]: Caption text.\n[20, 30]: Caption text."


def test_a_failing_caption_server_keeps_what_was_made(samples, tmp_path):
    info = open_video(samples[0].video)
    with ScriptedServer(["one", "two"]) as server:  # the third request gets HTTP 500
        backend = OpenAIBackend(server.url, "scripted-model", retries=0)
        with pytest.raises(LongLensError, match="HTTP 500"):
            caption_clips([info], tmp_path, backend, concurrency=1)
    caps = ClipCaptions.find(tmp_path, info)
    assert [c.text for c in caps.captions.values()] == ["one", "two"] and caps.missing() == [(20, 30)]
    with pytest.raises(LongLensError, match="run `longlens data captions` again"):
        caps.joined()
    with ScriptedServer(["three"]) as server:
        assert caption_clips([info], tmp_path, OpenAIBackend(server.url, "scripted-model", retries=0)) == (1, 2)
        assert len(posts(server)) == 1
    assert ClipCaptions.find(tmp_path, info).joined().endswith("[20, 30]: three")


# ---------------------------------------------------------------- acceptance
def test_zoom_candidates_are_checked_on_their_box():
    truth = [(100.0, 120.0)]
    reason, target = check_zoom("Look at the car. \\boxed{[95, 130]} trailing", truth)
    assert reason == "" and target == ZOOM + "Look at the car. \\boxed{[95, 130]}"
    assert check_zoom("I need to zoom in on the video.\n\nSee \\boxed{[1:40, 1:50]}", truth)[1] == \
        ZOOM + "See \\boxed{[100, 110]}"
    assert check_zoom("no box here", truth)[0] == "no box"
    assert check_zoom("\\boxed{[1, x]}", truth)[0] == "unreadable box"
    assert check_zoom("\\boxed{B}", truth)[0] == "answered instead of zooming"
    assert check_zoom("\\boxed{[90, 150]}", truth)[0] == "bad span length"  # 60 s is not < 60
    assert check_zoom("\\boxed{[110, 110]}", truth)[0] == "bad span length"
    assert check_zoom("\\boxed{[120, 140]}", truth)[0] == "misses the truth"  # touching: IoU 0
    assert check_zoom("first \\boxed{[0, 10]} then \\boxed{[100, 110]}", truth)[0] == "boxes disagree"
    assert check_zoom("__import__('os') \\boxed{[__import__('os'), 1]}", truth)[0] == "unreadable box"


def test_answer_candidates_must_box_the_truth():
    opts = ("red", "blue", "green")
    reason, target = check_answer("The car is blue. \\boxed{B}", "B", opts)
    assert reason == "" and target == ANSWER + "The car is blue. \\boxed{B}"
    assert check_answer("\\boxed{(b)}", "B", opts)[0] == ""
    assert check_answer("It is red. \\boxed{A}", "B", opts)[0] == "wrong answer"
    assert check_answer("\\boxed{[1, 5]}", "B", opts)[0] == "zoomed instead of answering"
    assert check_answer("B", "B", opts)[0] == "no box"
    assert check_answer("\\boxed{A} no, \\boxed{B}", "B", opts)[0] == "boxes disagree"


# ---------------------------------------------------------------- teacher CoTs, end to end
@pytest.fixture(scope="module")
def captions(suite, tmp_path_factory):
    store = tmp_path_factory.mktemp("caps")
    with ScriptedServer(["A blue scene."], repeat_last=True) as server:
        assert main(["data", "captions", "needles", "--data", str(suite), "--out", str(store), "--caption-url",
                     server.url, "--concurrency", "1"]) == 0
    return store


def test_cot_cli_sends_the_reference_prompts_and_keeps_the_first_accepted(suite, samples, captions, tmp_path):
    s1, s2 = samples[0], samples[1]  # both on v1; jobs run in order: s1 zoom, s1 answer, s2 zoom, s2 answer
    script = ["no box at all", zoom_reply(s1.spans[0], "Found it."),  # s1 zoom: rejected, then accepted
              "\\boxed{A}" if s1.answer != "A" else "\\boxed{B}", "\\boxed{A}" if s1.answer != "A" else "\\boxed{B}",
              zoom_reply((0, 100)), zoom_reply((0, 100)),  # s2 zoom: too long twice: given up
              f"It shows it. \\boxed{{{s2.answer}}} extra"]
    out = tmp_path / "cots.jsonl"
    with ScriptedServer(script) as server:
        code = main(["data", "cot", "needles", "--data", str(suite), "--captions", str(captions), "--teacher-url",
                     server.url, "--out", str(out), "--tries", "2", "--limit", "2", "--concurrency", "1",
                     "--retries", "0", "--cache-dir", str(tmp_path / "cache")])
        assert code == 0
        sent = posts(server)
    assert len(sent) == 7
    joined = "[0, 10]: A blue scene.\n[10, 20]: A blue scene.\n[20, 30]: A blue scene."
    opts = "".join(f"{'ABCD'[i]}. {o}\n" for i, o in enumerate(s1.options))
    p = json.loads(DATA.read_text(encoding="utf-8"))
    assert texts(sent[0]) == [joined + "\n\nQuestion: " + s1.question + "\nOptions:\n" + opts + "\n"
                              + p["zoom_instruction"]]
    assert [m["role"] for m in sent[0]["messages"]] == ["user"]  # text only, no system prompt
    assert all(p["type"] == "text" for p in sent[0]["messages"][0]["content"] if isinstance(p, dict))
    assert sent[0]["seed"] == 0 and sent[1]["seed"] == 1 and sent[0]["temperature"] == 1.0
    answer_parts = sent[2]["messages"][0]["content"]
    images = [x for x in answer_parts if x["type"] == "image_url"]
    assert len(images) == 16 and answer_parts[-1]["type"] == "text"  # frames, then the prompt
    assert texts(sent[2]) == ["\n\nQuestion: " + s1.question + "\nOptions:\n" + opts + "\n" + p["answer_instruction"]
                              + f" Hint: the answer is {s1.answer}. But do not mention the hint in your reasoning."]
    rows = read_jsonl(out)
    assert [(r.id, r.kind) for r in rows] == [(f"{s1.id}:zoom", "zoom"), (f"{s2.id}:answer", "answer")]
    zoom, answer = rows
    assert zoom.target == ZOOM + zoom_reply(s1.spans[0], "Found it.") and zoom.clips == () and zoom.video == "v1.mp4"
    assert answer.target == ANSWER + f"It shows it. \\boxed{{{s2.answer}}}"  # cut after the box
    start, end = s2.spans[0]
    assert answer.clips == ((float(round(start - 5)), float(round(end + 5))),) and answer.truth == s2.spans
    report = json.loads((tmp_path / "cots.report.json").read_text())
    assert report["kept"] == {"zoom": 1, "answer": 1} and report["given_up"] == {"answer": 1, "zoom": 1}
    assert report["rejected"] == {"no box": 1, "wrong answer": 2, "bad span length": 2}
    with ScriptedServer([]) as server:  # everything decided: a rerun asks nothing
        assert main(["data", "cot", "needles", "--data", str(suite), "--captions", str(captions), "--teacher-url",
                     server.url, "--out", str(out), "--limit", "2", "--retries", "0"]) == 0
        assert posts(server) == []


def test_a_dying_teacher_stops_the_run_and_a_rerun_finishes_it(suite, samples, captions, tmp_path, capsys):
    out = tmp_path / "cots.jsonl"
    good = {s.id: (zoom_reply(s.spans[0]), f"\\boxed{{{s.answer}}}") for s in samples}
    order = [good[s.id][i] for s in samples for i in (0, 1)]  # 8 jobs, accepted at the first try
    cmd = ["data", "cot", "needles", "--data", str(suite), "--captions", str(captions), "--out", str(out),
           "--concurrency", "1", "--retries", "0", "--tries", "1", "--cache-dir", str(tmp_path / "cache")]
    with ScriptedServer(order[:3]) as server:  # dies (HTTP 500) after 3 replies
        assert main([*cmd, "--teacher-url", server.url]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "after 3 of 8 jobs" in err and "rerun the same command" in err
    assert len(read_jsonl(out)) == 3
    with out.open("a") as f:
        f.write('{"id": "torn')  # a kill mid-write
    with ScriptedServer(order[3:]) as server:
        assert main([*cmd, "--teacher-url", server.url]) == 0
        assert len(posts(server)) == 5  # only the undecided jobs are asked
    rows = read_jsonl(out)
    assert len(rows) == 8 and len({r.id for r in rows}) == 8
    assert {r.id for r in rows} == {f"{s.id}:{k}" for s in samples for k in ("zoom", "answer")}


def test_cot_errors_are_one_line(suite, tmp_path, capsys):
    with ScriptedServer([]) as server:
        assert main(["data", "cot", "needles", "--data", str(suite), "--teacher-url", server.url,
                     "--out", str(tmp_path / "x.jsonl")]) == 2
        assert "give --captions STORE" in capsys.readouterr().err
        assert main(["data", "cot", "needles", "--data", str(suite), "--teacher-url", server.url, "--kinds", "why",
                     "--out", str(tmp_path / "x.jsonl")]) == 2
        assert "--kinds takes zoom, answer" in capsys.readouterr().err
        assert main(["data", "cot", "needles", "--data", str(suite), "--teacher-url", server.url, "--kinds", "zoom",
                     "--captions", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.jsonl"),
                     "--retries", "0"]) == 2
        assert "make them first with `longlens data captions`" in capsys.readouterr().err


def test_zoom_jobs_without_truth_spans_are_decided_not_asked(samples, captions, tmp_path):
    plain = [Sample("x", "q1", samples[0].video, "Which?", ("a", "b"), "A")]
    with ScriptedServer(["\\boxed{A}"]) as server:
        backend = OpenAIBackend(server.url, "scripted-model", retries=0, frames_as_images=True)
        teacher = Teacher(backend, captions, TeacherConfig(tries=1))
        report = make_cots(plain, teacher, tmp_path / "rows.jsonl")
        assert len(posts(server)) == 1  # the answer job only: 16 frames over the whole video
        assert len([p for p in posts(server)[0]["messages"][0]["content"] if p["type"] == "image_url"]) == 16
    assert report["rejected"] == {"no truth spans": 1} and report["kept"] == {"answer": 1}
    assert read_jsonl(tmp_path / "rows.jsonl")[0].clips == ()


# ---------------------------------------------------------------- mining
class Recorder(Backend):
    """Replies from a list, in order, and records the decoding settings and the forced prefix of each call."""

    name = "recorder"

    def __init__(self, replies):
        self.model = "recorder"
        self.replies = list(replies)
        self.calls: list[tuple[GenConfig, str | None]] = []

    def generate(self, messages, gen=DEFAULT_GEN):
        from longlens.prompts.messages import forced_prefix

        self.calls.append((gen, forced_prefix(messages)))
        if not self.replies:
            raise AssertionError("no reply left: a decided question was asked again")
        return Completion(text=self.replies.pop(0), prefix=forced_prefix(messages) or "", model=self.model)


def test_mining_keeps_only_the_questions_with_mixed_rollouts(suite, samples, tmp_path):
    hit = [zoom_reply(s.spans[0]) for s in samples]
    miss = "Somewhere else. \\boxed{[0, 2]}"
    replies = [hit[0], miss, hit[0], miss,  # mixed: kept
               hit[1], hit[1], hit[1], hit[1],  # always right
               miss, miss, "no box", miss,  # always wrong
               miss, miss, miss, hit[3]]  # mixed: kept
    backend = Recorder(replies)
    out = tmp_path / "rl.jsonl"
    counts = mine(samples, Miner(backend, MineConfig(), videos_root=suite, source="needles:test"), out)
    assert counts == {"questions": 4, "kept": 2, "all_right": 1, "all_wrong": 1, "skipped": 0}
    rows = read_jsonl(out, RLRow)
    assert [(r.id, r.kind, r.correctness) for r in rows] == [(samples[0].id, "local", (1.0, 0.0, 1.0, 0.0)),
                                                             (samples[3].id, "local", (0.0, 0.0, 0.0, 1.0))]
    assert rows[0].truth == samples[0].spans and rows[0].video == "v1.mp4" and rows[0].duration_s == 30.0
    gens = [g for g, _ in backend.calls]
    assert [g.seed for g in gens[:4]] == [0, 1, 2, 3] and {g.temperature for g in gens} == {1.0}
    assert {g.top_k for g in gens} == {50} and {g.max_new_tokens for g in gens} == {1536}
    assert {prefix for _, prefix in backend.calls} == {ZOOM}  # single zoom steps after the forced prefix
    decided = [json.loads(line) for line in (tmp_path / "rl.decided.jsonl").read_text().splitlines()]
    assert [d["kept"] for d in decided] == [True, False, False, True]
    assert mine(samples, Miner(Recorder([]), MineConfig()), out)["kept"] == 2  # nothing asked again


def test_general_questions_roll_out_the_whole_loop(samples, tmp_path):
    general = [Sample("x", f"g{i}", s.video, s.question, s.options, s.answer) for i, s in enumerate(samples[:2])]
    right = [f"\\boxed{{{s.answer}}}" for s in general]
    wrong = ["\\boxed{A}" if s.answer != "A" else "\\boxed{B}" for s in general]
    backend = Recorder([right[0], wrong[0], "no box", right[0],  # mixed (no answer counts as wrong)
                        wrong[1], wrong[1], wrong[1], wrong[1]])
    from longlens.agents.zoom import ZoomConfig

    config = MineConfig(zoom=ZoomConfig(max_steps=1))
    counts = mine(general, Miner(backend, config), tmp_path / "rl.jsonl")
    assert counts["kept"] == 1 and counts["all_wrong"] == 1
    row = read_jsonl(tmp_path / "rl.jsonl", RLRow)[0]
    assert row.kind == "general" and row.correctness == (1.0, 0.0, 0.0, 1.0) and row.truth == ()
    assert {prefix for _, prefix in backend.calls} == {ANSWER}  # max_steps 1: the forced answer step
    assert [g.seed for g, _ in backend.calls[:4]] == [0, 1, 2, 3]


def test_mine_cli_with_the_scripted_backend(suite, samples, tmp_path):
    hit, miss = zoom_reply(samples[0].spans[0]), "\\boxed{[0, 2]}"
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([hit, miss, hit, hit]))
    out = tmp_path / "rl.jsonl"
    assert main(["data", "mine", "needles", "--data", str(suite), "--out", str(out), "--backend", "scripted",
                 "--script", str(script), "--rollouts", "2", "--limit", "2", "--concurrency", "1",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    rows = read_jsonl(out, RLRow)
    assert [(r.id, r.correctness) for r in rows] == [(samples[0].id, (1.0, 0.0))] and rows[0].video == "v1.mp4"
    decided = [json.loads(line) for line in (tmp_path / "rl.decided.jsonl").read_text().splitlines()]
    assert [(d["id"], d["kept"], d["correctness"]) for d in decided] == [(samples[0].id, True, [1.0, 0.0]),
                                                                          (samples[1].id, False, [0.0, 0.0])]

"""The navigate agent (LongVideo-R1): tree, prompts, parser, loop, caption store, CLI over HTTP."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from longlens.agents.navigate import NavigateAgent, NavigateConfig
from longlens.agents.navigate.actions import parse_call, parse_turn
from longlens.agents.navigate.captions import CaptionSettings, CaptionTree
from longlens.agents.navigate.tree import build_tree, tree_width
from longlens.backends.base import BackendError
from longlens.backends.scripted import ScriptedBackend
from longlens.backends.scripted_server import ScriptedServer
from longlens.cli.main import main
from longlens.errors import LongLensError
from longlens.prompts.navigate import first_message, load_navigate_profile
from longlens.synth import make_video
from longlens.video import FrameCache, open_video

PROFILE = load_navigate_profile()
OPTIONS = ["SANDAL", "TABLE", "LAMP", "CHAIR"]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "two-minutes.mp4"
    make_video(path, duration_s=120, width=320, height=180, fps=10, gop_s=2.0, seed=5, needles=2)
    return path


def captioner(model="vl-model"):
    """A caption backend that names the segment it was shown (from the first frame's time)."""
    def reply(messages):
        first = messages[1].parts[0].text
        return f"<caption>This clip starts at {first}</caption>"
    return ScriptedBackend([reply] * 2000, model=model)


# ---------------------------------------------------------------- the tree
@pytest.mark.parametrize("duration,width", [(60, 4), (1458, 4), (1459, 5), (2663, 6), (3600, 6), (4395, 7),
                                            (6751, 8), (7200, 8), (14400, 8)])
def test_width_bands(duration, width):
    assert tree_width(duration) == width


def test_width_rule_is_configurable():
    assert tree_width(600, min_width=3) == 3 and tree_width(600) == 4
    assert tree_width(3600, segment_s=4, max_width=12) == 10


class FakeInfo:
    def __init__(self, n, fps=25.0):
        self.n_frames, self.fps = n, fps
        self.times_s = np.arange(n) / fps
        self.duration_s = n / fps


@pytest.mark.parametrize("n,width", [(54321, 7), (100, 4), (108000, 6), (215999, 8)])
def test_partition_is_one_consistent_table(n, width):
    tree = build_tree(FakeInfo(n), width)
    nested = build_tree(FakeInfo(n), width, "nested")
    assert tree.partition == "reference" and len(tree.nodes) == len(nested.nodes) == width + width**2 + width**3
    for t in (tree, nested):
        for level in (1, 2, 3):
            nodes = t.level(level)
            assert nodes[0].first == 0 and nodes[-1].last == n - 1
            assert all(a.last + 1 == b.first and a.end_s == b.start_s for a, b in zip(nodes, nodes[1:], strict=False))
    for level in (1, 2, 3):  # the reference: each level split evenly over the whole video
        chunks = np.array_split(np.arange(n), width**level)
        assert [(n.first, n.last) for n in tree.level(level)] == [(int(c[0]), int(c[-1])) for c in chunks]
    for node in nested.level(3):  # nested: every child inside its parent, ids in reading order
        parent = nested.node(node.id[:2])
        assert parent.first <= node.first <= node.last <= parent.last
        ids = node.sample(16)
        assert ids[0] == node.first and ids[-1] == node.last and ids.min() >= node.first
    for node in tree.level(3):  # video_qa always looks at the nested leaf
        leaf = nested.node(node.id)
        assert (node.clip_first, node.clip_last) == (leaf.first, leaf.last)
        assert list(node.clip(16)) == list(leaf.sample(16))
    assert tree.level(1) == nested.level(1)
    assert tree.level(3)[-1].end_s == tree.duration_s and tree.last_frame_s == (n - 1) / 25.0
    leaf = tree.leaf_at(tree.duration_s / 2)
    assert leaf.start_s <= tree.duration_s / 2 < leaf.end_s
    with pytest.raises(ValueError, match="partition must be one of"):
        build_tree(FakeInfo(n), width, "recursive")


def test_tiny_videos_get_a_smaller_width():
    tree = build_tree(FakeInfo(40), 4)
    assert tree.width == 3 and all(n.n_frames >= 1 for n in tree.nodes.values())


def test_ids_out_of_range_are_explained():
    tree = build_tree(FakeInfo(1000), 4)
    assert tree.check((2, 3)) is None and tree.check((1, 2, 4)) is None
    assert "from 1 to 4" in tree.check((5, 1)) and "from 1 to 4" in tree.check((0, 1, 1))
    assert "1 to 3 numbers" in tree.check((1, 1, 1, 1))


# ---------------------------------------------------------------- prompts, byte for byte
def test_profile_strings_are_the_reference_bytes():
    digest = {k: hashlib.sha256(getattr(PROFILE, k).encode()).hexdigest()[:16] for k in
              ("system", "caption_high", "caption_low", "online_caption_high", "online_caption_low",
               "videoqa_system", "prefix")}
    assert digest == {"system": "a37de6634049d152", "caption_high": "eda6ef1030634f34",
                      "caption_low": "d59eeaafb08a5d71", "online_caption_high": "613003283671776b",
                      "online_caption_low": "9ae75976d2c948b5", "videoqa_system": "5fcf9e33aed9bc57",
                      "prefix": "f0c20c6deb544ad5"}
    system = PROFILE.system.format(width=6)
    assert system.startswith("\nYou are a reasoning assistant") and system.endswith("sufficient).</answer>\n")
    assert "divided into 6 major segments.  \n" in system and "“what color is the person’s shirt?”" in system
    assert PROFILE.caption_low.format(num_frame=32, num_word=200).count("200 words") == 1
    assert "{num_words}" in PROFILE.online_caption_high and "strictly controlled" in PROFILE.online_caption_high


def test_first_message_layout():
    m = first_message(PROFILE, "Which word?", OPTIONS, 120.0, [(0.0, 29.9, "<caption>a</caption>"),
                                                                (30.0, 59.96, "<caption>b</caption>")])
    assert m.plain_text == ("Which word?\nA. SANDAL\nB. TABLE\nC. LAMP\nD. CHAIR\n\n"
                            "The total duration of the video is 120.0 seconds.\n"
                            "High-level Caption 1 from 0.0 to 29.9:<caption>a</caption>\n"
                            "High-level Caption 2 from 30.0 to 60.0:<caption>b</caption>")


# ---------------------------------------------------------------- parsing
def test_parse_calls():
    assert parse_call("get_caption((3,4))").ids == (3, 4)
    assert parse_call("get_caption(3, 4, 1)").ids == (3, 4, 1)
    assert parse_call("get_caption([3,4])").ids == (3, 4)
    q = parse_call('video_qa((1,2,3), "what is on the table (left)?")')
    assert q.ids == (1, 2, 3) and q.query == "what is on the table (left)?" and q.problem is None
    assert "quotes" in parse_call("video_qa((1,2,3), what is it)").problem
    assert "3 numbers" in parse_call('video_qa((1,2), "x")').problem
    assert "already given" in parse_call("get_caption((2,))").problem
    assert "unknown tool" in parse_call("zoom((1,2))").problem
    assert parse_call("__import__('os').system('true')").problem  # never evaluated
    assert parse_call("get_caption(__import__('os'))").problem
    t = parse_turn("<think>a</think> <tool>get_caption((1,2))</tool> <answer>B</answer>")
    assert t.kind == "answer" and t.tool == "get_caption((1,2))" and t.think == "a"


# ---------------------------------------------------------------- the loop
def test_loop_feeds_back_mistakes_and_answers(video, tmp_path):
    cache = FrameCache(tmp_path / "c")
    reason = ScriptedBackend([
        "<think>Maybe the second quarter.</think>\n<tool>get_caption((2,3))</tool>",
        "<think>x</think><tool>get_caption((9,1))</tool>",
        "I do not know",
        '<think>Look.</think>\n<tool>video_qa((2,3,1), what word)</tool>',
        '<think>Look.</think>\n<tool>video_qa((2,3,1), "what word is shown?")</tool>',
        "<think>It says SANDAL.</think>\n<answer>A</answer>"], model="reasoner")
    vqa = ScriptedBackend(["<reasoning>..</reasoning><answer>The label reads SANDAL.</answer>"], model="vl-model")
    trace = NavigateAgent(reason, caption=captioner(), videoqa=vqa, cache=cache).run(video, "Which word?", OPTIONS)
    assert trace.choice == "A" and trace.error is None and trace.totals.steps == 6
    kinds = [s.action["kind"] for s in trace.steps]
    assert kinds == ["tool", "tool", "invalid", "tool", "tool", "answer"]
    assert [bool(s.error) for s in trace.steps] == [False, True, True, True, False, False]
    fed = reason.requests[2]["messages"][-1]["content"][0]["text"]
    assert fed.startswith(PROFILE.invalid_action) and "from 1 to 4" in fed
    obs = reason.requests[1]["messages"][-1]["content"][0]["text"]
    assert obs.startswith("Medium-level Caption from tool get_caption((2,3)). From 45.0 to 52.4:<caption>")
    info_obs = reason.requests[5]["messages"][-1]["content"][0]["text"]
    assert info_obs == "<information>The label reads SANDAL.</information>"
    vq = vqa.requests[0]["messages"][1]["content"]
    assert vq[0] == {"type": "text", "text": "what word is shown?"} and len(vq) == 33  # query + 16 x (label, image)
    assert vq[1]["text"] == "Video frame at 45.0 seconds:" and vq[2]["width"] == 320
    t = trace.totals
    assert t.calls == {"reasoning": 6, "caption": 5, "videoqa": 1} and t.errors == 3
    assert trace.steps[0].tool["cache"] == "miss" and trace.steps[4].tool["role"] == "videoqa"


def test_last_round_message_and_no_answer_is_not_a(video, tmp_path):
    reason = ScriptedBackend(["<think>hm</think><tool>get_caption((1,1))</tool>"] * 3)
    trace = NavigateAgent(reason, caption=captioner(), config=NavigateConfig(max_rounds=3),
                          cache=FrameCache(tmp_path / "c")).run(video, "Which word?", OPTIONS)
    assert trace.answer == "" and trace.choice is None and trace.totals.steps == 3
    assert reason.requests[2]["messages"][-1]["content"][0]["text"] == PROFILE.last_round
    assert trace.totals.caption_reused >= 2  # the same leaf twice: made once


def test_server_failure_ends_the_question_with_the_error(video, tmp_path):
    class Down(ScriptedBackend):
        def generate(self, messages, gen=None):
            raise BackendError("cannot reach http://127.0.0.1:9/v1")

    trace = NavigateAgent(Down([]), caption=captioner(), cache=FrameCache(tmp_path / "c")).run(video, "Q?", OPTIONS)
    assert trace.answer == "" and trace.choice is None and "cannot reach" in trace.error


def test_retry_policy_and_refused_videoqa(video, tmp_path):
    reason = ScriptedBackend(["nothing", "nothing", "nothing", '<think>t</think><tool>video_qa((1,1,1), "q")</tool>',
                              "<think>t</think><answer>B</answer>"])
    config = NavigateConfig(on_invalid="retry", max_retries=2, videoqa_needs_caption="refuse")
    trace = NavigateAgent(reason, caption=captioner(), config=config,
                          cache=FrameCache(tmp_path / "c")).run(video, "Which?", OPTIONS)
    assert [s.note.split(" (")[0] if s.note else None for s in trace.steps][:3] == ["re-asked", "re-asked", "fed back: "
                                                                                    + trace.steps[2].note[10:]]
    assert "get_caption first" in trace.steps[3].error and trace.choice == "B"
    assert len(reason.requests[1]["messages"]) == len(reason.requests[0]["messages"])  # a retry adds nothing


# ---------------------------------------------------------------- the caption store
def test_build_resumes_after_a_crash(video, tmp_path):
    cache = FrameCache(tmp_path / "c")
    info = open_video(video)

    class Flaky(ScriptedBackend):
        def generate(self, messages, gen=None):
            if len(self.requests) >= 9:
                raise BackendError("server went away")
            return super().generate(messages, gen)

    flaky = Flaky([lambda m: "<caption>first run</caption>"] * 100, model="vl-model")
    tree = CaptionTree.open(info, flaky, CaptionSettings(concurrency=1), cache=cache)
    with pytest.raises(BackendError):
        tree.build()
    stored = CaptionTree.open(info, None, cache=cache, model="vl-model").captions
    assert len(stored) == 9  # everything made before the crash is on disk
    with tree.store.path.open("a") as f:
        f.write('{"node": "3,1", "raw": "<capt')  # a torn last line
    again = CaptionTree.open(info, captioner(), CaptionSettings(concurrency=4), cache=cache)
    assert len(again.captions) == 9
    assert again.build() == 84 - 9 and len(again.captions) == 84
    assert again.captions["1"].text == "first run"


def test_import_and_export_reference_format(video, tmp_path):
    cache = FrameCache(tmp_path / "c")
    info = open_video(video)
    tree = CaptionTree.open(info, captioner(), cache=cache)
    tree.build()
    exported = tree.export_reference()
    assert exported["width"] == 4 and [len(x) for x in exported["captions"]] == [4, 16, 64]
    row = exported["captions"][1][6]  # medium (2, 3)
    assert row["segment_id"] == 7 and row["level"] == "medium"
    assert row["frame_ids"][0] == tree.tree.node((2, 3)).first
    # a 4-level file (a coarse caption first) under another model name
    four = dict(exported, captions=[[{"segment_id": 1, "level": "video", "caption": "all"}], *exported["captions"]])
    other = CaptionTree.open(info, None, cache=cache, model="published-captions")
    assert other.import_reference(four) == 84
    assert other.captions["2,3"].raw == tree.captions["2,3"].tagged
    reread = CaptionTree.open(info, None, cache=cache, model="published-captions")
    assert len(reread.captions) == 84
    with pytest.raises(LongLensError, match="captions per level"):
        other.import_reference(dict(exported, width=5))
    five = CaptionTree.open(info, None, CaptionSettings(width=5), cache=cache, model="published-captions")
    with pytest.raises(LongLensError, match="width 4 but this video's tree has width 5"):
        five.import_reference(exported)


# ---------------------------------------------------------------- end to end over HTTP
def test_ten_round_navigation_from_the_cli(video, tmp_path, capsys):
    turns = [f"<think>Round {i}.</think>\n<tool>get_caption(({1 + i % 4},{1 + i // 4 % 4},{1 + i % 3}))</tool>"
             for i in range(8)]
    turns.insert(3, "<think>Medium first.</think>\n<tool>get_caption((4,2))</tool>")
    turns.append('<think>Check the label.</think>\n<tool>video_qa((2,3,1), "which word is on the label?")</tool>')
    turns.append("<think>The label says SANDAL.</think>\n<answer>A</answer>")
    caption_reply = {"text": "<caption>This clip shows a street with a small label.</caption>"}
    trace_path = tmp_path / "trace.json"
    with ScriptedServer(turns, model="longvideor1") as reasoner, \
            ScriptedServer([caption_reply], model="vl-32b", repeat_last=True) as vl:
        code = main(["ask", str(video), "Which word is on the label?", *sum((["--option", o] for o in OPTIONS), []),
                     "--agent", "navigate", "--reasoning-url", reasoner.url, "--caption-url", vl.url,
                     "--trace", str(trace_path), "--cache-dir", str(tmp_path / "c")])
        out = capsys.readouterr().out
        assert code == 0, out
        assert len(reasoner.requests) == 11
    lines = out.splitlines()
    assert lines[0].startswith("round  1  get_caption((1,1,1))") and "[caption, miss" in lines[0]
    assert lines[10].startswith("round 11  answer A") and "answer: A (SANDAL)" in out
    trace = json.loads(trace_path.read_text())
    assert trace["agent"] == "navigate" and trace["totals"]["steps"] == 11 and trace["totals"]["calls"]["videoqa"] == 1
    assert trace["meta"]["roles"]["caption"].startswith("openai:vl-32b@") and trace["meta"]["width"] == 4
    # the conversation only grows: every request starts with the previous one
    msgs = [r["messages"] for r in reasoner.requests]
    assert all(b[:len(a)] == a for a, b in zip(msgs, msgs[1:], strict=False))
    assert msgs[0][0]["content"] == PROFILE.system.format(width=4)
    # a second run reads every caption from the store: no caption request
    with ScriptedServer(turns, model="longvideor1") as reasoner, \
            ScriptedServer([caption_reply], model="vl-32b", repeat_last=True) as vl:
        assert main(["ask", str(video), "Which word is on the label?", "--agent", "navigate", "--reasoning-url",
                     reasoner.url, "--caption-url", vl.url, "--cache-dir", str(tmp_path / "c")]) == 0
        assert len(vl.requests) == 1  # only the video_qa call
    assert "0 captions made" in capsys.readouterr().out


def test_tree_commands(video, tmp_path, capsys):
    with ScriptedServer([{"text": "<caption>A street.</caption>"}], model="vl-32b", repeat_last=True) as vl:
        assert main(["tree", "build", str(video), "--caption-url", vl.url, "--cache-dir", str(tmp_path / "c")]) == 0
        assert len(vl.requests) == 84
    assert "width 4, 84/84 captions (84 made now)" in capsys.readouterr().out
    out_file = tmp_path / "tree.json"
    assert main(["tree", "export", str(video), str(out_file), "--caption-model", "vl-32b",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    assert main(["tree", "import", str(video), str(out_file), "--caption-model", "published",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    assert "imported 84 captions" in capsys.readouterr().out
    assert main(["tree", "show", str(video), "--caption-model", "published", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "84/84 captions" in capsys.readouterr().out
    assert main(["tree", "import", str(video), str(tmp_path / "missing.json"), "--caption-model", "x"]) == 2
    assert "no such caption file" in capsys.readouterr().err


def test_offline_backend_captions_what_it_can_read_and_says_so(tmp_path, capsys):
    path = tmp_path / "needles.mp4"
    key = make_video(path, duration_s=120, width=320, height=180, fps=10, gop_s=2.0, seed=5, needles=2)
    obj = next(n for n in key.needles if n.kind == "object")
    text = next(n for n in key.needles if n.kind == "text")
    cache_dir = str(tmp_path / "c")
    info = open_video(path)
    from longlens.backends.offline import OfflineBackend

    tree = CaptionTree.open(info, OfflineBackend(), cache=FrameCache(cache_dir))
    cap, _ = tree.get(tree.tree.leaf_at((obj.start_s + obj.end_s) / 2))
    assert obj.content in cap.text and "offline describer" in cap.text  # e.g. "a vivid blue circle at 52.5s"
    cap, _ = tree.get(tree.tree.leaf_at((text.start_s + text.end_s) / 2))
    assert "on-screen text" in cap.text
    # video_qa through the CLI with the offline backend for both vision roles
    leaf = tree.tree.leaf_at((text.start_s + text.end_s) / 2)
    turns = [f'<think>t</think><tool>video_qa(({leaf.id[0]},{leaf.id[1]},{leaf.id[2]}), "what is written?")</tool>',
             "<think>t</think><answer>A</answer>"]
    with ScriptedServer(turns, model="reasoner") as reasoner:
        assert main(["ask", str(path), "What is written?", "--agent", "navigate", "--reasoning-url", reasoner.url,
                     "--caption-offline", "--cache-dir", cache_dir]) == 0
        info_obs = reasoner.requests[1]["messages"][-1]["content"]
    assert info_obs.startswith("<information>") and "reads" in info_obs
    assert "answer: A" in capsys.readouterr().out


def test_trees_open_together_on_one_video_make_each_caption_once(video, tmp_path):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from longlens.backends.base import Backend, Completion

    class Slow(Backend):
        name, model = "slow", "slow-captioner"

        def __init__(self):
            self.calls = 0
            self.lock = threading.Lock()

        def generate(self, messages, gen=None):
            with self.lock:
                self.calls += 1
            threading.Event().wait(0.05)  # long enough for the other question to ask for the same caption
            return Completion(text="a caption")

    backend, cache = Slow(), FrameCache(tmp_path / "cache")
    info = open_video(video)
    trees = [CaptionTree.open(info, backend, cache=cache) for _ in range(3)]  # three questions in flight
    with ThreadPoolExecutor(3) as pool:
        made = list(pool.map(lambda t: t.build((1,)), trees))
    width = trees[0].tree.width
    assert backend.calls == width and sum(made) == width  # each made once, counted once
    assert all(len(t.captions) == width for t in trees)
    lines = trees[0].store.path.read_text().splitlines()
    assert len(lines) == 1 + width and sum('"header"' in x for x in lines) == 1

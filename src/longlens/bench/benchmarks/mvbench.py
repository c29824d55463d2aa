"""MVBench: `data` is the folder of ``<task>.json`` files (every one is loaded, task = file stem; answers are
option texts). `videos` is the MVBench video root; each task's folder is looked up as in `FOLDERS`.

``start``/``end`` (bounded tasks) stay in ``raw`` only: the question is answered over the whole file, so give
the pre-cut lmms-eval folders (``star/Charades_segment``, ...), which are tried first.

Official rule: MVBench's ``check_ans`` (`mvbench_official`); the headline is the mean of the task accuracies.
"""

from __future__ import annotations

from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import Loaded, letter_of, odd_note, read_records, record, video_path
from longlens.bench.sample import LETTERS, Sample
from longlens.errors import LongLensError

_STAR = ("star/Charades_v1_480", "star/Charades_segment")
_CLEVRER = ("clevrer/video_validation",) * 2
_PERCEPTION = ("perception/videos",) * 2
FOLDERS: dict[str, tuple[str, str]] = {
    "action_sequence": _STAR, "action_prediction": _STAR, "object_interaction": _STAR,
    "action_antonym": ("ssv2_video", "ssv2_video_mp4"),
    "fine_grained_action": ("Moments_in_Time_Raw/videos",) * 2,
    "unexpected_action": ("FunQA_test/test",) * 2,
    "object_existence": _CLEVRER, "moving_direction": _CLEVRER, "moving_count": _CLEVRER,
    "moving_attribute": _CLEVRER, "counterfactual_inference": _CLEVRER,
    "object_shuffle": _PERCEPTION, "action_count": _PERCEPTION, "state_change": _PERCEPTION,
    "character_order": _PERCEPTION,
    "action_localization": ("sta/sta_video", "sta/sta_video_segment"),
    "scene_transition": ("scene_qa/video",) * 2,
    "fine_grained_pose": ("nturgbd", "nturgbd_convert"),
    "egocentric_navigation": ("vlnqa",) * 2,
    "episodic_reasoning": ("tvqa/frames_fps3_hq", "tvqa/video_fps3_hq_segment"),
}
"""Task (json file stem) -> (VLMEvalKit folder, lmms-eval folder) under the MVBench video root."""


def mvbench_official(reply: str, letters: str = "ABCDE") -> str | None:
    """``check_ans``: the reply's first whitespace token, lowercased and without ".", is compared with "(a)",
    "(b)", ... by substring either way; the first letter that matches. Quirk kept: a reply starting with the
    article "a" reads as A. An empty reply gives None (officially "" is inside every "(x)")."""
    tokens = reply.lower().split()
    if not tokens:
        return None
    token = tokens[0].replace(".", "")
    for letter in letters:
        tag = f"({letter.lower()})"
        if token and (token in tag or tag in token):
            return letter
    return None


def _video(root: Path | None, task: str, name: str, missing: list[str]) -> str:
    """The first existing file among the lmms-eval folder (pre-cut), the VLMEvalKit folder and the root itself,
    with the record's extension or another video extension (ssv2 .webm -> .mp4)."""
    if root is None:
        return name
    vlm, lmms = FOLDERS.get(task, ("", ""))
    stem = str(Path(name).with_suffix(""))
    for sub in dict.fromkeys((lmms, vlm, "")):
        base = root / sub if sub else root
        for candidate in (name, stem):
            scratch: list[str] = []
            path = video_path(base, candidate, scratch)
            if not scratch:
                return path
    return video_path(root / vlm if vlm else root, name, missing)


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    src = Path(data)
    if not src.is_dir() or not sorted(src.glob("*.json")):
        raise LongLensError(f"{src}: give the MVBench json folder (action_sequence.json ... 20 task files)")
    root = Path(videos) if videos is not None else None
    missing: list[str] = []
    out = []
    odd: list[str] = []
    for f in sorted(src.glob("*.json")):
        task = f.stem
        for i, r in enumerate(read_records(f)):
            with record(f"{f}: record {i}"):
                options = tuple(r["candidates"])
                letter = letter_of(r["answer"], options, f"{f.name}#{i}", odd)
                out.append(Sample("mvbench", f"{task}-{i}", _video(root, task, r["video"], missing), r["question"],
                                  options, letter, video_id=f"{FOLDERS.get(task, (task,))[0]}/{r['video']}",
                                  categories={"task": task}, raw=r, source={"file": f.name, "index": i}))
    return Loaded(out, sorted(set(missing)), odd_note("MVBench", odd, "whose answer is none of their candidates"))


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    got = mvbench_official(reply or "", LETTERS[: len(sample.options) or 5])
    return {"parsed": got, "correct": got is not None and got == sample.answer}


BENCHMARK = Benchmark(
    name="mvbench", title="MVBench", load=load, official=_official, official_policy="wrong",
    rules={"mvbench": lambda reply, s: mvbench_official(reply, LETTERS[: len(s.options) or 5])},
    breakdowns=("task",), macro="task mean",
    official_source="OpenGVLab/Ask-Anything video_chat2/mvbench.ipynb (check_ans)",
    data_help="the folder of the task json files")

"""CG-Bench ``cgbench.json`` / ``cgbench_mini.json``: choices, a letter answer and clue intervals (seconds).

Official scorer: CG-Bench/CG-Bench@f826608 ``run/utils.py`` (``post_process``, ``calculate_intervals_iou``,
``merge_intervals``) and ``run/stat_with_key.py``; reproduced here, quirks kept:

* long_acc (`long_acc_result`): the ``result`` of the first ```json block (a word after ": " quoted first,
  ``post_process`` l.413), compared with the letter exactly (``"F "`` is wrong); when that block is absent or
  unreadable (any exception: deep nesting, 5000-digit numbers, a list, no ``result``), 1 if the true letter is
  among the standalone capitals A-H of the reply ("A or C" is right when either is), 0 if others are, and
  no result when there are none.
* mIoU (`miou_result`): spans given as data, else the ``result`` of the ```json block, else every number of
  the reply taken in pairs (an odd count: no result); `calculate_intervals_iou` as written (intervals sorted
  by start, merged, reversed ones not reordered: their negative lengths count).
* A question without a result, or whose reading raised, is not saved (``run_api.py`` l.85, l.90) and
  leaves that statistic's denominator;
  ``stat_with_key.py``: long_acc and mIoU the mean of the saved results; rec@IoU the share of (question,
  threshold) pairs with mIoU >= t for t in 0.1 ... 0.5; acc@IoU the same over the questions with both results,
  counting those whose long_acc is 1.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import Loaded, folder, odd_note, read_records, record, video_path
from longlens.bench.sample import LETTERS, Sample
from longlens.bench.stats import metric

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)
_QUOTE_WORD = re.compile(r"(?<=:\s)([A-Za-z_]\w*)")
_LETTER = re.compile(r"\b[A-H]\b")
_NUMBER = re.compile(r"-?\d+\.?\d*")
_UNSET = object()


def duration_bin(seconds: float) -> str:
    """CG-Bench's 10-minute duration bins: "0-10" ... "50-60", "60+" (minutes)."""
    minutes = seconds / 60
    if minutes >= 60:
        return "60+"
    lo = int(minutes // 10) * 10
    return f"{lo}-{lo + 10}"


def _json_result(reply: str, quote_words: bool):
    """The ``result`` of the reply's first ```json block, or `_UNSET` (no block, or any failure reading it)."""
    start = reply.find("```json")
    end = reply.find("```", start + len("```json"))
    if start == -1 or end == -1:
        return _UNSET
    content = reply[start + len("```json") : end].strip()
    if not content:
        return _UNSET
    if quote_words:
        content = _QUOTE_WORD.sub(r'"\1"', content)
    try:
        return json.loads(content)["result"]
    except Exception:  # as post_process: whatever goes wrong, the reply is read another way  # noqa: BLE001
        return _UNSET


def long_acc_result(reply: str, truth: str) -> tuple[int | None, str | None]:
    """(official long_acc result 1 / 0 / None, what was read: the JSON value as text or the credited letter)."""
    if not reply:
        return None, None
    value = _json_result(reply, quote_words=True)
    if value is not _UNSET:
        return (1 if truth == value else 0), (value if isinstance(value, str) else json.dumps(value))
    found = _LETTER.findall(reply)
    if not found:
        return None, None
    return (1, truth) if truth in found else (0, found[0])


def merge_intervals(intervals: list) -> list:
    """``merge_intervals``: sorted by start; an interval starting at or before the last merged end extends it."""
    if not intervals:
        return []
    if not isinstance(intervals, list):
        raise AttributeError("only a list has .sort()")  # as the official in-place sort fails
    intervals = sorted(intervals, key=lambda x: x[0])
    merged = [intervals[0][:]]  # copies, so the caller's lists stay as they were (the official mutates them)
    for current in intervals[1:]:
        if current[0] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], current[1])
        else:
            merged.append(current[:])
    return merged


def calculate_intervals_iou(intervals1: list, intervals2: list) -> float:
    """``calculate_intervals_iou``: each set merged; summed pairwise intersections over len1 + len2 - inter."""
    merged1, merged2 = merge_intervals(intervals1), merge_intervals(intervals2)
    length1 = sum(end - start for start, end in merged1)
    length2 = sum(end - start for start, end in merged2)
    inter = 0
    for a in merged1:
        for b in merged2:
            inter += max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = length1 + length2 - inter
    return inter / union if union > 0 else 0


def miou_result(reply: str | None, truth: list, spans: list | None = None) -> float | None:
    """The official mIoU result of one question: `spans` (data) win, else read from the reply; None: not saved."""
    if spans is not None:
        return calculate_intervals_iou([list(s) for s in spans], truth)
    if not reply:
        return None
    value = _json_result(reply, quote_words=False)
    iou = _iou_or_none(value, truth) if value is not _UNSET else None
    if iou is not None:  # a result that fails (post_process's try) falls back to the numbers
        return iou
    numbers = _NUMBER.findall(reply)
    if len(numbers) % 2:
        return None
    # tuples, as there: two overlapping ones fail to merge (a tuple cannot be assigned to), an error that
    # run_api.py's process_single_file catches, saving nothing
    return _iou_or_none([(float(numbers[i]), float(numbers[i + 1])) for i in range(0, len(numbers), 2)], truth)


def _iou_or_none(intervals, truth: list) -> float | None:
    """`calculate_intervals_iou`, None where the official call raises (any malformed interval list)."""
    try:
        return calculate_intervals_iou(intervals, truth)
    except Exception:  # noqa: BLE001 - whatever the model wrote
        return None


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    missing: list[str] = []
    out = []
    odd: list[str] = []
    path = Path(data)
    for i, r in enumerate(read_records(path)):
        with record(f"{path}: record {i}"):
            options = tuple(r["choices"])
            answer = str(r["right_answer"])
            if answer not in LETTERS[: len(options)]:
                odd.append(f"#{i}")
            spans = tuple((float(s), float(e)) for s, e in r.get("clue_intervals") or ())
            duration = float(r["duration"]) if r.get("duration") is not None else None
            out.append(Sample("cgbench", str(r["qid"]), video_path(folder(videos), str(r["video_uid"]), missing),
                              r["question"], options, answer, video_id=str(r["video_uid"]), duration_s=duration,
                              spans=spans, task="grounded_choice", raw=r, source={"file": path.name, "index": i},
                              categories={"duration": duration_bin(duration) if duration is not None else None,
                                          "domain": r.get("domain"), "sub_category": r.get("sub_category")}))
    return Loaded(out, sorted(set(missing)), odd_note("CG-Bench", odd, "whose right_answer is no letter of theirs"))


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    truth = [list(s) for s in (sample.raw.get("clue_intervals") or sample.spans)]
    acc, read = long_acc_result(reply, sample.answer) if reply is not None else (None, None)
    miou = miou_result(reply, truth, spans) if reply is not None else None
    out = {"parsed": read, "correct": acc == 1, "long_acc": acc, "miou": miou}
    if spans:
        out["spans"] = [list(s) for s in spans]
    return out


def official_metrics(records: list[dict]) -> dict:
    accs = [r for r in records if r.get("long_acc") is not None]
    ious = [r for r in records if r.get("miou") is not None]
    both = [r for r in ious if r.get("long_acc") is not None]
    rec = sum(sum(r["miou"] >= t for r in ious) for t in THRESHOLDS)
    hit = sum(sum(r["miou"] >= t and r["long_acc"] == 1 for r in both) for t in THRESHOLDS)
    return {
        "long_acc": metric(sum(r["long_acc"] for r in accs) / len(accs) if accs else 0, len(accs)),
        "mIoU": metric(sum(r["miou"] for r in ious) / len(ious) if ious else 0, len(ious)),
        "rec@IoU": metric(rec / (len(ious) * 5) if ious else 0, len(ious)),
        "acc@IoU": metric(hit / (len(both) * 5) if both else 0, len(both)),
    }


BENCHMARK = Benchmark(
    name="cgbench", title="CG-Bench", load=load, official=_official, official_metrics=official_metrics,
    rules={"cgbench": lambda reply, s: long_acc_result(reply, s.answer)[1]},
    breakdowns=("duration", "domain", "sub_category"), thresholds=THRESHOLDS,
    official_source="CG-Bench/CG-Bench@f826608 run/utils.py (post_process, calculate_intervals_iou), "
                    "run/stat_with_key.py",
    data_help="cgbench.json or cgbench_mini.json")

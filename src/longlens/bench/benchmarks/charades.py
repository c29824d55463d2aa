"""Charades-STA: ``charades_sta_test.txt`` (TALL format, ``<vid> <start> <end>##<sentence>``) or lmms-eval's
JSON/JSONL (``video``, ``caption``, ``timestamp``). Grounding: no options, the truth is the one span.

Official scorer: lmms-eval's ``lmms_eval/tasks/charades_sta/eval_tvg.py`` (EvolvingLMMs-Lab/lmms-eval@09df333),
which scores the submission file its ``utils.py`` writes; reproduced here, quirks kept:

* `extract_time`: lower case, the prompt's example sentence removed, every "to" made "-" (inside words too:
  "stop" -> "s-p"); every ``a - b`` of the whole reply (the first one is kept), else the first number of each
  sentence (split on ``! ? newline``) that names start/end/happen, taken in pairs; reversed ends swapped.
  Its third reader (``hh:mm:ss`` times) can add nothing: ``re.findall`` with two groups gives tuples, whose
  ``count(':')`` is 0, and it is reached only when at most one candidate sentence holds a number.
* A reply that gives no span is scored with ``[gt_end + 10, gt_end + 20]`` (IoU 0); spans given as data are
  used as written. IoU is ``max(min_end - max_start, 0) / (max_end - min_start)``.
* The submission is a dict keyed ``video>>>caption>>>timestamp``: questions with the same video, sentence and
  span are one entry (the last prediction wins) and the denominator counts entries.
* The range pattern is written without its catastrophic backtracking (same matches, see `_RANGE`).
* Deviation: where the official reader raises (a match such as ``1..2 - 3`` is not a float), the reply is
  read as giving no span instead of stopping the evaluation.
"""

from __future__ import annotations

import re
from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import Loaded, folder, read_records, record, video_path
from longlens.bench.sample import Sample
from longlens.bench.stats import metric
from longlens.errors import LongLensError

THRESHOLDS = (0.3, 0.5, 0.7)
_TALL = re.compile(r"^(\S+)\s+([\d.]+)\s+([\d.]+)\s*##(.*)$")
_PROMPT = "A specific example is : 20.8 - 30.0 seconds".lower()
_KEYWORDS = ("starts", "ends", "happens in", "start time", "end time", "start", "end", "happen")
_RANGE = re.compile(r"(\d++(?:\.++\d*+)?+)\s*-\s*(\d++(?:\.++\d*+)?+)")
r"""The official ``(\d+\.*\d*)\s*-\s*(\d+\.*\d*)`` with possessive quantifiers: the same matches (one parse
per match, and the first group must end where its run of digits and dots ends), without the official
pattern's cubic backtracking (800 digits in a row: 3 s; 5000: minutes)."""
_FIRST_NUMBER = re.compile(r"\b(\d+\.\d+\b|\b\d+)\b")


def extract_time(reply: str) -> list[list[float]]:
    """eval_tvg.py's ``extract_time``: [] or one ``[start, end]``. Raises ValueError where the official does."""
    paragraph = reply.lower().replace(_PROMPT, "").replace("to", "-")
    sentences = re.split(r"[!?\n]", paragraph)
    candidates = [s for s in sentences if any(k in s for k in _KEYWORDS)]
    timestamps = [[float(a), float(b)] for a, b in _RANGE.findall(paragraph)]
    if not timestamps:
        times = []
        for sentence in candidates:
            found = _FIRST_NUMBER.findall(sentence)
            if found:
                times.append(float(found[0]))
        times = times[: len(times) // 2 * 2]
        timestamps = [[times[i], times[i + 1]] for i in range(0, len(times), 2)]
    return [[a, b] if b > a else [b, a] for a, b in timestamps[:1]]


def iou(gt, pred) -> float:
    """eval_tvg.py's ``iou(A, B)``."""
    max0, min0 = max(gt[0], pred[0]), min(gt[0], pred[0])
    max1, min1 = max(gt[1], pred[1]), min(gt[1], pred[1])
    return max(min1 - max0, 0) / (max1 - min0) if max1 != min0 else 0.0


def _rows(path: Path) -> list[tuple[str, float, float, str, dict]]:
    if path.suffix == ".txt":
        if not path.is_file():
            raise LongLensError(f"{path}: no such annotation file; give charades_sta_test.txt with --data")
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            m = _TALL.match(line.strip())
            if not m:
                raise LongLensError(f"{path}: line {n} is not '<vid> <start> <end>##<sentence>'")
            rows.append((m[1], float(m[2]), float(m[3]), m[4].strip(), {"line": line}))
        return rows
    rows = []
    for i, r in enumerate(read_records(path)):
        with record(f"{path}: record {i}"):
            ts = r["timestamp"]
            if isinstance(ts, str):
                ts = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", ts)]
            if len(ts) != 2:
                raise LongLensError(f"{path}: record {i}: timestamp {r['timestamp']!r} is not [start, end]")
            rows.append((str(r["video"]), float(ts[0]), float(ts[1]), str(r["caption"]).strip(), r))
    return rows


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    path = Path(data)
    missing: list[str] = []
    out = []
    for i, (video, s, e, sentence, raw) in enumerate(_rows(path)):
        vid = Path(video).stem
        out.append(Sample("charades", f"{vid}_{i}", video_path(folder(videos), video, missing), sentence, (), None,
                          video_id=vid, spans=((s, e),), task="grounding", raw=raw,
                          source={"file": path.name, "index": i}))
    return Loaded(out, sorted(set(missing)))


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    gt = list(sample.spans[0])
    if spans is not None:
        found = [list(spans[0])] if spans else []
    else:
        try:
            found = extract_time(reply or "")
        except ValueError:  # the official evaluation stops here; we read no span (see the module notes)
            found = []
    span = found[0] if len(found) == 1 else None
    scored = span if span is not None else [gt[1] + 10, gt[1] + 20]
    return {"parsed": "span" if span is not None else None, "correct": False, "span": span, "iou": iou(gt, scored),
            "official_key": f"{sample.video_id}>>>{sample.question}>>>{gt}"}


def official_metrics(records: list[dict]) -> dict:
    """mIoU, R@0.3, R@0.5, R@0.7 over the submission's entries (one per distinct video, sentence and span)."""
    entries = {r.get("official_key", r["id"]): r for r in records}
    ious = [r["iou"] for r in entries.values()]
    n = len(ious)
    out = {"mIoU": metric(sum(ious) / n if n else 0.0, n)}
    out.update({f"R@{t}": metric(sum(1 for u in ious if u >= t) / n if n else 0.0, n) for t in THRESHOLDS})
    return out


BENCHMARK = Benchmark(
    name="charades", title="Charades-STA", load=load, official=_official, official_metrics=official_metrics,
    thresholds=THRESHOLDS,
    official_source="EvolvingLMMs-Lab/lmms-eval@09df333 lmms_eval/tasks/charades_sta/eval_tvg.py",
    data_help="charades_sta_test.txt (TALL format) or lmms-eval's JSON/JSONL")

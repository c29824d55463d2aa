"""EgoSchema subset: `data` is ``questions.json``; only the questions answered in ``subset_answers.json`` (beside
it) are loaded, and a note says how many of all.

Official rule: lmms-eval's EgoSchema (MMMU-style) reader, `egoschema_official`; a reply it cannot read gets a
random option there (the ``random`` policy).
"""

from __future__ import annotations

from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.benchmarks.videomme import LETTERED
from longlens.bench.loading import UNANSWERABLE, Loaded, folder, odd_note, read_json, read_records, record, video_path
from longlens.bench.sample import LETTERS, Sample

_EDGE_PUNCT = ",.!?;:'"


def egoschema_official(reply: str, options: tuple[str, ...] | list[str], letters: str = "ABCDE") -> str | None:
    """Candidates written ``(A)``, ``A `` or ``A.`` in the reply (punctuation stripped from its ends, padded with
    spaces); with none and more than 5 words, every option whose text the reply contains. Several: the one
    whose last occurrence comes first. None when nothing is found."""
    letters = letters[: len(options)] if options else letters
    text = " " + reply.strip().strip(_EDGE_PUNCT) + " "
    last: dict[str, int] = {}
    for letter in letters:
        at = max(text.rfind(f"({letter})"), text.rfind(f"{letter} "), text.rfind(f"{letter}."))
        if at >= 0:
            last[letter] = at
    if not last and len(text.split()) > 5:
        low = text.lower()
        for letter, option in zip(letters, options, strict=False):
            if option and option.lower() in low:
                last[letter] = low.rfind(option.lower())
    return min(last, key=last.get) if last else None


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    path = Path(data)
    answers = read_json(path.with_name("subset_answers.json"), "EgoSchema subset_answers.json")
    missing: list[str] = []
    out = []
    odd: list[str] = []
    records = read_records(path)
    for i, r in enumerate(records):
        with record(f"{path}: record {i}"):
            uid = r["q_uid"]
            if uid not in answers:
                continue
            options = tuple(LETTERED.sub("", str(r[f"option {k}"]), count=1) for k in range(5) if f"option {k}" in r)
            k = int(answers[uid])
            letter = LETTERS[k] if 0 <= k < len(options) else UNANSWERABLE
            if letter == UNANSWERABLE:
                odd.append(uid)
            out.append(Sample("egoschema", uid, video_path(folder(videos), uid, missing), r["question"], options,
                              letter, video_id=uid, raw=r, source={"file": path.name, "index": i}))
    note = f"egoschema: {len(out)} of {len(records)} questions have a public answer (subset_answers.json); loaded those"
    return Loaded(out, sorted(set(missing)), [note, *odd_note("EgoSchema", odd, "whose answer is no option")])


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    got = egoschema_official(reply or "", sample.options)
    return {"parsed": got, "correct": got is not None and got == sample.answer}


BENCHMARK = Benchmark(
    name="egoschema", title="EgoSchema (subset)", load=load, official=_official, official_policy="random",
    rules={"egoschema": lambda reply, s: egoschema_official(reply, s.options)},
    official_source="EvolvingLMMs-Lab/lmms-eval tasks/egoschema",
    data_help="questions.json (subset_answers.json beside it)")

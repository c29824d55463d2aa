"""`longlens score BENCH --data PATH --predictions PRED.jsonl`: score predictions made elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

from longlens.bench.benchmarks import BENCHMARKS, get
from longlens.bench.scorers import check_extractor
from longlens.cli._common import add_scoring_options
from longlens.errors import LongLensError
from longlens.jsonl import dumps, write_atomic, write_json


def add_parser(sub, name):
    p = sub.add_parser(name, help="score predictions made elsewhere, or list a benchmark's questions",
                       description="Score a predictions file (JSON lines {\"id\", \"reply\", \"span\"?, \"spans\"?}) "
                                   "with a benchmark's metrics; --extractor official reproduces the official "
                                   "script, number for number. With --template, write the question list instead.")
    p.add_argument("bench", choices=sorted(BENCHMARKS))
    p.add_argument("--data", required=True, help="the benchmark's annotation file or folder, as for eval")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--predictions", metavar="PRED.jsonl", help="the predictions to score")
    what.add_argument("--template", metavar="OUT.jsonl",
                      help="write one line per question ({id, question, options, source}) and stop")
    add_scoring_options(p)
    p.add_argument("--out", metavar="DIR", help="write DIR/summary.json and DIR/results.jsonl")
    return p


def run(args) -> int:
    from longlens.bench.metrics import summarize
    from longlens.bench.predictions import read_predictions, score_predictions, template

    bench = get(args.bench)
    loaded = bench.load(args.data, None)
    for note in loaded.notes:
        print(note, file=sys.stderr)
    if args.template:
        lines = template(loaded.samples)
        _write_lines(Path(args.template), lines)
        print(f"{len(lines)} questions of {args.bench} -> {args.template}")
        return 0
    check_extractor(args.extractor, args.bench)
    predictions = read_predictions(args.predictions)
    ids = {s.id for s in loaded.samples}
    unknown = [k for k in predictions.by_id if k not in ids]
    if unknown and len(unknown) == len(predictions.by_id):
        raise LongLensError(f"{args.predictions}: none of its ids is a {args.bench} question id (e.g. "
                            f"{unknown[0]!r}); list them with --template")
    records = score_predictions(loaded.samples, predictions, args.extractor)
    summary = summarize(records, args.bench, policy=args.policy, extractor=args.extractor)
    summary.update(questions=len(records), predictions=len(predictions.by_id), unknown_ids=len(unknown),
                   duplicate_ids=len(predictions.duplicates), data=str(args.data),
                   predictions_file=str(args.predictions))
    if unknown:
        print(f"{len(unknown)} prediction(s) name no {args.bench} question (e.g. {unknown[0]!r}); ignored",
              file=sys.stderr)
    if predictions.duplicates:
        print(f"{len(predictions.duplicates)} id(s) given more than once (e.g. {predictions.duplicates[0]!r}); "
              "the last line counts", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "summary.json", summary)
        _write_lines(out / "results.jsonl", records)
    print(f"{args.bench} ({args.extractor}): {len(records) - summary['missing_predictions']}/{len(records)} "
          f"questions have a prediction")
    for name, m in summary["metrics"].items():
        print(f"  {name:<10} {m['value']:.4f}  (n={m['n']})")
    if args.out:
        print(f"summary in {Path(args.out) / 'summary.json'}")
    return 0


def _write_lines(path: Path, lines: list[dict]) -> None:
    write_atomic(path, "".join(dumps(line) + "\n" for line in lines))

"""`longlens data captions|cot|mine|filter|export`: building LOVE-R1's training data (as the reference's
HumanMLLM/LOVE-R1@aa1facb process_data/ scripts do).

* ``captions``: captions of fixed-length clips of a benchmark's videos (`data.clipcaps`), cached;
* ``cot``: teacher CoTs through an OpenAI-compatible server (`data.teacher`) -> `CotRow` JSON lines;
* ``mine``: hard-example mining with our zoom agent (`data.mining`) -> `RLRow` JSON lines;
* ``filter`` / ``export``: CoT rows filtered with a per-reason report, or exported for LLaMA-Factory.

The three builders are resumable: rerun the same command to go on after a kill or a failing server.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from longlens.errors import LongLensError

BUILDERS = ("captions", "cot", "mine", "rows", "check")


def add_parser(sub, name):
    from longlens.data.released import FORMATS

    p = sub.add_parser(name, help="training data: clip captions, teacher CoTs, hard-example mining; filter, export",
                       description="Build and tidy LOVE-R1 training data (CoT rows and RL rows, JSON lines).")
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    add_builders(tools)
    add_rows(tools)
    f = tools.add_parser("filter", help="keep the rows every filter keeps; print and save a per-reason report",
                         description="Apply the named filters (bad_box, wrong_prefix, wrong_answer, zoom_miss, "
                                     "bad_span, repeated_pattern, mentions_unseen, mentions_hint) in that order.")
    f.add_argument("rows", help="CoT rows (JSON lines)")
    f.add_argument("--out", required=True, help="kept rows (JSON lines; must not exist yet)")
    f.add_argument("--report", help="the report as JSON (default: OUT with suffix .report.json)")
    f.add_argument("--min-iou", type=float, default=0.1, help="zoom_miss: least IoU with a truth span (0.1)")
    f.add_argument("--max-span", type=float, default=60.0, help="bad_span: longest clip in seconds (60)")
    f.add_argument("--skip", default="", help="filters to leave out, comma-separated")
    e = tools.add_parser("export", help="write LLaMA-Factory multimodal records (sharegpt style) and cut their clips",
                         description="One record per row: the fast view and each clip as <video> entries. "
                                     "LLaMA-Factory reads whole files only, so each clip is cut to its own file "
                                     "(frame exact, H.264); a rerun cuts only the missing ones.")
    e.add_argument("rows", help="CoT rows (JSON lines)")
    e.add_argument("--videos", required=True, metavar="DIR", help="the folder the rows' video paths are under")
    e.add_argument("--clips", metavar="DIR", help="where the clip files are cut to (default: VIDEOS/clips)")
    e.add_argument("--out", required=True, help="the JSON file to write (a list of records)")
    e.add_argument("--no-cut", action="store_true", help="write the records only (the clips are cut elsewhere)")
    e.add_argument("--concurrency", type=int, default=2, help="clips cut at once (default 2)")
    k = tools.add_parser("check", help="does every row of a training file find its video? per source data set",
                         description="Read a training file in any format LongLens trains on (LOVE-R1's released SFT "
                                     "and RL JSON, LongVideo-R1's LLaMA-Factory JSON and RL parquet, our JSON lines), "
                                     "place each row's video with --video-root, open each video once, and report per "
                                     "source how many rows resolve to a readable video; the first problems are "
                                     "listed one a line. Exit 1 when anything is missing, unreadable or malformed.")
    k.add_argument("file", help="the annotation file (.json, .jsonl or .parquet)")
    k.add_argument("--video-root", dest="video_roots", action="append", default=[], metavar="NAME=DIR",
                   help="the folder of a source data set (repeatable; a path with a folder NAME in it is looked up "
                        "under DIR); a plain DIR is the folder of everything else")
    k.add_argument("--format", choices=FORMATS, help="the file's format (default: recognised from its fields)")
    k.add_argument("--exists-only", action="store_true", help="check that the files exist; do not open them")
    k.add_argument("--show", type=int, default=10, metavar="N", help="problems listed per kind (default 10)")
    k.add_argument("--concurrency", type=int, default=4, help="videos opened at once (default 4)")
    return p


def _bench_options(p) -> None:
    from longlens.bench.benchmarks import BENCHMARKS

    p.add_argument("bench", choices=sorted(BENCHMARKS))
    p.add_argument("--data", required=True, help="the benchmark's annotation file (needles: answer keys)")
    p.add_argument("--videos", metavar="DIR", help="the videos folder (needles: default beside the keys)")
    p.add_argument("--limit", type=int, help="the first N questions only")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")


def add_builders(tools) -> None:
    from longlens.cli._common import add_cache_options
    from longlens.cli.backend_options import add_backend_options, add_transport_options, add_zoom_options
    from longlens.cli.roles import add_role_options

    c = tools.add_parser("captions", help="caption fixed-length clips of a benchmark's videos (cached)",
                         description="Clips [i*c, (i+1)*c) of every video (trailing partial clip dropped), 2*c frames "
                                     "each at 512x28x28 pixels, the reference's caption prompt. Default caption "
                                     "backend: the embedded offline one. A rerun makes only the missing captions.")
    _bench_options(c)
    c.add_argument("--out", required=True, metavar="STORE", help="caption store folder (created; reused)")
    c.add_argument("--clip-s", type=float, default=10.0, help="clip length in seconds (default 10)")
    add_role_options(c, roles=("caption",))
    add_transport_options(c)
    add_cache_options(c)

    t = tools.add_parser("cot", help="teacher CoTs (zoom-in from captions, answer from frames) -> CoT rows",
                         description="Ask an OpenAI-compatible teacher for zoom-in CoTs (text: the clip captions) and "
                                     "answer CoTs (frames of the first truth span +-5 s, with the answer as a hint); "
                                     "keep the first accepted candidate of each. Resumable.")
    _bench_options(t)
    t.add_argument("--captions", metavar="STORE", help="the store of `longlens data captions` (zoom CoTs)")
    t.add_argument("--caption-model", help="whose stored captions to read when the store has several")
    t.add_argument("--clip-s", type=float, help="which clip length to read when the store has several")
    t.add_argument("--teacher-url", required=True, metavar="URL", help="OpenAI-compatible server, e.g. "
                                                                       "https://api.example.com/v1")
    t.add_argument("--teacher-model", help="model name there (default: the only one served)")
    t.add_argument("--out", required=True, metavar="ROWS", help="CoT rows (JSON lines; appended, resumable)")
    t.add_argument("--kinds", default="zoom,answer", help="which CoTs: zoom, answer or both (default)")
    t.add_argument("--tries", type=int, default=3, help="candidates asked per CoT at most (default 3)")
    t.add_argument("--temperature", type=float, default=1.0, help="teacher sampling temperature (default 1.0)")
    t.add_argument("--max-new-tokens", type=int, default=2048)
    add_transport_options(t)
    t.set_defaults(video_format="images")  # answer CoTs: hosted teachers take frames as images
    add_cache_options(t)

    m = tools.add_parser("mine", help="hard-example mining: keep questions the policy gets right sometimes",
                         description="Roll out each question N times with sampling (grounded questions: one forced "
                                     "zoom step scored by IoU > 0; others: the whole zoom loop scored on the "
                                     "answer) and keep those neither always right nor always wrong. Resumable.")
    _bench_options(m)
    m.add_argument("--out", required=True, metavar="ROWS", help="RL rows (JSON lines; appended, resumable)")
    m.add_argument("--rollouts", type=int, default=4, help="rollouts per question (default 4)")
    m.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    m.add_argument("--top-k", type=int, default=50, help="top-k sampling (default 50; 0: off)")
    m.add_argument("--seed", type=int, default=0, help="seed of the first rollout (rollout r: seed + r)")
    add_backend_options(m)
    add_zoom_options(m, max_new_tokens=1536)
    add_cache_options(m)


def add_rows(tools) -> None:
    r = tools.add_parser("rows", help="every question of a benchmark as a GRPO row, or a stage-1 SFT row",
                         description="--stage 3 (default): each question as an RL row (local with truth spans, else "
                                     "general): the rows for `longlens train grpo-navigate`, or for `train grpo` "
                                     "without mining. --stage 1: each question as a stage-1 SFT row (the "
                                     "question and its options, the answer letter as the reply, the truth spans "
                                     "steering the simulated slow clips) for `longlens train sft love-r1-sft-stage1`.")
    _bench_options(r)
    r.add_argument("--out", required=True, metavar="ROWS", help="rows (JSON lines; must not exist yet)")
    r.add_argument("--stage", type=int, choices=(1, 3), default=3,
                   help="1: stage-1 SFT rows; 3: GRPO rows (default)")


def run_rows(args) -> int:
    from longlens.data.rows import rl_row, template_row, to_jsonl
    from longlens.data.teacher import relative_video
    from longlens.errors import VideoError
    from longlens.video import open_video

    out = Path(args.out)
    if out.exists():
        raise LongLensError(f"{out} exists; give a new --out")
    samples = _samples(args)
    root = _videos_root(args, samples)
    rows, unreadable = [], 0
    for s in samples:
        try:
            duration = round(open_video(s.video).duration_s, 3)
        except VideoError as exc:
            print(f"skipped {s.id}: {exc}", file=sys.stderr)
            unreadable += 1
            continue
        video = relative_video(s.video, root)
        if args.stage == 1:
            if not s.answer:
                print(f"skipped {s.id}: no answer to train on", file=sys.stderr)
                continue
            rows.append(template_row(s, video, source=args.bench))
        else:
            rows.append(rl_row(s, video, duration, source=args.bench))
    to_jsonl(rows, out)
    local = sum(bool(r.truth) for r in rows)
    what = "stage-1 SFT" if args.stage == 1 else "GRPO"
    print(f"wrote {len(rows)} {what} rows ({local} with truth spans, {len(rows) - local} without; {unreadable} "
          f"unreadable videos skipped) to {out}")
    return 0


def _samples(args) -> list:
    from longlens.cli._common import benchmark_samples

    return benchmark_samples(args)[1]


def _every(n: int, what: str):
    """A progress callback printing ``what done/total`` to stderr every `n` items and at the end."""
    def progress(_item, done: int, total: int) -> None:
        if done % n == 0 or done == total:
            print(f"{what} {done}/{total}", file=sys.stderr, flush=True)
    return progress


def _videos_root(args, samples) -> str | None:
    if args.videos:
        return args.videos
    return str(Path(args.data).parent if Path(args.data).is_file() else args.data)


def run_captions(args) -> int:
    from longlens.cli._common import cache_from
    from longlens.cli.roles import role_backend
    from longlens.data.clipcaps import ClipSettings, OfflineClipCaptioner, caption_clips
    from longlens.video import open_video

    samples = _samples(args)
    settings = ClipSettings(clip_s=args.clip_s)
    cache = cache_from(args)
    backend = role_backend(args, "caption", sends_video=True)  # clip captions: one video per clip
    if backend is None:
        backend = OfflineClipCaptioner()
        backend.check()
    elif backend.name == "offline":
        backend = OfflineClipCaptioner()
    videos = list(dict.fromkeys(s.video for s in samples))
    infos = [open_video(v, cache=cache) for v in videos]
    every = _every(50, "captions")
    made, stored = caption_clips(infos, args.out, backend, settings, concurrency=args.concurrency, cache=cache,
                                 progress=lambda done, total: every(None, done, total))
    print(f"{made} clip captions made, {stored} found stored, {len(infos)} videos, model "
          f"{backend.model or backend.describe()}; store {args.out}")
    return 0


def run_cot(args) -> int:
    from longlens.backends.registry import make_backend
    from longlens.cli._common import cache_from
    from longlens.cli.backend_options import openai_options
    from longlens.data.teacher import Teacher, TeacherConfig, make_cots

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    config = TeacherConfig(kinds=kinds, tries=args.tries, temperature=args.temperature,
                           max_new_tokens=args.max_new_tokens, caption_model=args.caption_model, clip_s=args.clip_s)
    if "zoom" in kinds and not args.captions:
        raise LongLensError("zoom CoTs are written from clip captions: give --captions STORE (made by `longlens data "
                            "captions`), or --kinds answer")
    samples = _samples(args)
    backend = make_backend("openai", base_url=args.teacher_url, model=args.teacher_model, **openai_options(args),
                           flags=("--teacher-url", "--teacher-model"))
    backend.check()
    teacher = Teacher(backend, args.captions, config, videos_root=_videos_root(args, samples), cache=cache_from(args),
                      source=f"{args.bench}:teacher {backend.model}")
    report = make_cots(samples, teacher, args.out, concurrency=args.concurrency, progress=_every(25, "cot jobs"))
    kept = ", ".join(f"{k} {report['kept'].get(k, 0)}" for k in kinds)
    gave = ", ".join(f"{k} {report['given_up'].get(k, 0)}" for k in kinds)
    reasons = ", ".join(f"{r}: {n}" for r, n in sorted(report["rejected"].items(), key=lambda x: -x[1])) or "none"
    print(f"kept {kept}; given up {gave}; rejected candidates: {reasons}")
    print(f"rows in {args.out}; report in {Path(args.out).with_name(Path(args.out).stem + '.report.json')}")
    return 0


def run_mine(args) -> int:
    from longlens.cli._common import cache_from
    from longlens.cli.backend_options import backend_from, zoom_config_from
    from longlens.data.mining import MineConfig, Miner, mine

    if args.rollouts < 2:
        raise LongLensError(f"--rollouts must be 2 or more (a question is kept when they disagree), "
                            f"got {args.rollouts}")
    samples = _samples(args)
    backend = backend_from(args)
    if backend.name == "offline":
        print("note: the offline backend does not sample, so its rollouts agree and no question is kept",
              file=sys.stderr)
    config = MineConfig(rollouts=args.rollouts, temperature=args.temperature, top_k=args.top_k or None,
                        max_new_tokens=args.max_new_tokens, seed=args.seed, zoom=zoom_config_from(args))
    miner = Miner(backend, config, cache=cache_from(args), videos_root=_videos_root(args, samples),
                  source=f"{args.bench}:{backend.describe()}")
    counts = mine(samples, miner, args.out, concurrency=args.concurrency, progress=_every(10, "questions"))
    print(f"kept {counts['kept']} of {counts['questions']} questions ({counts['all_right']} always right, "
          f"{counts['all_wrong']} always wrong, {counts['skipped']} skipped); rows in {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from longlens.data import filters
    from longlens.data.rows import read_jsonl, to_jsonl

    if args.tool in BUILDERS:
        return {"captions": run_captions, "cot": run_cot, "mine": run_mine, "rows": run_rows,
                "check": run_check}[args.tool](args)

    src = Path(args.rows)
    if not src.is_file():
        raise LongLensError(f"{src}: no such rows file; give a JSON-lines file of CoT rows")
    rows = read_jsonl(src)
    if args.tool == "export":
        return run_export(args, rows)
    out = Path(args.out)
    if out.exists():
        raise LongLensError(f"{out} exists; give a new --out (filtering never appends to old rows)")
    chosen = {filters.filter_name(f): f for f in filters.FILTERS}
    chosen["zoom_miss"] = functools.partial(filters.zoom_miss, min_iou=args.min_iou)
    chosen["bad_span"] = functools.partial(filters.bad_span, max_s=args.max_span)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(chosen)
    if unknown:
        raise LongLensError(f"--skip: unknown filter(s) {', '.join(sorted(unknown))}; known: {', '.join(chosen)}")
    kept, report = filters.apply_filters(rows, {k: f for k, f in chosen.items() if k not in skip})
    to_jsonl(kept, out)
    report_path = Path(args.report) if args.report else out.with_suffix(".report.json")
    report_path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    for name, n in report["dropped"].items():
        example = f"  e.g. {report['examples'][name]}" if name in report["examples"] else ""
        print(f"{name:<17} dropped {n}{example}")
    print(f"kept {report['out']} of {report['in']} rows in {out}; report in {report_path}")
    return 0


def run_export(args, rows) -> int:
    from longlens.data import export
    from longlens.jsonl import write_atomic

    videos = Path(args.videos)
    if not videos.is_dir():
        raise LongLensError(f"--videos {videos}: no such folder; give the folder the rows' video paths are under")
    missing = sorted({r.video for r in rows if not (videos / r.video).is_file()})
    if missing:
        raise LongLensError(f"{len(missing)} of the rows' videos are not under --videos {videos}, the first: "
                            f"{missing[0]}")
    clip_root = Path(args.clips) if args.clips else videos / "clips"
    records = export.to_llamafactory(rows, videos, clip_root)
    if not args.no_cut:
        needed = export.clips_needed(rows, videos, clip_root)
        every = _every(50, "clips")
        counts = export.cut_clips(needed, concurrency=args.concurrency,
                                  progress=lambda done, total: every(None, done, total))
        print(f"clips in {clip_root}: {counts['cut']} cut, {counts['found']} already there, "
              f"{len(counts['failed'])} failed")
        for clip, reason in list(counts["failed"].items())[:10]:
            print(f"  failed {clip}: {reason}", file=sys.stderr)
        if counts["failed"]:
            raise LongLensError(f"{len(counts['failed'])} clips could not be cut (listed above); the records are not "
                                "written; fix the videos or drop their rows, then rerun (cut clips are kept)")
    write_atomic(args.out, json.dumps(records, ensure_ascii=False, indent=1))
    entry = export.llamafactory_dataset_info(Path(args.out).name)
    print(f"wrote {len(records)} records to {args.out}; dataset_info.json entry: {json.dumps(entry)}")
    return 0


def run_check(args) -> int:
    from longlens.data.check import check_file, report_lines

    report = check_file(args.file, args.video_roots, fmt=args.format, open_videos=not args.exists_only,
                        concurrency=args.concurrency, progress=_every(500, "videos"))
    for line in report_lines(report, show=args.show):
        print(line)
    return 0 if report.ok else 1

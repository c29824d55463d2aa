"""The synthetic needle suite: answer keys written by ``longlens make-video`` (one JSON file, or a folder of
them); each video sits beside its key unless `videos` names another folder. Breakdowns: needle kind, video
length ("10 min") and depth (where the needle sits: "40-60%" of the video)."""

from __future__ import annotations

from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import Loaded, video_path
from longlens.bench.sample import Sample
from longlens.errors import LongLensError


def load(data: str | Path, videos: str | Path | None = None) -> Loaded:
    from longlens.synth import load_answer_key

    src = Path(data)
    keys = sorted(src.glob("*.json")) if src.is_dir() else [src]
    if not keys or not keys[0].is_file():
        raise LongLensError(f"{src}: no answer keys (.json from longlens make-video) there")
    missing: list[str] = []
    out = []
    for kf in keys:
        key = load_answer_key(kf)
        root = Path(videos) if videos else kf.parent
        path = video_path(root, Path(key.video).name, missing)
        length = f"{round(key.duration_s / 60, 1):g} min"
        for i, n in enumerate(key.needles):
            depth = min(int(5 * (n.start_s + n.end_s) / 2 / key.duration_s), 4) * 20
            out.append(Sample("needles", f"{Path(key.video).stem}-{n.id}", path, n.question, tuple(n.options),
                              n.answer, video_id=Path(key.video).stem, duration_s=key.duration_s,
                              spans=((n.start_s, n.end_s),), raw=n.to_dict(), source={"file": kf.name, "index": i},
                              categories={"kind": n.kind, "length": length, "depth": f"{depth}-{depth + 20}%"}))
    return Loaded(out, sorted(set(missing)))


BENCHMARK = Benchmark(name="needles", title="LongLens needles (synthetic)", load=load,
                      breakdowns=("kind", "length", "depth"),
                      data_help="an answer key from longlens make-video, or a folder of them")

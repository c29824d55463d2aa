"""Export of CoT rows as LLaMA-Factory records (`longlens data export`), with the clip files they name.

LLaMA-Factory reads a video entry as a whole file (a path, or a list of frame images) and samples it with its
global ``video_fps`` / ``video_maxlen``: it has no per-record start and end (LLaMA-Factory 0.9.4, the version
LongVideo-R1 vendors: ``mm_plugin.py`` samples the whole stream). So each zoom-in clip is cut to its own file
(`cut_clips`): every frame of [start, end] decoded and encoded again with x264, frame exact, no audio.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path

from longlens.data.rows import CotRow
from longlens.errors import LongLensError, VideoError
from longlens.prompts import load_profile
from longlens.prompts.zoom import format_question
from longlens.spans import Span


def clip_file(video: str, span: Span, clip_root: str | Path) -> str:
    """Where the cut of `span` of `video` is expected: ``clip_root/<stem>_<start>-<end><suffix>``, whole seconds."""
    v = Path(video)
    return str(Path(clip_root) / f"{v.stem}_{int(span[0])}-{int(span[1])}{v.suffix or '.mp4'}")


def to_llamafactory(rows: Iterable[CotRow], video_root: str | Path, clip_root: str | Path | None = None,
                    profile: str = "love-r1") -> list[dict]:
    """LLaMA-Factory multimodal records in its sharegpt style, one per row (the shape written from what we
    know of LLaMA-Factory's ``mllm_video_demo`` data, not checked against its docs here)::

        {"messages": [{"role": "user", "content": "Full video [0, 600]:<video>Subset zoom-in video clip
                       [100, 130]:<video>question, options, suffix, instruction"},
                      {"role": "assistant", "content": row.target}],
         "system": profile.system,
         "videos": ["<video_root>/<video>", "<clip_root>/<stem>_100-130.mp4"]}

    One ``<video>`` per entry of ``videos``, in order: the fast view (the whole file) first, then each clip,
    as LOVE-R1's template shows a slow clip as a separate video. LLaMA-Factory has no per-video time window,
    so each clip is its own cut file (`clip_file` names it, `cut_clips` writes it; `clip_root` defaults to
    ``video_root/clips``), and the clip times are carried in the text labels, as our prompts do. Frame rate,
    resolution and the timestamp overlay are LLaMA-Factory's settings, not ours. Register the file with
    `llamafactory_dataset_info`."""
    p = load_profile(profile)
    clip_root = Path(video_root) / "clips" if clip_root is None else Path(clip_root)
    out = []
    for row in rows:
        text = p.full_video_label % (0, int(row.duration_s)) + "<video>"
        videos = [str(Path(video_root) / row.video)]
        for c in sorted(row.clips):
            text += p.clip_label % (int(c[0]), int(c[1])) + "<video>"
            videos.append(clip_file(row.video, c, clip_root))
        text += format_question(p, row.question, row.options) + p.instruction
        out.append({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": row.target}],
                    "system": p.system, "videos": videos})
    return out


def llamafactory_dataset_info(file_name: str) -> dict:
    """The ``dataset_info.json`` entry for a file of `to_llamafactory` records."""
    return {"file_name": file_name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "system": "system", "videos": "videos"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}


def clips_needed(rows: Iterable[CotRow], video_root: str | Path, clip_root: str | Path) -> dict[str, tuple]:
    """{clip file: (source video, span)} for every clip the rows' records name."""
    out: dict[str, tuple] = {}
    for row in rows:
        for c in row.clips:
            out.setdefault(clip_file(row.video, c, clip_root), (str(Path(video_root) / row.video), c))
    return out


def cut_clip(video: str | Path, span: Span, out: str | Path) -> int:
    """Write every frame of `video` whose time is in [start, end] to `out` (H.264, the source's frame rate and
    size, no audio); returns the frames written. Written beside and renamed, so a killed cut leaves no file."""
    import av

    out = Path(out)
    tmp = out.with_name(f".{out.name}.part")
    start, end = float(span[0]), float(span[1])
    if not end > start:
        raise VideoError(video, f"clip [{start:g}, {end:g}] is empty")
    try:
        src = av.open(str(video))
    except (OSError, av.FFmpegError) as exc:
        raise VideoError(video, f"cannot open ({exc})") from None
    written = 0
    try:
        vs = src.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or Fraction(30)
        out.parent.mkdir(parents=True, exist_ok=True)
        dst = av.open(str(tmp), "w", format="mp4")
        try:
            stream = dst.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
            stream.codec_context.time_base = 1 / rate
            stream.codec_context.options = {"preset": "veryfast", "crf": "18"}
            if vs.time_base is not None:
                src.seek(max(0, int(start / vs.time_base)), stream=vs, backward=True)
            for frame in src.decode(vs):
                t = frame.time
                if t is None or t < start - 1e-6:
                    continue
                if t > end + 1e-6:
                    break
                new = frame.reformat(format="yuv420p")
                new.pts, new.time_base = written, 1 / rate
                for packet in stream.encode(new):
                    dst.mux(packet)
                written += 1
            for packet in stream.encode():
                dst.mux(packet)
        finally:
            dst.close()
    except av.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise VideoError(video, f"cannot cut [{start:g}, {end:g}] ({exc})") from None
    finally:
        src.close()
    if not written:
        tmp.unlink(missing_ok=True)
        raise VideoError(video, f"no frames in [{start:g}, {end:g}]")
    os.replace(tmp, out)
    return written


def cut_clips(needed: dict[str, tuple], *, concurrency: int = 2,
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Cut every clip of `needed` (`clips_needed`) that is not there yet; a rerun cuts only what is missing.
    Returns counts (cut, found, failed) and the failures (clip file: reason)."""
    todo = {k: v for k, v in needed.items() if not Path(k).is_file()}
    failed: dict[str, str] = {}
    done = 0
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        jobs = {pool.submit(cut_clip, video, span, clip): clip for clip, (video, span) in todo.items()}
        for job in as_completed(jobs):
            try:
                job.result()
            except (VideoError, LongLensError, OSError) as exc:
                failed[jobs[job]] = str(exc)
            done += 1
            if progress is not None:
                progress(done, len(todo))
    return {"cut": len(todo) - len(failed), "found": len(needed) - len(todo), "failed": failed}

"""Export of CoT rows as LLaMA-Factory records (`longlens data export`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from longlens.data.rows import CotRow
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
    so each clip must exist as its own cut file (`clip_file` names it; `clip_root` defaults to
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

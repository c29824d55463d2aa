"""`longlens tree build|show|import|export VIDEO`: the navigate agent's caption tree of a video."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from longlens.agents.navigate.captions import CaptionSettings, CaptionTree
from longlens.agents.navigate.tree import PARTITIONS
from longlens.cli._common import add_cache_options, cache_from
from longlens.cli.backend_options import add_transport_options
from longlens.cli.roles import add_role_options, role_backend
from longlens.errors import LongLensError
from longlens.prompts.navigate import seconds
from longlens.video import open_video


def add_parser(sub, name):
    p = sub.add_parser(name, help="build, show, import or export a video's caption tree (navigate agent)",
                       description="The navigate agent's 3-level caption tree of a video. Captions are stored "
                                   "in the cache per video, caption settings and caption model.")
    p.add_argument("action", choices=["build", "show", "import", "export"])
    p.add_argument("video", help="path to a video file")
    p.add_argument("file", nargs="?", help="import: a reference caption JSON; export: where to write it "
                                           "(default: standard output)")
    p.add_argument("--levels", default="1,2,3", help="build: which levels (default 1,2,3)")
    p.add_argument("--concurrency", type=int, default=8, help="build: caption requests in flight (default 8)")
    p.add_argument("--online-captions", action="store_true", help="the reference CLI's caption settings")
    p.add_argument("--width", type=int, help="tree width (default: the cube-root rule)")
    p.add_argument("--min-width", type=int, help="lowest width of the cube-root rule (MLVU: 3)")
    p.add_argument("--partition", choices=PARTITIONS, default="reference",
                   help="how the frames are split: 'reference' (default: captions per level over the whole video, "
                        "video_qa nested, as the released checkpoints saw) or 'nested' (one recursive split for "
                        "both; not what the checkpoints saw)")
    add_role_options(p, roles=("caption",))
    add_transport_options(p)
    add_cache_options(p)
    return p


def run(args) -> int:
    cache = cache_from(args)
    backend = role_backend(args, "caption")
    if backend is None and not args.caption_model:
        raise LongLensError("name the captions: --caption-url URL (a caption model) or --caption-model NAME")
    settings = CaptionSettings(online=args.online_captions, width=args.width, min_width=args.min_width,
                               concurrency=args.concurrency, max_tokens=args.caption_max_new_tokens,
                               partition=args.partition)
    info = open_video(args.video, cache=cache)
    tree = CaptionTree.open(info, backend, settings, cache=cache, model=args.caption_model)
    t = tree.tree
    if args.action == "build":
        if backend is None:
            raise LongLensError("building captions needs a caption model: --caption-url URL (or --caption-model-path)")
        levels = tuple(int(x) for x in args.levels.split(","))

        def progress(level, done, total):
            print(f"\r  level {level}: {done}/{total}", end="", file=sys.stderr, flush=True)

        made = tree.build(levels, progress=progress)
        print(file=sys.stderr)
        print(f"tree of {Path(info.path).name}: width {t.width}, {len(tree.captions)}/{len(t.nodes)} captions "
              f"({made} made now); store: {tree.store.path}")
    elif args.action == "show":
        print(f"width {t.width}, {t.partition} partition: {t.width} high, {t.width**2} medium, "
              f"{t.width**3} low segments; {len(tree.captions)}/{len(t.nodes)} captions stored in {tree.store.path}")
        for node in t.nodes.values():
            cap = tree.captions.get(node.key)
            text = cap.text.replace("\n", " ")[:70] if cap else "-"
            indent = "  " * (node.level - 1)
            print(f"{indent}{node.key:<8} {seconds(node.first_s):>8} - {seconds(node.last_s):<8} {text}")
    elif args.action == "import":
        if not args.file:
            raise LongLensError("tree import needs the caption file: "
                                "longlens tree import VIDEO FILE --caption-model NAME")
        src = Path(args.file)
        if not src.is_file():
            raise LongLensError(f"{src}: no such caption file")
        try:
            data = json.loads(src.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LongLensError(f"{src}: not JSON ({exc.msg} at line {exc.lineno})") from exc
        n = tree.import_reference(data)
        print(f"imported {n} captions into {tree.store.path} ({len(tree.captions)}/{len(t.nodes)} stored)")
    else:
        text = json.dumps(tree.export_reference(), ensure_ascii=False, indent=1)
        if args.file:
            Path(args.file).write_text(text + "\n", encoding="utf-8")
            print(f"wrote {args.file}")
        else:
            print(text)
    return 0

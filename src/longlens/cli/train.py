"""`longlens train RECIPE CONFIG [--set key=value ...]`: the training recipes from YAML configs.

CONFIG is a YAML file or the name of a shipped config (`longlens train list`). The resolved config is
written to ``output_dir/longlens-config.yaml`` before training starts, the summary to
``output_dir/longlens-summary.json`` after. Multi-GPU: the same command under ``accelerate launch
--config_file <yaml> -m longlens.cli.main train ...`` (DeepSpeed ZeRO configs ship in
``train/configs/accelerate``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path

from longlens.errors import LongLensError

# recipe -> (module, config class, run function, help)
RECIPES = {
    "sft": ("longlens.train.zoom.sft", "ZoomSFTConfig", "run_zoom_sft",
            "LOVE-R1 stage 1 (slow-fast template) or stage 2 (CoT cold start) SFT of the zoom agent"),
    "grpo": ("longlens.train.zoom.grpo", "ZoomGRPOConfig", "run_zoom_grpo",
             "LOVE-R1 stage 3: decoupled GRPO of the zoom agent, rollouts through the zoom loop"),
    "sft-navigate": ("longlens.train.navigate.sft", "NavigateSFTConfig", "run_navigate_sft",
                     "LongVideo-R1 SFT of the navigate agent's reasoning model on trajectories"),
    "grpo-navigate": ("longlens.train.navigate.grpo", "NavigateGRPOConfig", "run_navigate_grpo",
                      "LongVideo-R1 GRPO of the navigate agent's reasoning model (trajectory reward)"),
}


def add_parser(sub, name):
    p = sub.add_parser(name, help="train the agents (LOVE-R1 SFT and GRPO, LongVideo-R1 SFT and GRPO)",
                       description="Training recipes; each takes a YAML config and key=value overrides.")
    recipes = p.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    lst = recipes.add_parser("list", help="the shipped configs (recipes by name, accelerate configs by path)")
    lst.add_argument("--accelerate", metavar="NAME", help="print only the path of this accelerate config (zero3 ...)")
    for recipe, (_, _, _, help_text) in RECIPES.items():
        r = recipes.add_parser(recipe, help=help_text, description=help_text)
        r.add_argument("config", nargs="?", help="a YAML file or a shipped config name (see `longlens train list`)")
        r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting (repeatable), e.g. --set slow_frames=16; TRL's settings "
                            "under trl.: --set trl.learning_rate=1e-6")
        r.add_argument("--video-root", dest="video_roots", action="append", default=[], metavar="NAME=DIR",
                       help="the folder of one source data set (repeatable): a row path with a folder NAME in it "
                            "is looked up under DIR (LOVE-R1's released paths: finevideo=..., CG-Bench=...); sets "
                            "video_roots")
        r.add_argument("--print-config", action="store_true",
                       help="print the resolved config and exit (a shipped recipe prints with nothing set)")
    return p


def run(args: argparse.Namespace) -> int:
    from longlens.train import config as cfg

    if args.recipe == "list":
        accelerate = sorted((cfg.SHIPPED / "accelerate").glob("*.yaml"))
        if args.accelerate:
            match = [p for p in accelerate if p.stem == args.accelerate]
            if not match:
                raise LongLensError(f"no accelerate config {args.accelerate!r}; shipped: "
                                    f"{', '.join(p.stem for p in accelerate)}")
            print(match[0])
            return 0
        for name in cfg.shipped():
            print(name)
        for path in accelerate:
            print(f"accelerate {path.stem}: {path}")
        return 0
    module, cls_name, fn_name, _ = RECIPES[args.recipe]
    mod = importlib.import_module(module)
    cls = getattr(mod, cls_name)
    overrides = list(args.overrides)
    if args.video_roots:
        from longlens.data.released import VideoRoots

        if "video_roots" not in {f.name for f in dataclasses.fields(cls)}:
            raise LongLensError(f"--video-root: the {args.recipe} recipe reads no videos (its rows are text)")
        VideoRoots.parse(args.video_roots, flag="--video-root")  # its errors name the flag given
        overrides.append("video_roots=" + json.dumps(args.video_roots))
    config = cfg.load_config(cls, args.config, overrides, complete=not args.print_config)
    if args.print_config:
        print(json.dumps(dataclasses.asdict(config), indent=1))
        unset = cfg.missing(config)
        if unset:
            print(f"to train, set {', '.join(unset)} (--set {unset[0]}=...)", file=sys.stderr)
        return 0
    mod.check(config)  # TRL's settings and the folders, before anything is written or loaded
    out = Path(config.output_dir)
    main_process = int(os.environ.get("RANK", "0")) == 0  # under accelerate/torchrun: one writer
    if main_process:
        cfg.dump_config(config, out / "longlens-config.yaml")
    summary = getattr(mod, fn_name)(config)
    if main_process:
        (out / "longlens-summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
        print(json.dumps(summary, default=str))
    return 0

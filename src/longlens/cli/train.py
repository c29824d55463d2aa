"""`longlens train grpo|sft CONFIG [--set key=value ...]`: the training recipes from a YAML config.

CONFIG is a YAML file or the name of a shipped config (`longlens train list`). The resolved config is
written to ``output_dir/longlens-config.yaml`` before training starts. Multi-GPU: run the same command under
``accelerate launch --config_file <accelerate yaml> -m longlens.cli.main train ...`` (DeepSpeed ZeRO configs
ship in ``train/configs/accelerate``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from longlens.errors import LongLensError


def _recipes() -> dict:
    from longlens.train import grpo

    return {"grpo": (grpo.ZoomGRPOConfig, grpo.run_zoom_grpo, "LOVE-R1 stage 3: decoupled GRPO of the zoom agent")}


def add_parser(sub, name):
    p = sub.add_parser(name, help="train the agents (LOVE-R1 SFT and GRPO, LongVideo-R1 SFT) from a YAML config",
                       description="Training recipes; each takes a YAML config and key=value overrides.")
    recipes = p.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    recipes.add_parser("list", help="the shipped configs")
    for recipe, help_text in (("grpo", "LOVE-R1 stage 3: decoupled GRPO of the zoom agent (rows from `data mine`)"),):
        r = recipes.add_parser(recipe, help=help_text, description=help_text)
        r.add_argument("config", nargs="?", help="a YAML file or a shipped config name (see `longlens train list`)")
        r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting (repeatable), e.g. --set learning_rate=1e-6")
        r.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return p


def run(args: argparse.Namespace) -> int:
    from longlens.train import config as cfg

    if args.recipe == "list":
        for name in cfg.shipped():
            print(name)
        return 0
    cls, train, _ = _recipes()[args.recipe]
    config = cfg.load_config(cls, args.config, args.overrides)
    if args.print_config:
        import dataclasses

        print(json.dumps(dataclasses.asdict(config), indent=1))
        return 0
    out = Path(config.output_dir)
    if not str(config.output_dir):
        raise LongLensError("output_dir is empty; set output_dir in the config or with --set output_dir=DIR")
    cfg.dump_config(config, out / "longlens-config.yaml")
    summary = train(config)
    (out / "longlens-summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    print(json.dumps(summary, default=str))
    return 0

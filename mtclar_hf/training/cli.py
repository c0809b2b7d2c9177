"""`mtclar train --config CONFIG` (also what `accelerate launch -m mtclar_hf.train` runs)."""

from __future__ import annotations

import argparse
import json


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True,
        help="training config, YAML or JSON, or the name of a shipped recipe (synth_quick, affectnet_paper, sl, ...)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=3e-4 --set training.epochs=2 (repeatable; VALUE is YAML)",
    )
    parser.add_argument("--output-dir", default=None, help="output folder (overrides output_dir in the config)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in the output folder")
    parser.add_argument("--overwrite", action="store_true", help="start over in an output folder that already holds a run")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps (smoke runs)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train MT-CLAR (pairs, multi-task) or MT-CLAR+SL from a config (single process; use accelerate launch for more)",
        description=(
            "Train from a YAML/JSON config. For several processes or GPUs run the same arguments through "
            "`accelerate launch -m mtclar_hf.train ...`."
        ),
    )
    add_train_arguments(parser)
    parser.set_defaults(func=run_train)


def config_from_args(args: argparse.Namespace):
    from .config import load_config

    overrides = list(args.overrides)
    if args.output_dir is not None:
        overrides.append(f"output_dir={json.dumps(args.output_dir)}")
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    return load_config(args.config, overrides)


def run_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from .loop import train

    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    if summary.get("is_main_process", True):
        metrics = summary["eval"]
        shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float) and ("accuracy" in k or k.endswith("ccc") or k == "loss")}
        print(f"trained {summary['global_step']} steps in {summary['wall_seconds']:.0f} s; validation {shown}")
        print(f"saved {summary['final']} (final) and {summary['best']} (best by validation loss)")
    return 0

"""`mtclar quickstart`: the argparse shell over `mtclar_hf.quickstart`."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    from .quickstart import DEFAULT_OUT, QUICK_RECIPE

    parser = subparsers.add_parser(
        "quickstart",
        help="train on SynthAffect, label held-out clips from a few frames, compare with baselines (the README's first command)",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--config", default=None, help=f"training recipe, a file or a shipped recipe's name (default: {QUICK_RECIPE.stem})")
    parser.add_argument("--retrain", action="store_true", help="train again even if OUT/model exists")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .quickstart import run_quickstart

    return run_quickstart(Path(args.out), args.config, args.retrain)

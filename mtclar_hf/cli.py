"""The ``mtclar`` command line.

Each area of the project (model conversion, data, training, labelling, hub, demo) owns
its subcommands in its own ``cli`` module with a ``register(subparsers)`` function; this
file only assembles them and turns :class:`~mtclar_hf.errors.MTCLARError` into a
one-line message and a non-zero exit code. Subcommand modules import heavy libraries
inside their handlers so that ``mtclar --help`` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from . import __version__
from .errors import MTCLARError

# Order is the order shown in --help.
SUBCOMMAND_MODULES = (
    "mtclar_hf.data.cli",
    "mtclar_hf.training.cli",
    "mtclar_hf.labeling.cli",
    "mtclar_hf.labeling.formats_cli",
    "mtclar_hf.hub.cli",
    "mtclar_hf.export.cli",
    "mtclar_hf.convert_emonet_checkpoint",
    "mtclar_hf.demo_cli",
    "mtclar_hf.quickstart_cli",
)

OFFLINE_DEFAULTS = {"HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # parent package absent
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtclar",
        description="MT-CLAR: few-shot valence/arousal labelling of face videos with a multi-task Siamese network.",
    )
    parser.add_argument("--version", action="version", version=f"mtclar_hf {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        if _module_exists(module_name):
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MTCLARError as err:
        print(f"mtclar {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"mtclar {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

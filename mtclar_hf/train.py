"""Entry point for `accelerate launch -m mtclar_hf.train --config CONFIG [--set key=value ...]`.

The same arguments as `mtclar train`; Accelerate (or torchrun) decides how many processes run it.
A bad config or input prints one line and exits 1 on every process.
"""

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from .errors import MTCLARError
    from .training.cli import add_train_arguments, run_train

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = argparse.ArgumentParser(prog="python -m mtclar_hf.train", description="Train MT-CLAR / MT-CLAR+SL.")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except MTCLARError as err:
        print(f"mtclar train: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())

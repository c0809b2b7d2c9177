"""Entry point for `accelerate launch -m mtclar_hf.train --config CONFIG [--set key=value ...]`.

The same command as `mtclar train`, through the same registry; Accelerate (or torchrun) decides how many
processes run it. A bad config or input prints one line and exits 1 on every process.
"""

import sys


def main(argv: list[str] | None = None) -> int:
    from .cli import main as mtclar

    return mtclar(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

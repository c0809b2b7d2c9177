"""`evaluate` metric modules (one folder each) that wrap `mtclar_hf.metrics`, loadable offline by path.

import evaluate
from mtclar_hf.evaluate_metrics import metric_path
ccc = evaluate.load(metric_path("ccc"))          # or evaluate.load("path/to/mtclar_hf/evaluate_metrics/ccc")
ccc.compute(predictions=[...], references=[...])  # {"ccc": ...}
"""

from pathlib import Path

METRIC_MODULES = ("ccc", "va_metrics")


def metric_path(name: str) -> str:
    """Folder of the evaluate module `name` (give it to `evaluate.load`)."""
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric module {name!r} (choose from {', '.join(METRIC_MODULES)})")
    return str(Path(__file__).resolve().parent / name)

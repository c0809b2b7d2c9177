"""What a training run logs: `metrics.jsonl` and the Accelerate trackers, and the running training loss."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..io_utils import atomic_write_text

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """`metrics.jsonl` (one JSON record per line) plus the Accelerate trackers, main process only."""

    def __init__(self, accelerator, output_dir: Path, state):
        self.accelerator = accelerator
        self.path = output_dir / METRICS_FILE
        self.state = state
        if accelerator.is_main_process:
            # Keep what was logged up to the checkpoint we resume from (all of it when starting afresh, where
            # the file does not exist); an interrupted run's later lines would otherwise appear twice.
            lines = self.path.read_text().splitlines() if self.path.exists() else []
            kept = lines[: state.log_records]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, kind: str, step: int, values: dict) -> None:
        self.state.log_records += 1
        self.accelerator.log({f"{kind}/{key}": value for key, value in values.items() if _is_number(value)}, step=step)
        if self.accelerator.is_main_process:
            record = {"type": kind, "step": step, **{k: _jsonable(v) for k, v in values.items()}}
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")


class RunningMean:
    """Mean training loss (and its named components) since the last log line, averaged over processes."""

    def __init__(self, component_names: tuple[str, ...]):
        self.component_names = component_names
        self.total = None
        self.count = 0

    def add(self, loss: torch.Tensor, components: torch.Tensor | None) -> None:
        values = loss.float().reshape(1) if components is None else torch.cat([loss.float().reshape(1), components.float()])
        self.total = values if self.total is None else self.total + values
        self.count += 1

    def reduce(self, accelerator) -> dict:
        mean = accelerator.reduce(self.total / self.count, reduction="mean").tolist()
        self.total, self.count = None, 0
        return {"loss": mean[0], **{f"loss_{name}": value for name, value in zip(self.component_names, mean[1:])}}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = ["METRICS_FILE", "MetricsLog", "RunningMean"]

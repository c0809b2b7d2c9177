"""Checkpoints of a training run: `accelerator.save_state` folders `OUTPUT/checkpoints/step-N`.

A checkpoint holds the model, optimizer, grad-scaler, RNG states, the learning-rate schedule and the counters of
:class:`TrainingState`. It is written under a temporary name and renamed when complete, so `--resume` never picks
a half-written one; old ones are renamed out of the way before they are deleted, for the same reason.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..io_utils import atomic_write_text

CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step-"
# Written last, inside the temporary folder: a `step-N` folder without it is not complete.
COMPLETION_MARKER = "training_state.json"


@dataclass
class TrainingState:
    """Counters saved in every checkpoint (registered with `accelerator.register_for_checkpointing`)."""

    epoch: int = 0  # epochs completed
    batches_done: int = 0  # micro-batches of the current epoch already trained on (this process)
    global_step: int = 0  # optimizer steps
    micro_step: int = 0  # micro-batches since the start (seeds dropout and task weights)
    log_records: int = 0  # lines of metrics.jsonl written so far (a resumed run drops the ones after)
    best_val_loss: float = math.inf
    best_epoch: int = -1

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class Checkpoints:
    """The run's checkpoints: resume from the newest, save new ones, keep the newest `keep_last`.

    Remembers the step it last saved or resumed from, so a run that ends where it last checkpointed does not
    write the same checkpoint again.
    """

    def __init__(self, accelerator, output_dir: Path, keep_last: int):
        self.accelerator = accelerator
        self.output_dir = output_dir
        self.keep_last = keep_last
        self.saved_step: int | None = None

    def resume(self, state: TrainingState) -> None:
        """Load the newest complete checkpoint into every object registered for checkpointing, `state` among them."""
        found = complete_checkpoints(self.output_dir)
        if not found:
            self.accelerator.print(
                f"--resume: no complete checkpoint in {self.output_dir / CHECKPOINTS_DIR}; starting from scratch"
            )
            return
        self.accelerator.load_state(str(found[-1]))
        self.saved_step = state.global_step
        self.accelerator.print(f"resumed from {found[-1]} (epoch {state.epoch}, step {state.global_step})")

    def save(self, state: TrainingState) -> Path:
        """`save_state` into a temporary folder, renamed when every process has written its part."""
        accelerator = self.accelerator
        folder = self.output_dir / CHECKPOINTS_DIR
        final = folder / f"{CHECKPOINT_PREFIX}{state.global_step:08d}"
        temporary = folder / f".{final.name}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(temporary, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(temporary))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            atomic_write_text(temporary / COMPLETION_MARKER, json.dumps(state.state_dict(), indent=2))
            if final.exists():  # the same step saved again: move the old one aside first, never delete it in place
                discard_checkpoint(final)
            os.replace(temporary, final)
            for old in complete_checkpoints(self.output_dir)[: -self.keep_last]:
                discard_checkpoint(old)
        accelerator.wait_for_everyone()
        self.saved_step = state.global_step
        return final

    def save_if_new(self, state: TrainingState) -> None:
        """Save, unless the last checkpoint saved or resumed from is of this very step."""
        if self.saved_step != state.global_step:
            self.save(state)


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Finished checkpoint folders, oldest first.

    Half-written ones have a temporary name (`.step-N.tmp`), and so do ones being deleted
    (`.step-N.old`); a `step-N` folder without its completion marker is skipped too.
    """
    folder = Path(output_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        step = path.name[len(CHECKPOINT_PREFIX) :]
        if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIX) and step.isdigit():
            if (path / COMPLETION_MARKER).exists():
                found.append((int(step), path))
    return [path for _, path in sorted(found)]


def discard_checkpoint(path: Path) -> None:
    """Rename to a temporary name (one atomic step out of `complete_checkpoints`), then delete.

    A kill during a plain rmtree could leave a half-deleted folder that still looks complete.
    """
    doomed = path.with_name(f".{path.name}.old")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


__all__ = ["CHECKPOINTS_DIR", "Checkpoints", "TrainingState", "complete_checkpoints", "discard_checkpoint"]

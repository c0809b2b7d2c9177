"""The learning-rate schedule of a training run (`schedule` section of the config)."""

from __future__ import annotations

import math


class LearningRateSchedule:
    """Learning rate = base x warm-up(step) x cosine(step) x epoch-level decay (plateau or step).

    Our own small schedule rather than torch's: one object combines the per-step parts (warm-up, cosine)
    with the per-epoch parts (ReduceLROnPlateau on the validation loss, StepLR), and its whole state is a
    few numbers saved in the checkpoint. The plateau rule is torch's default: relative threshold 1e-4,
    decay when the number of bad epochs exceeds ``patience``.
    """

    def __init__(self, optimizer, schedule, total_steps: int):
        self.optimizer = optimizer
        self.config = schedule
        self.total_steps = max(1, total_steps)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.epoch_scale = 1.0
        self.best = math.inf
        self.bad_epochs = 0

    def factor(self, step: int) -> float:
        config = self.config
        factor = self.epoch_scale
        if config.warmup_steps and step < config.warmup_steps:
            factor *= (step + 1) / config.warmup_steps
        if config.name == "cosine":
            progress = min(1.0, max(0, step - config.warmup_steps) / max(1, self.total_steps - config.warmup_steps))
            factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
        return factor

    def apply(self, step: int) -> None:
        """Set the learning rate for optimizer step ``step``."""
        factor = self.factor(step)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = max(self.config.min_lr, base * factor)

    def end_epoch(self, epochs_done: int, val_loss: float) -> None:
        config = self.config
        if config.name == "plateau" and math.isfinite(val_loss):
            if val_loss < self.best * (1.0 - 1e-4):
                self.best, self.bad_epochs = val_loss, 0
            else:
                self.bad_epochs += 1
            if self.bad_epochs > config.patience:
                self.epoch_scale *= config.factor
                self.bad_epochs = 0
        elif config.name == "step":
            self.epoch_scale = config.gamma ** (epochs_done // config.step_size)

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {"epoch_scale": self.epoch_scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.epoch_scale, self.best, self.bad_epochs = state["epoch_scale"], state["best"], state["bad_epochs"]


__all__ = ["LearningRateSchedule"]

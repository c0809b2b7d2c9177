"""The Accelerate training loop for MT-CLAR (pairs, multi-task) and MT-CLAR+SL (singleton heads).

One loop serves one process or many (`accelerate launch`, `torchrun`): Accelerate shards the batches,
averages the gradients and gathers the evaluation outputs (`gather_for_metrics`). What makes a resumed
run end with the same weights as an uninterrupted one:

- the batches of epoch e are a pure function of (seed, e) (:class:`~.data.EpochSampler`, pairs and
  augmentation seeded by (seed, epoch, index)); a resumed epoch skips the batches already seen
  (`skip_first_batches`);
- the dropout masks and the random task weights of micro-batch k are drawn from generators seeded by
  (seed, k) (and the process index for dropout), never from whatever state a previous iterator left;
- model, optimizer, grad-scaler, learning-rate schedule and the counters (:class:`TrainingState`) are in
  every `save_state` checkpoint. Checkpoints are written under a temporary name and renamed when
  complete, so `--resume` never picks a half-written one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.affectnet import dataset_box_source
from ..errors import ConfigError, InputFileError
from ..io_utils import atomic_directory, atomic_write_text
from .config import TrainConfig, build_model_config
from .data import (
    SAME_IDENTITY_KEY,
    build_loaders,
    clips_dataset_dir,
    load_clip_split,
    load_splits,
    render_and_prepare_synth,
    steps_per_epoch,
    training_provenance,
)

CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step-"
METRICS_FILE = "metrics.jsonl"
PAIR_INPUTS = ("pixel_values_a", "pixel_values_b", "similarity_labels", "valence_diff_labels", "arousal_diff_labels")
SINGLE_INPUTS = ("pixel_values", "labels", "valence", "arousal")


# ------------------------------------------------------------------------------------------ state


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


# ------------------------------------------------------------------------------------------ set-up helpers


def resolve_mixed_precision(requested: str, cpu: bool) -> str:
    """"auto" -> bf16 on GPUs that support it, fp16 on older GPUs, no mixed precision on CPU."""
    on_cpu = cpu or not torch.cuda.is_available()
    if requested == "fp16" and on_cpu:
        raise ConfigError("training.mixed_precision=fp16 needs a GPU; use bf16 or no on the CPU")
    if requested != "auto":
        return requested
    if on_cpu:
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def build_model(config: TrainConfig):
    """The model of the stage: a new or pretrained MTCLARModel, or MT-CLAR+SL on an MT-CLAR encoder."""
    from ..modeling_mtclar import MTCLARForAffectPrediction, MTCLARModel

    model_config = build_model_config(config)
    pretrained = config.model.pretrained
    if pretrained is not None and not (Path(pretrained) / "config.json").exists():
        raise InputFileError(pretrained, "model.pretrained is not a saved model folder (no config.json)")
    overrides = dict(config.model.config)
    if config.stage == "mtclar":
        if pretrained is None:
            return MTCLARModel(model_config)
        # Training moves the encoder, so a carried SL head (a converted EmoNet's) would no longer fit it; the pair
        # heads, which it trains, become usable.
        overrides = {"affect_head": False, "pair_heads_trained": True, **overrides}
        return MTCLARModel.from_pretrained(pretrained, **overrides)
    if pretrained is None:
        return MTCLARForAffectPrediction(model_config)
    return MTCLARForAffectPrediction.from_mtclar(pretrained, freeze_encoder=config.model.freeze_encoder, **overrides)


def build_processor(config: TrainConfig, model_config):
    """The image processor saved with the model: the pretrained folder's, or one matching the input size."""
    from ..image_processing_mtclar import MTCLARImageProcessor

    pretrained = config.model.pretrained
    if pretrained is not None and (Path(pretrained) / "preprocessor_config.json").exists():
        return MTCLARImageProcessor.from_pretrained(pretrained)
    return MTCLARImageProcessor(resize_size=model_config.resize_size, crop_size=model_config.image_size)


def resolve_dataset_dir(config: TrainConfig, accelerator) -> Path:
    if config.data.dataset is not None:
        return Path(config.data.dataset)
    # The main process renders the cache; the others wait, then find it complete.
    with accelerator.main_process_first():
        return render_and_prepare_synth(config)


def step_seed(seed: int, micro_step: int, stream: int) -> int:
    """A 63-bit seed for one micro-batch and one purpose (stream), independent of any RNG history."""
    return int(np.random.SeedSequence([seed, micro_step, stream]).generate_state(1, dtype=np.uint64)[0]) >> 1


def batch_task_weights(model_config, seed: int, micro_step: int) -> torch.Tensor | None:
    """The random convex task weights of micro-batch ``micro_step``, the same on every process."""
    from ..modeling_mtclar import TASK_INDEX, random_convex_weights

    if not model_config.random_task_weights:
        return None
    generator = torch.Generator().manual_seed(step_seed(seed, micro_step, 1))
    enabled = torch.zeros(len(TASK_INDEX))
    enabled[[TASK_INDEX[task] for task in model_config.tasks]] = 1.0
    weights = random_convex_weights(len(TASK_INDEX), generator=generator) * enabled
    return weights / weights.sum()


def set_train_mode(model, unwrapped, frozen_encoder: bool) -> None:
    model.train()
    if frozen_encoder:  # a frozen encoder keeps its BatchNorm statistics too
        unwrapped.encoder.eval()
        unwrapped.embedding_projection.eval()


# ------------------------------------------------------------------------------------------ checkpoints


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Finished checkpoint folders, oldest first.

    Half-written ones have a temporary name (`.step-N.tmp`), and so do ones being deleted
    (`.step-N.old`); a `step-N` folder without its completion marker (`training_state.json`) is skipped too.
    """
    folder = output_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        name = path.name
        if path.is_dir() and name.startswith(CHECKPOINT_PREFIX) and name[len(CHECKPOINT_PREFIX) :].isdigit():
            if (path / "training_state.json").exists():
                found.append((int(name[len(CHECKPOINT_PREFIX) :]), path))
    return [path for _, path in sorted(found)]


def _checkpoint_name(state: TrainingState) -> str:
    return f"{CHECKPOINT_PREFIX}{state.global_step:08d}"


def save_checkpoint(accelerator, output_dir: Path, state: TrainingState, keep_last: int) -> Path:
    """`save_state` into a temporary folder, renamed when every process has written its part."""
    folder = output_dir / CHECKPOINTS_DIR
    final = folder / _checkpoint_name(state)
    temporary = folder / f".{final.name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        # training_state.json is the completion marker: written last, inside the temporary folder.
        atomic_write_text(temporary / "training_state.json", json.dumps(state.state_dict(), indent=2))
        if final.exists():  # the same step saved again: move the old one aside first, never delete it in place
            _discard_checkpoint(final)
        os.replace(temporary, final)
        for old in complete_checkpoints(output_dir)[:-keep_last]:
            _discard_checkpoint(old)
    accelerator.wait_for_everyone()
    return final


def _discard_checkpoint(path: Path) -> None:
    """Rename to a temporary name (one atomic step out of `complete_checkpoints`), then delete.

    A kill during a plain rmtree could leave a half-deleted folder that still looks complete.
    """
    doomed = path.with_name(f".{path.name}.old")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def save_model_folder(path: Path, unwrapped, processor, metrics: dict, config: TrainConfig) -> None:
    """`save_pretrained` (safetensors + config + code), the image processor and metrics.json, atomically."""
    with atomic_directory(path) as tmp:
        unwrapped.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        (tmp / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))


# ------------------------------------------------------------------------------------------ logging


class MetricsLog:
    """`metrics.jsonl` (one JSON record per line) plus the Accelerate trackers, main process only."""

    def __init__(self, accelerator, output_dir: Path, state: TrainingState):
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


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------------------------ forward / evaluation


def model_inputs(batch: dict, stage: str) -> dict:
    return {key: batch[key] for key in (PAIR_INPUTS if stage == "mtclar" else SINGLE_INPUTS)}


def evaluate(accelerator, model, loader, stage: str) -> dict:
    """Validation metrics over the whole split, from outputs gathered across processes."""
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    # The same validation pairs at every evaluation: Accelerate would otherwise pass its own iteration count
    # to the dataset's set_epoch and draw new ones (making validation losses incomparable across epochs).
    loader.set_epoch(0)
    collected: dict[str, list] = {}
    with torch.no_grad():
        for batch in loader:
            inputs = model_inputs(batch, stage)
            if stage == "mtclar":
                out = model(inputs["pixel_values_a"], inputs["pixel_values_b"])
                values = {
                    "emb_a": out.embeddings, "emb_b": out.embeddings_pair, "logits": out.similarity_logits,
                    "valence_diff": out.valence_diff, "arousal_diff": out.arousal_diff,
                    **{key: batch[key] for key in PAIR_INPUTS[2:]},
                    SAME_IDENTITY_KEY: batch[SAME_IDENTITY_KEY],
                }
            else:
                out = model(inputs["pixel_values"])
                values = {"logits": out.logits, "pred_valence": out.valence, "pred_arousal": out.arousal,
                          **{key: batch[key] for key in SINGLE_INPUTS[1:]}}
            values = {k: v.float() if v.is_floating_point() else v for k, v in values.items()}
            for key, value in accelerator.gather_for_metrics(values).items():
                collected.setdefault(key, []).append(value.cpu())
    gathered = {key: torch.cat(parts) for key, parts in collected.items()}
    return pair_metrics(unwrapped, gathered) if stage == "mtclar" else single_metrics(unwrapped, gathered)


def pair_metrics(unwrapped, gathered: dict) -> dict:
    """Validation loss (equal task weights, 50/50 MSE-CCC: comparable across epochs) and the pair metrics."""
    from ..modeling_mtclar import MTCLAROutput

    output = MTCLAROutput(
        embeddings=gathered["emb_a"], embeddings_pair=gathered["emb_b"], similarity_logits=gathered["logits"],
        valence_diff=gathered["valence_diff"], arousal_diff=gathered["arousal_diff"],
    )
    was_training = unwrapped.training
    unwrapped.eval()  # equal task weights
    output = unwrapped.compute_loss(
        output, gathered["similarity_labels"], gathered["valence_diff_labels"], gathered["arousal_diff_labels"],
        epoch_progress=None, task_weights=None,
    )
    unwrapped.train(was_training)
    metrics = {"loss": float(output.loss), "num_pairs": int(len(gathered["logits"]))}
    for name, value in zip(("similarity", "contrastive", "valence", "arousal"), output.loss_components.tolist()):
        metrics[f"loss_{name}"] = value
    metrics.update(_pair_scores(gathered, torch.ones(len(gathered["logits"]), dtype=torch.bool), prefix=""))
    same = gathered[SAME_IDENTITY_KEY].bool()
    if same.any() and not same.all():
        metrics.update(_pair_scores(gathered, same, prefix="same_identity_"))
    return metrics


def _pair_scores(gathered: dict, mask: torch.Tensor, prefix: str) -> dict:
    from ..metrics import regression_metrics

    predicted_similar = gathered["logits"][mask].argmax(dim=-1)
    scores = {f"{prefix}similarity_accuracy": float((predicted_similar == gathered["similarity_labels"][mask]).float().mean())}
    for task in ("valence", "arousal"):
        values = regression_metrics(gathered[f"{task}_diff_labels"][mask].numpy(), gathered[f"{task}_diff"][mask].numpy())
        scores.update({f"{prefix}{task}_diff_{name}": value for name, value in values.items()})
    return scores


def single_metrics(unwrapped, gathered: dict) -> dict:
    """MT-CLAR+SL validation: the model's loss recomputed over the split, 8-class accuracy, V/A metrics."""
    from torch.nn import functional as F

    from ..metrics import affect_metrics
    from ..modeling_mtclar import dynamic_regression_loss

    exponent = unwrapped.config.dynamic_loss_exponent
    loss = F.cross_entropy(gathered["logits"], gathered["labels"], weight=unwrapped.expression_class_weights)
    loss = loss + dynamic_regression_loss(gathered["pred_valence"], gathered["valence"], None, exponent)
    loss = loss + dynamic_regression_loss(gathered["pred_arousal"], gathered["arousal"], None, exponent)
    accuracy = float((gathered["logits"].argmax(dim=-1) == gathered["labels"]).float().mean())
    metrics = {"loss": float(loss), "num_images": int(len(gathered["labels"])), "expression_accuracy": accuracy}
    metrics.update(affect_metrics(gathered["valence"].numpy(), gathered["pred_valence"].numpy(),
                                  gathered["arousal"].numpy(), gathered["pred_arousal"].numpy()))
    return metrics


# ------------------------------------------------------------------------------------------ the loop


def prepare_output_dir(output_dir: Path, resume: bool, overwrite: bool) -> None:
    has_run = (output_dir / METRICS_FILE).exists() or (output_dir / CHECKPOINTS_DIR).exists()
    if has_run and not resume:
        if not overwrite:
            raise ConfigError(
                f"output_dir {output_dir} already holds a run; pass --resume to continue it or --overwrite to start over"
            )
        for name in (METRICS_FILE, CHECKPOINTS_DIR, "best", "final", "tensorboard"):
            target = output_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Train as configured; returns a summary (output folders, final validation metrics, steps, wall time)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm

    started = time.time()
    training = config.training
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        cpu=training.cpu,
        mixed_precision=resolve_mixed_precision(training.mixed_precision, training.cpu),
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        log_with="tensorboard" if config.logging.tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "tensorboard")),
        step_scheduler_with_optimizer=False,
    )
    if accelerator.is_main_process:
        prepare_output_dir(output_dir, resume, overwrite)
    accelerator.wait_for_everyone()
    set_seed(config.seed)

    dataset_dir = resolve_dataset_dir(config, accelerator)
    train_split, val_split = load_splits(config, dataset_dir)
    clips_dir = clips_dataset_dir(config)
    clips_split = load_clip_split(clips_dir) if clips_dir is not None else None
    model = build_model(config)
    model_config = model.config
    processor = build_processor(config, model_config)
    # The crop is part of the model: record which face boxes it learns from, for labelling to check; and what
    # faces it learns from, for the demo and the model card to say.
    processor.face_box_source = dataset_box_source(train_split)
    pretrained = model.config.provenance if config.model.pretrained is not None else None
    model.config.provenance = training_provenance(config, train_split, pretrained)
    train_set, sampler, train_loader, val_loader = build_loaders(
        config, train_split, val_split, model_config, processor, clips_split
    )
    frozen_encoder = config.stage == "sl" and config.model.pretrained is not None and config.model.freeze_encoder

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(
        parameters, lr=config.optim.lr, weight_decay=config.optim.weight_decay, betas=tuple(config.optim.betas)
    )
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    unwrapped = accelerator.unwrap_model(model)
    batches_per_epoch = len(train_loader)
    accumulation = training.gradient_accumulation_steps
    total_steps = training.epochs * steps_per_epoch(batches_per_epoch, accumulation)
    if training.max_steps is not None:
        total_steps = min(total_steps, training.max_steps)
    schedule = LearningRateSchedule(optimizer, config.schedule, total_steps)
    state = TrainingState()
    accelerator.register_for_checkpointing(schedule, state)

    resume_step = None
    if resume:
        checkpoints = complete_checkpoints(output_dir)
        if checkpoints:
            accelerator.load_state(str(checkpoints[-1]))
            resume_step = state.global_step
            accelerator.print(f"resumed from {checkpoints[-1]} (epoch {state.epoch}, step {state.global_step})")
        else:
            accelerator.print(f"--resume: no complete checkpoint in {output_dir / CHECKPOINTS_DIR}; starting from scratch")
    log = MetricsLog(accelerator, output_dir, state)
    if config.logging.tensorboard:
        accelerator.init_trackers("mtclar", config=_flat_hparams(config))
    accelerator.print(
        f"training {type(unwrapped).__name__} ({config.stage}) on {accelerator.num_processes} process(es), "
        f"device {accelerator.device}, mixed precision {accelerator.mixed_precision}: {len(train_set)} items/epoch, "
        f"{batches_per_epoch} batches/epoch/process, {total_steps} optimizer steps"
    )

    progress = tqdm(
        total=total_steps, initial=state.global_step, desc="train", dynamic_ncols=True,
        disable=not (accelerator.is_local_main_process and config.logging.progress_bar),
    )
    every_n = config.checkpointing.every_n_steps
    last_metrics: dict = {}
    evaluated_at = -1
    checkpointed_at = -1 if resume_step is None else resume_step
    running = _RunningMean()
    samples_seen = 0  # by this process, this session: evidence that every rank took part
    stopped = state.global_step >= total_steps
    while state.epoch < training.epochs and not stopped:
        epoch = state.epoch
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        set_train_mode(model, unwrapped, frozen_encoder)
        loader = accelerator.skip_first_batches(train_loader, state.batches_done) if state.batches_done else train_loader
        # Accelerate's loader calls `sampler.set_epoch(its own iteration count)` when iterated; a resumed run
        # (or the fresh loader that skip_first_batches returns) would count from 0, so set it explicitly.
        loader.set_epoch(epoch)
        epoch_progress = epoch / training.epochs
        for batch in loader:
            torch.manual_seed(step_seed(config.seed, state.micro_step, 1000 + accelerator.process_index))
            with accelerator.accumulate(model):
                schedule.apply(state.global_step)
                inputs = model_inputs(batch, config.stage)
                if config.stage == "mtclar":
                    weights = batch_task_weights(model_config, config.seed, state.micro_step)
                    out = model(**inputs, epoch_progress=epoch_progress, task_weights=weights)
                else:
                    out = model(**inputs, epoch_progress=epoch_progress)
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and config.optim.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), config.optim.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            running.add(out.loss.detach(), getattr(out, "loss_components", None))
            samples_seen += len(next(iter(inputs.values())))
            state.batches_done += 1
            state.micro_step += 1
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            progress.update(1)
            if state.global_step % config.logging.every_n_steps == 0 or state.global_step == total_steps:
                values = running.reduce(accelerator)
                values.update(lr=schedule.current_lr(), epoch=epoch + state.batches_done / batches_per_epoch)
                log.write("train", state.global_step, values)
                progress.set_postfix(loss=f"{values['loss']:.4f}")
            ends_epoch = state.batches_done >= batches_per_epoch  # saved after the epoch's evaluation instead
            if every_n and state.global_step % every_n == 0 and not ends_epoch:
                save_checkpoint(accelerator, output_dir, state, config.checkpointing.keep_last)
                checkpointed_at = state.global_step
            if state.global_step >= total_steps:
                stopped = True
                break
        if state.batches_done >= batches_per_epoch:  # the epoch ran to its end
            state.epoch += 1
            state.batches_done = 0
            last_metrics = end_of_epoch(accelerator, model, val_loader, config, state, schedule, log, processor)
            evaluated_at = state.global_step
            save_checkpoint(accelerator, output_dir, state, config.checkpointing.keep_last)
            checkpointed_at = state.global_step
    progress.close()

    if evaluated_at != state.global_step or not last_metrics:
        # Stopped inside an epoch (max_steps) or resumed after the last epoch: evaluate where we are, and
        # checkpoint it so a later run with a larger max_steps can continue from here.
        last_metrics = end_of_epoch(accelerator, model, val_loader, config, state, schedule, log, processor, update_schedule=False)
        if checkpointed_at != state.global_step:
            save_checkpoint(accelerator, output_dir, state, config.checkpointing.keep_last)
    accelerator.wait_for_everyone()
    digest = weights_digest(unwrapped)
    # Every rank says what it did and what weights it holds: data-parallel ranks must agree.
    print(
        f"[rank {accelerator.process_index}/{accelerator.num_processes}] trained on {samples_seen} samples this session; "
        f"step {state.global_step}; weights sha256 {digest}",
        flush=True,
    )
    final_dir = output_dir / "final"
    summary = {
        "output_dir": str(output_dir), "final": str(final_dir), "best": str(output_dir / "best"),
        "stage": config.stage, "global_step": state.global_step, "epochs_completed": state.epoch,
        "num_processes": accelerator.num_processes, "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val_loss if math.isfinite(state.best_val_loss) else None,
        "eval": last_metrics, "wall_seconds": round(time.time() - started, 2),
        "is_main_process": accelerator.is_main_process, "weights_sha256": digest,
    }
    if accelerator.is_main_process:
        save_model_folder(final_dir, unwrapped, processor, {"eval": last_metrics, **_summary_counters(summary)}, config)
        atomic_write_text(output_dir / "train_summary.json", json.dumps(summary, indent=2, default=_json_default))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def end_of_epoch(accelerator, model, val_loader, config, state, schedule, log, processor, update_schedule=True) -> dict:
    """Evaluate, step the epoch-level schedule, keep the best model by validation loss."""
    metrics = evaluate(accelerator, model, val_loader, config.stage)
    if update_schedule:
        schedule.end_epoch(state.epoch, metrics["loss"])
    log.write("eval", state.global_step, {**metrics, "epoch": state.epoch})
    if metrics["loss"] < state.best_val_loss:
        state.best_val_loss = metrics["loss"]
        state.best_epoch = state.epoch
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            counters = {"global_step": state.global_step, "epoch": state.epoch}
            save_model_folder(Path(config.output_dir) / "best", unwrapped, processor, {"eval": metrics, **counters}, config)
    accelerator.wait_for_everyone()
    return metrics


class _RunningMean:
    """Mean training loss (and loss components) since the last log line, averaged over processes."""

    def __init__(self):
        self.total = None
        self.count = 0

    def add(self, loss: torch.Tensor, components: torch.Tensor | None) -> None:
        values = loss.float().reshape(1) if components is None else torch.cat([loss.float().reshape(1), components.float()])
        self.total = values if self.total is None else self.total + values
        self.count += 1

    def reduce(self, accelerator) -> dict:
        mean = accelerator.reduce(self.total / self.count, reduction="mean").tolist()
        self.total, self.count = None, 0
        values = {"loss": mean[0]}
        if len(mean) == 5:
            values.update({f"loss_{n}": v for n, v in zip(("similarity", "contrastive", "valence", "arousal"), mean[1:])})
        return values


def weights_digest(model) -> str:
    """SHA-256 of every tensor of the state dict (names and float32 bytes), to compare weights across ranks/runs."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _flat_hparams(config: TrainConfig) -> dict:
    """TensorBoard hparams accept only scalars: flatten the config, stringify the rest."""
    flat = {}

    def walk(prefix, node):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value if isinstance(value, int | float | str | bool) else str(value)

    walk("", config.to_dict())
    return flat


def _summary_counters(summary: dict) -> dict:
    keys = ("global_step", "epochs_completed", "best_val_loss", "best_epoch", "num_processes", "weights_sha256")
    return {key: summary[key] for key in keys}


def _json_default(value):
    return None if isinstance(value, float) else str(value)


__all__ = ["LearningRateSchedule", "TrainingState", "complete_checkpoints", "evaluate", "train"]

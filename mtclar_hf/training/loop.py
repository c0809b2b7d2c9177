"""The Accelerate training loop for MT-CLAR (pairs, multi-task) and MT-CLAR+SL (singleton heads).

It reads top to bottom: :func:`train` sets a run up and runs its epochs, :func:`train_one_epoch` runs one, and
the helpers they call follow. What differs between the two stages is decided in :mod:`.stages`; checkpoints,
the learning-rate schedule, evaluation and logging have their own modules.

One loop serves one process or many (`accelerate launch`, `torchrun`): Accelerate shards the batches,
averages the gradients and gathers the evaluation outputs (`gather_for_metrics`). What makes a resumed
run end with the same weights as an uninterrupted one:

- the batches of epoch e are a pure function of (seed, e) (:class:`~.data.EpochSampler`, pairs and
  augmentation seeded by (seed, epoch, index)); a resumed epoch skips the batches already seen
  (`skip_first_batches`);
- the dropout masks and the random task weights of micro-batch k are drawn from generators seeded by
  (seed, k) (and the process index for dropout), never from whatever state a previous iterator left;
- model, optimizer, grad-scaler, learning-rate schedule and the counters are in every checkpoint
  (:mod:`.checkpoints`), which `--resume` loads.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..data.affectnet import dataset_box_source
from ..errors import ConfigError
from ..io_utils import atomic_directory, atomic_write_text
from .checkpoints import CHECKPOINTS_DIR, Checkpoints, TrainingState
from .config import TrainConfig
from .data import (
    build_loaders,
    clips_dataset_dir,
    load_clip_split,
    load_splits,
    render_and_prepare_synth,
    steps_per_epoch,
    training_provenance,
)
from .evaluation import evaluate
from .schedule import LearningRateSchedule
from .stages import STAGES
from .tracking import METRICS_FILE, MetricsLog, RunningMean

# Seed streams of one micro-batch (`step_seed`): its task weights, and its dropout masks (one stream per process).
TASK_WEIGHTS_STREAM = 1
DROPOUT_STREAM = 1000


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Train as configured; returns a summary (output folders, final validation metrics, steps, wall time)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm

    started = time.time()
    stage = STAGES[config.stage]
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

    # The data, the stage's model and the image processor saved with it.
    train_split, val_split = load_splits(config, resolve_dataset_dir(config, accelerator))
    clips_dir = clips_dataset_dir(config)
    clips_split = load_clip_split(clips_dir) if clips_dir is not None else None
    model = stage.build_model(config)
    processor = build_processor(config, model.config)
    # The crop is part of the model: record which face boxes it learns from, for labelling to check; and what
    # faces it learns from, for the demo and the model card to say.
    processor.face_box_source = dataset_box_source(train_split)
    pretrained = model.config.provenance if config.model.pretrained is not None else None
    model.config.provenance = training_provenance(config, train_split, pretrained)
    train_set, sampler, train_loader, val_loader = build_loaders(
        config, train_split, val_split, model.config, processor, clips_split
    )

    # The optimizer, the schedule, and the state a checkpoint restores.
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.optim.lr, weight_decay=config.optim.weight_decay, betas=tuple(config.optim.betas),
    )
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    unwrapped = accelerator.unwrap_model(model)
    total_steps = training.epochs * steps_per_epoch(len(train_loader), training.gradient_accumulation_steps)
    if training.max_steps is not None:
        total_steps = min(total_steps, training.max_steps)
    schedule = LearningRateSchedule(optimizer, config.schedule, total_steps)
    state = TrainingState()
    accelerator.register_for_checkpointing(schedule, state)
    checkpoints = Checkpoints(accelerator, output_dir, config.checkpointing.keep_last)
    if resume:
        checkpoints.resume(state)
    log = MetricsLog(accelerator, output_dir, state)
    if config.logging.tensorboard:
        accelerator.init_trackers("mtclar", config=_flat_hparams(config))
    accelerator.print(
        f"training {type(unwrapped).__name__} ({stage.name}) on {accelerator.num_processes} process(es), "
        f"device {accelerator.device}, mixed precision {accelerator.mixed_precision}: {len(train_set)} items/epoch, "
        f"{len(train_loader)} batches/epoch/process, {total_steps} optimizer steps"
    )

    progress = tqdm(
        total=total_steps, initial=state.global_step, desc="train", dynamic_ncols=True,
        disable=not (accelerator.is_local_main_process and config.logging.progress_bar),
    )
    running_loss = RunningMean(unwrapped.config.all_tasks)
    samples_seen = 0  # by this process, this session: evidence that every rank took part
    metrics = None
    for epoch in range(state.epoch, training.epochs):
        if state.global_step >= total_steps:
            break
        samples_seen += train_one_epoch(
            epoch, accelerator=accelerator, model=model, stage=stage, config=config, train_set=train_set,
            sampler=sampler, train_loader=train_loader, optimizer=optimizer, schedule=schedule, state=state,
            total_steps=total_steps, running_loss=running_loss, log=log, checkpoints=checkpoints, progress=progress,
        )
        if state.batches_done < len(train_loader):  # max_steps reached inside the epoch
            break
        state.epoch, state.batches_done = epoch + 1, 0
        metrics = evaluate_and_keep_best(accelerator, model, val_loader, stage, config, state, log, processor, schedule)
        checkpoints.save(state)
    progress.close()
    if metrics is None or state.batches_done:
        # Stopped inside an epoch (max_steps), or resumed after the last one: evaluate where we are, and
        # checkpoint it so that a later run with a larger max_steps can continue from here.
        metrics = evaluate_and_keep_best(accelerator, model, val_loader, stage, config, state, log, processor)
        checkpoints.save_if_new(state)
    accelerator.wait_for_everyone()

    digest = state_dict_digest(unwrapped)
    # Every rank says what it did and what weights it holds: data-parallel ranks must agree.
    print(
        f"[rank {accelerator.process_index}/{accelerator.num_processes}] trained on {samples_seen} samples this session; "
        f"step {state.global_step}; weights sha256 {digest}",
        flush=True,
    )
    summary = {
        "output_dir": str(output_dir), "final": str(output_dir / "final"), "best": str(output_dir / "best"),
        "stage": stage.name, "global_step": state.global_step, "epochs_completed": state.epoch,
        "num_processes": accelerator.num_processes, "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val_loss if math.isfinite(state.best_val_loss) else None,
        "eval": metrics, "wall_seconds": round(time.time() - started, 2),
        "is_main_process": accelerator.is_main_process, "weights_sha256": digest,
    }
    if accelerator.is_main_process:
        save_model_folder(output_dir / "final", unwrapped, processor, {"eval": metrics, **_summary_counters(summary)}, config)
        atomic_write_text(output_dir / "train_summary.json", json.dumps(summary, indent=2, default=_json_default))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def train_one_epoch(
    epoch: int, *, accelerator, model, stage, config: TrainConfig, train_set, sampler, train_loader, optimizer,
    schedule, state: TrainingState, total_steps: int, running_loss, log, checkpoints, progress,
) -> int:
    """Train on the batches of `epoch` not seen yet, until the epoch ends or the run reaches `total_steps`
    optimizer steps, logging and checkpointing on the way. Returns the number of samples this process saw."""
    unwrapped = accelerator.unwrap_model(model)
    batches_per_epoch = len(train_loader)
    sampler.set_epoch(epoch)
    train_set.set_epoch(epoch)
    set_train_mode(model, unwrapped, stage.frozen_encoder(config))
    loader = accelerator.skip_first_batches(train_loader, state.batches_done) if state.batches_done else train_loader
    # Accelerate's loader calls `sampler.set_epoch(its own iteration count)` when iterated; a resumed run
    # (or the fresh loader that skip_first_batches returns) would count from 0, so set it explicitly.
    loader.set_epoch(epoch)
    epoch_progress = epoch / config.training.epochs
    every_n = config.checkpointing.every_n_steps
    samples = 0
    for batch in loader:
        torch.manual_seed(step_seed(config.seed, state.micro_step, DROPOUT_STREAM + accelerator.process_index))
        task_generator = task_weights_generator(config.seed, state.micro_step)
        with accelerator.accumulate(model):
            schedule.apply(state.global_step)
            out = stage.training_output(model, unwrapped, batch, epoch_progress, task_generator)
            accelerator.backward(out.loss)
            if accelerator.sync_gradients and config.optim.max_grad_norm is not None:
                accelerator.clip_grad_norm_(model.parameters(), config.optim.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        running_loss.add(out.loss.detach(), getattr(out, "loss_components", None))
        samples += len(batch[stage.inputs[0]])
        state.batches_done += 1
        state.micro_step += 1
        if not accelerator.sync_gradients:
            continue
        state.global_step += 1
        progress.update(1)
        if state.global_step % config.logging.every_n_steps == 0 or state.global_step == total_steps:
            values = running_loss.reduce(accelerator)
            values.update(lr=schedule.current_lr(), epoch=epoch + state.batches_done / batches_per_epoch)
            log.write("train", state.global_step, values)
            progress.set_postfix(loss=f"{values['loss']:.4f}")
        # An epoch's last step is checkpointed after the epoch's evaluation instead.
        if every_n and state.global_step % every_n == 0 and state.batches_done < batches_per_epoch:
            checkpoints.save(state)
        if state.global_step >= total_steps:
            break
    return samples


def evaluate_and_keep_best(
    accelerator, model, val_loader, stage, config: TrainConfig, state: TrainingState, log, processor, schedule=None
) -> dict:
    """Evaluate, log, step the epoch-level `schedule` (when given: at an epoch's end), and save `best/` when
    the validation loss is the lowest yet."""
    metrics = evaluate(accelerator, model, val_loader, stage)
    if schedule is not None:
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


# ------------------------------------------------------------------------------------------ set-up


def prepare_output_dir(output_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder: continue it (`--resume`) or clear it first (`--overwrite`)."""
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


def resolve_dataset_dir(config: TrainConfig, accelerator) -> Path:
    if config.data.dataset is not None:
        return Path(config.data.dataset)
    # The main process renders the cache; the others wait, then find it complete.
    with accelerator.main_process_first():
        return render_and_prepare_synth(config)


def build_processor(config: TrainConfig, model_config):
    """The image processor saved with the model: the pretrained folder's, or one matching the input size."""
    from ..image_processing_mtclar import MTCLARImageProcessor

    pretrained = config.model.pretrained
    if pretrained is not None and (Path(pretrained) / "preprocessor_config.json").exists():
        return MTCLARImageProcessor.from_pretrained(pretrained)
    return MTCLARImageProcessor(resize_size=model_config.resize_size, crop_size=model_config.image_size)


# ------------------------------------------------------------------------------------------ training steps


def step_seed(seed: int, micro_step: int, stream: int) -> int:
    """A 63-bit seed for one micro-batch and one purpose (stream), independent of any RNG history."""
    return int(np.random.SeedSequence([seed, micro_step, stream]).generate_state(1, dtype=np.uint64)[0]) >> 1


def task_weights_generator(seed: int, micro_step: int) -> torch.Generator:
    """The generator the model draws micro-batch `micro_step`'s task weights from: the same on every process,
    and in a resumed run the same as in an uninterrupted one."""
    return torch.Generator().manual_seed(step_seed(seed, micro_step, TASK_WEIGHTS_STREAM))


def set_train_mode(model, unwrapped, frozen_encoder: bool) -> None:
    model.train()
    if frozen_encoder:  # a frozen encoder keeps its BatchNorm statistics too
        unwrapped.encoder.eval()
        unwrapped.embedding_projection.eval()


# ------------------------------------------------------------------------------------------ outputs


def save_model_folder(path: Path, unwrapped, processor, metrics: dict, config: TrainConfig) -> None:
    """`save_pretrained` (safetensors + config + code), the image processor and metrics.json, atomically."""
    with atomic_directory(path) as tmp:
        unwrapped.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        (tmp / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))


def state_dict_digest(model) -> str:
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


__all__ = ["step_seed", "task_weights_generator", "train", "train_one_epoch", "state_dict_digest"]

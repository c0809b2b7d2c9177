"""Training speed: MT-CLAR pairs per second with data loading included, against the model alone.

    python -m benchmarks.training                 # default model (ResNet-18-shaped, 256 px)
    python -m benchmarks.training --quick --tiny  # smoke version (seconds)
    python -m benchmarks.training --device cuda --batch-size 256 --steps 30 --out gpu.json

The data are SynthAffect faces rendered into a temporary folder and prepared like AffectNet; the loader is
the training loader (`mtclar_hf.training.data.build_loaders`: category pairs, the reference augmentation,
two images decoded and augmented per pair). Figures, each after one warm-up step:

* ``loader``: pairs/s the loader alone delivers (with ``num_workers`` processes);
* ``model_only``: pairs/s of forward + backward + Adam step on one batch already on the device;
* ``with_data``: the same steps fed by the loader, for ``num_workers`` = 0 and the default
  (`default_num_workers()`: every core but one).

On CUDA the step runs bf16 autocast on a channels-last model (what `mixed_precision: auto` picks).
Target (H100): with_data >= 2,000 pairs/s.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from . import Timer, gpu_peak_mb, machine, peak_rss_mb, print_table, resolve_device, synchronize, write_json


def prepare_data(work: Path, quick: bool):
    """Render + prepare a small SynthAffect (train/validation identities disjoint)."""
    from mtclar_hf.training.config import SynthSection, TrainConfig
    from mtclar_hf.training.data import load_splits, render_and_prepare_synth

    config = TrainConfig()
    config.data.synth = SynthSection(
        seed=0,
        identities=8 if quick else 16,
        train_images=64 if quick else 512,
        val_images=16 if quick else 64,
        size=96 if quick else 128,
        clips=0,  # stills only: the loader benchmark reads no clips
        cache_dir=str(work),
    )
    with Timer() as timer:
        train, val = load_splits(config, render_and_prepare_synth(config))
    return config, train, val, timer.seconds


def build_loader(config, train, val, model, processor, batch_size: int, steps: int, workers: int):
    from mtclar_hf.training.data import build_loaders

    config.training.batch_size = batch_size
    config.data.num_workers = workers
    config.data.train_pairs = batch_size * (steps + 1)  # +1: the warm-up step
    config.data.validation_pairs = batch_size
    train_set, sampler, loader, _ = build_loaders(config, train, val, model.config, processor)
    train_set.set_epoch(0)
    sampler.set_epoch(0)
    return loader


class Stepper:
    """One optimizer step of MT-CLAR training (as in the training loop, without Accelerate's bookkeeping)."""

    def __init__(self, model, device: str):
        from mtclar_hf.training.stages import STAGES

        self.model = model.to(device).train()
        self.device = torch.device(device)
        self.on_gpu = self.device.type == "cuda"
        if self.on_gpu:
            self.model.to(memory_format=torch.channels_last)
        self.autocast = self.on_gpu and torch.cuda.is_bf16_supported()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.inputs = STAGES["mtclar"].model_inputs

    def to_device(self, batch: dict) -> dict:
        return {key: value.to(self.device, non_blocking=True) for key, value in self.inputs(batch).items()}

    def step(self, inputs: dict) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.model(**inputs, epoch_progress=0.5)
        out.loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def loader_only(loader, steps: int) -> dict:
    batches = iter(loader)
    with Timer() as start:
        first = next(batches)  # worker start-up and the first batch
    pairs = 0
    with Timer() as timer:
        for _, batch in zip(range(steps), batches):
            pairs += len(batch["similarity_labels"])
    return {"pairs": pairs, "seconds": timer.seconds, "pairs_per_s": pairs / timer.seconds,
            "first_batch_seconds": start.seconds, "batch_size": len(first["similarity_labels"])}


def model_only(stepper: Stepper, batch: dict, steps: int) -> dict:
    inputs = stepper.to_device(batch)
    stepper.step(inputs)  # warm-up (allocator, kernels)
    synchronize(stepper.device)
    with Timer() as timer:
        for _ in range(steps):
            stepper.step(inputs)
        synchronize(stepper.device)
    pairs = steps * len(batch["similarity_labels"])
    return {"pairs": pairs, "seconds": timer.seconds, "pairs_per_s": pairs / timer.seconds}


def with_data(stepper: Stepper, loader, steps: int) -> dict:
    batches = iter(loader)
    stepper.step(stepper.to_device(next(batches)))  # warm-up, and the workers' start-up
    synchronize(stepper.device)
    pairs = 0
    with Timer() as timer:
        for _, batch in zip(range(steps), batches):
            stepper.step(stepper.to_device(batch))
            pairs += len(batch["similarity_labels"])
        synchronize(stepper.device)
    return {"pairs": pairs, "seconds": timer.seconds, "pairs_per_s": pairs / timer.seconds}


def run(args) -> dict:
    from mtclar_hf import MTCLARConfig, MTCLARImageProcessor, MTCLARModel
    from mtclar_hf.testing_utils import tiny_config
    from mtclar_hf.training.data import default_num_workers

    device = resolve_device(args.device)
    torch.manual_seed(0)
    model_config = tiny_config() if args.tiny else MTCLARConfig()
    model = MTCLARModel(model_config)
    processor = MTCLARImageProcessor(resize_size=model_config.resize_size, crop_size=model_config.image_size)
    stepper = Stepper(model, device)
    workers = args.workers if args.workers is not None else default_num_workers()
    with tempfile.TemporaryDirectory(prefix="mtclar-train-bench-") as tmp:
        config, train, val, data_seconds = prepare_data(Path(tmp), args.quick)

        def loader_with(num_workers: int):
            return build_loader(config, train, val, model, processor, args.batch_size, args.steps, num_workers)

        loader = loader_only(loader_with(workers), args.steps)
        model_figures = model_only(stepper, next(iter(loader_with(0))), args.steps)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        fed = {str(n): with_data(stepper, loader_with(n), args.steps) for n in sorted({0, workers})}
    best = max(fed.values(), key=lambda figures: figures["pairs_per_s"])
    return {
        "benchmark": "training",
        "machine": machine(),
        "device": device,
        "settings": {
            "model": "tiny" if args.tiny else "default (ResNet-18-shaped, 256 px)",
            "batch_size": args.batch_size,
            "steps": args.steps,
            "num_workers": workers,
            "bf16_autocast": stepper.autocast,
            "channels_last": stepper.on_gpu,
            "quick": args.quick,
            "data_prepare_seconds": data_seconds,
        },
        "loader": loader,
        "model_only": model_figures,
        "with_data": fed,
        "with_data_vs_model_only": best["pairs_per_s"] / model_figures["pairs_per_s"],
        "memory": {"peak_rss_mb": peak_rss_mb(), "gpu_peak_mb": gpu_peak_mb(device)},
    }


def report(result: dict) -> None:
    settings = result["settings"]
    rows = [
        ("loader pairs/s", result["loader"]["pairs_per_s"], f"{settings['num_workers']} workers, no model"),
        ("model-only pairs/s", result["model_only"]["pairs_per_s"], f"batch {settings['batch_size']}"),
    ]
    for workers, figures in result["with_data"].items():
        rows.append((f"with data, {workers} workers", figures["pairs_per_s"], "pairs/s, loader + step"))
    rows.append(("with data / model only", result["with_data_vs_model_only"], "best workers setting"))
    rows.append(("peak RSS MiB", result["memory"]["peak_rss_mb"], "loader workers are separate processes"))
    print_table(f"Training on {result['device']} ({settings['model']})", rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: a few tiny batches")
    parser.add_argument("--tiny", action="store_true", help="tiny test model instead of the default one")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 16 on CPU, 256 on GPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per figure (default 4 on CPU, 30 on GPU)")
    parser.add_argument("--workers", type=int, default=None, help="loader processes (default: every core but one)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    on_gpu = resolve_device(args.device).startswith("cuda")
    if args.batch_size is None:
        args.batch_size = 8 if args.quick else (256 if on_gpu else 16)
    if args.steps is None:
        args.steps = 2 if args.quick else (30 if on_gpu else 4)
    result = run(args)
    report(result)
    if args.out:
        print(f"\nwrote {write_json(result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

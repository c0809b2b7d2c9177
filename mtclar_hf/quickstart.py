"""`mtclar quickstart`: the README's first command.

Builds a small MT-CLAR model, saves it as a Hugging Face folder (safetensors + config + processor +
code), reloads it with `AutoModel.from_pretrained`, checks the reload is exact, and prints what it did.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("quickstart", help="build, save and reload a small MT-CLAR model (the README's first command)")
    parser.add_argument("--out", default="outputs/quickstart", help="output folder (default: outputs/quickstart)")
    parser.set_defaults(func=run_quickstart)


def run_quickstart(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoImageProcessor, AutoModel

    from . import MTCLARImageProcessor, MTCLARModel
    from .io_utils import atomic_directory
    from .testing_utils import tiny_config

    out = Path(args.out) / "model"
    torch.manual_seed(0)
    config = tiny_config()
    model = MTCLARModel(config).eval()
    processor = MTCLARImageProcessor(resize_size=config.resize_size, crop_size=config.image_size)
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"built  MTCLARModel: {config.encoder} encoder, {config.embedding_size}-d embeddings, {n_params:,} parameters")
    print(f"saved  {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")

    reloaded = AutoModel.from_pretrained(out).eval()
    reloaded_processor = AutoImageProcessor.from_pretrained(out)
    frames = [torch.randint(0, 256, (96, 96, 3), dtype=torch.uint8).numpy() for _ in range(4)]
    pixels = reloaded_processor(frames, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        embeddings = reloaded.embed(pixels)
        before = model.compare(model.embed(pixels[:2]), model.embed(pixels[2:])).valence_diff
        after = reloaded.compare(embeddings[:2], embeddings[2:]).valence_diff
    same_weights = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
    max_diff = (before - after).abs().max().item()
    exact = same_weights and max_diff < 1e-6
    print(f"reload AutoModel.from_pretrained -> {type(reloaded).__name__}; weights bit-exact: {same_weights}; "
          f"max output difference {max_diff:.1e}")
    print(f"use    embeddings {tuple(embeddings.shape)}; valence differences of two pairs: {after.tolist()}")
    return 0 if exact else 1

"""How the labelling cost grows with the number of anchors, measured in one run.

    python -m mtclar_hf.labeling.benchmark [--frames 256] [--anchors 20] [--tiny] [--device cuda]

Three numbers, all in labelled frames per second of wall time for the same synthetic video:

* ``one_anchor``: the engine (encode every frame once + label) with 1 anchor per query frame;
* ``many_anchors``: the same with `--anchors` anchors per query frame (``mean`` mode, K nearest);
* ``reencode_pairs``: the naive way, a full Siamese forward (both images re-encoded) for every
  (query, anchor) pair with the same number of anchors, timed on a subset of queries.

Targets (issue 9): many_anchors >= 0.8 x one_anchor, and many_anchors >= 10 x reencode_pairs.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def synthetic_frames(num_frames: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Smoothly changing RGB frames (already face crops: the benchmark times the model, not the detector)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    return [np.roll(base, shift=i, axis=1) for i in range(num_frames)]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_engine(labeler, frames: list[np.ndarray], support: dict, anchors: int) -> tuple[float, float]:
    """(encode seconds, label seconds) to embed every frame once and label it from `anchors` anchors (mean mode)."""
    started = time.perf_counter()
    encoded = labeler.encode(frames)
    _synchronize(labeler.device)
    encoded_at = time.perf_counter()
    labeler.label(encoded, support, anchor="mean", max_anchors=anchors)
    _synchronize(labeler.device)
    return encoded_at - started, time.perf_counter() - encoded_at


@torch.inference_mode()
def time_reencoding(model, processor, frames: list[np.ndarray], anchors: int, queries: int, batch_size: int) -> float:
    """Seconds per query frame when every (query, anchor) pair goes through the full Siamese forward."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    anchor_frames = frames[:: max(1, len(frames) // anchors)][:anchors]
    query_frames = frames[:queries]
    started = time.perf_counter()
    pairs = [(q, a) for q in query_frames for a in anchor_frames]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        pixels_a = torch.from_numpy(processor.preprocess_arrays([q for q, _ in chunk])).to(device, dtype)
        pixels_b = torch.from_numpy(processor.preprocess_arrays([a for _, a in chunk])).to(device, dtype)
        model(pixels_a, pixels_b)
    _synchronize(device)
    return (time.perf_counter() - started) / len(query_frames)


def measure(
    model, processor, num_frames: int = 256, anchors: int = 20, batch_size: int = 64, repeats: int = 2, device=None
) -> dict:
    """Frames per second for 1 anchor, `anchors` anchors, and re-encoding each pair (best of `repeats`)."""
    from .labeler import FewShotVideoLabeler

    labeler = FewShotVideoLabeler(model, processor, detector=None, batch_size=batch_size, device=device)
    frames = synthetic_frames(num_frames, processor.resize_size)
    step = max(1, num_frames // (2 * anchors))
    support = {frame: (0.0, 0.0) for frame in range(0, num_frames, step)}
    if len(support) < anchors:
        raise ValueError(f"{num_frames} frames give only {len(support)} support frames; need >= {anchors}")
    time_engine(labeler, frames[: 2 * batch_size], {0: (0.0, 0.0)}, 1)  # warm-up (allocator, kernels)
    one = min((time_engine(labeler, frames, support, 1) for _ in range(repeats)), key=sum)
    many = min((time_engine(labeler, frames, support, anchors) for _ in range(repeats)), key=sum)
    per_query = min(
        time_reencoding(labeler.model, processor, frames, anchors, queries=8, batch_size=batch_size)
        for _ in range(repeats)
    )
    result = {
        "device": str(labeler.device),
        "frames": num_frames,
        "anchors": anchors,
        "support_frames": len(support),
        "one_anchor_fps": num_frames / sum(one),
        "many_anchors_fps": num_frames / sum(many),
        "reencode_pairs_fps": 1.0 / per_query,
        "one_anchor_seconds": {"encode": one[0], "label": one[1]},
        "many_anchors_seconds": {"encode": many[0], "label": many[1]},
    }
    result["many_vs_one"] = result["many_anchors_fps"] / result["one_anchor_fps"]
    result["many_vs_reencode"] = result["many_anchors_fps"] / result["reencode_pairs_fps"]
    return result


def main(argv=None) -> int:
    from mtclar_hf import MTCLARConfig, MTCLARImageProcessor, MTCLARModel
    from mtclar_hf.testing_utils import tiny_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--anchors", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--tiny", action="store_true", help="tiny test model instead of the default (ResNet-18-shaped, 256 px)"
    )
    parser.add_argument("--model", default=None, help="a saved model folder instead of a random default-config model")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.model:
        from .cli import load_model_and_processor

        model, processor = load_model_and_processor(args.model)
    else:
        config = tiny_config() if args.tiny else MTCLARConfig()
        model = MTCLARModel(config)
        processor = MTCLARImageProcessor(resize_size=config.resize_size, crop_size=config.image_size)
    result = measure(model, processor, args.frames, args.anchors, args.batch_size, args.repeats, args.device)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

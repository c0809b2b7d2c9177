"""Labelling speed and memory on a generated 640x360, 30 frames/s clip of a SynthAffect face moving about.

    python -m benchmarks.labeling                 # default model (ResNet-18-shaped, 256 px), 60 s clip
    python -m benchmarks.labeling --quick --tiny  # smoke version (seconds)
    python -m benchmarks.labeling --device cuda --compile --out gpu.json
    python -m benchmarks.labeling --backend torch onnx --seconds 20   # PyTorch vs onnxruntime, one run

Figures (frames per second of video unless said otherwise):

* stages alone: ``decode`` (PyAV, the whole clip), ``faces`` (detection + tracking + 68 landmarks + face crop,
  the labeller's face stage with its worker threads, on ``--stage-frames`` frames held in memory) and
  ``encoder`` (batched `embed` on those crops);
* ``end_to_end``: `FewShotVideoLabeler.encode` + `label` on the whole clip (the three stages overlapped),
  with the labeller's own busy-seconds profile of each stage, and its ratio to the slowest stage alone;
* anchors: labelling from cached embeddings with K = 1, 5, 20 anchors per frame (``mean`` mode), against
  the naive way that runs the full Siamese forward (both images re-encoded) for every (frame, anchor) pair;
* memory: peak RSS (and GPU memory) of this run, and of labelling a 1-minute and a 10-minute clip, each
  in a fresh process (the 10-minute clip is the 1-minute one's h264 stream repeated, so it costs nothing
  to make).

Targets: end-to-end >= 0.7 x the slowest stage; 20 anchors <= 1.25 x the time of 1 anchor;
cached >= 10 x re-encoding at K = 20; 10-minute peak RSS <= 1.5 x the 1-minute one.

With ``--backend torch onnx`` the run compares encoder backends instead (the anchor and memory figures
do not depend on the backend): for each backend, the encoder stage alone (best of ``--repeats``,
the backends taking turns), end-to-end with face detection and end-to-end without it (each frame taken
whole as the face: decode, resize, encoder), and the largest difference between the backends' labels
of the same clip. Targets: onnxruntime encoder >= 1.5 x PyTorch eager; labels within 1e-3.

The module is longer than most because each figure it reports needs its own measurement set-up, and all of
them go into one report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import (
    Timer,
    current_rss_mb,
    gpu_peak_mb,
    machine,
    peak_rss_mb,
    print_table,
    resolve_device,
    synchronize,
    write_json,
)

FPS = 30
WIDTH, HEIGHT = 640, 360
FACE_SIZE = 200
LOOP_FRAMES = 90  # rendered face frames, played forwards and backwards (rendering costs ~7 ms a frame)
ANCHOR_COUNTS = (1, 5, 20)
REPO_ROOT = Path(__file__).resolve().parents[1]
SUPPORT_EVERY_S = 2.0  # end-to-end run: one labelled frame every 2 s, "latest" anchor (the reference)

# ------------------------------------------------------------------------------------------ the clip


def clip_frames(seconds: float, fps: int = FPS, seed: int = 0):
    """640x360 RGB frames: a rendered SynthAffect face (its expression changing) gliding over a textured
    background, one frame at a time (bounded memory for long clips)."""
    import cv2

    from mtclar_hf.data.synth import render_clip

    faces = render_clip(identity_seed=seed + 11, num_frames=LOOP_FRAMES, image_size=FACE_SIZE, seed=seed).frames
    rng = np.random.default_rng(seed)
    texture = rng.integers(40, 200, size=(HEIGHT // 20, WIDTH // 20, 3), dtype=np.uint8)
    background = cv2.resize(texture, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    travel_x, travel_y = (WIDTH - FACE_SIZE) / 2, (HEIGHT - FACE_SIZE) / 2
    for index in range(int(round(seconds * fps))):
        t = index / fps
        x = int(travel_x * (1 + 0.8 * math.sin(2 * math.pi * t / 7.0)))
        y = int(travel_y * (1 + 0.6 * math.sin(2 * math.pi * t / 5.0)))
        step = index % (2 * LOOP_FRAMES - 2)  # forwards then backwards: no jump in the expression
        face = faces[step if step < LOOP_FRAMES else 2 * LOOP_FRAMES - 2 - step]
        frame = background.copy()
        frame[y : y + FACE_SIZE, x : x + FACE_SIZE] = face
        yield frame


def write_clip(path: Path, seconds: float, fps: int = FPS, seed: int = 0) -> Path:
    from mtclar_hf.labeling.video import write_video

    return write_video(clip_frames(seconds, fps, seed), path, fps=fps)


def repeat_clip(source: Path, path: Path, times: int) -> Path:
    """`source`'s compressed stream `times` over, timestamps shifted: a long clip without re-encoding."""
    import av

    from mtclar_hf.io_utils import atomic_path

    with av.open(str(source)) as probe:
        stream = probe.streams.video[0]
        span = max(p.pts + (p.duration or 0) for p in probe.demux(stream) if p.pts is not None)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as out:
            out_stream = None
            for repeat in range(times):
                with av.open(str(source)) as container:
                    stream = container.streams.video[0]
                    if out_stream is None:
                        out_stream = out.add_stream_from_template(stream)
                    for packet in container.demux(stream):
                        if packet.dts is None:  # the demuxer's empty flush packet
                            continue
                        packet.pts += repeat * span
                        packet.dts += repeat * span
                        packet.stream = out_stream
                        out.mux(packet)
    return path


# ------------------------------------------------------------------------------------------ model and labeller


def load_parts(tiny: bool, model_dir: str | None, device: str):
    from mtclar_hf import MTCLARConfig, MTCLARImageProcessor, MTCLARModel
    from mtclar_hf.testing_utils import tiny_config

    torch.manual_seed(0)
    if model_dir:
        from mtclar_hf.labeling.loading import load_model_and_processor

        model, processor = load_model_and_processor(model_dir)
    else:
        config = tiny_config() if tiny else MTCLARConfig()
        model = MTCLARModel(config)
        processor = MTCLARImageProcessor(resize_size=config.resize_size, crop_size=config.image_size)
    return model.to(device).eval(), processor


def make_labeler(model, processor, args, detector="hog", encoder=None, detect_every=None):
    from mtclar_hf.labeling import FewShotVideoLabeler

    return FewShotVideoLabeler(
        model,
        processor,
        detector=detector,
        batch_size=args.batch_size,
        face_workers=args.face_workers,
        compile=args.compile and encoder is None,
        encoder=encoder,
        detect_every=detect_every or args.detect_every,
    )


# ------------------------------------------------------------------------------------------ stages alone


def decode_stage(path: Path) -> dict:
    from mtclar_hf.labeling.video import iter_frames

    with Timer() as timer:
        frames = sum(1 for _ in iter_frames(path))
    return {"frames": frames, "seconds": timer.seconds, "fps": frames / timer.seconds}


def first_frames(path: Path, count: int) -> list:
    from mtclar_hf.labeling.video import iter_frames

    frames = []
    for frame in iter_frames(path):
        if len(frames) == count:
            break
        frames.append(frame)
    return frames


def face_stage(labeler, frames: list) -> tuple[dict, list]:
    """The labeller's face stage (detection on worker threads, tracking, crop) alone, on frames in memory."""
    from mtclar_hf.labeling.labeler import StageClock

    labeler.find_faces(frames[: labeler.batch_size])  # warm-up: each worker loads its cascade once
    clock = StageClock()
    with Timer() as timer:
        records = labeler.find_faces(frames, clock)
    count = len(frames)
    found = sum(r.pixels is not None for r in records)
    return {
        "frames": count,
        "seconds": timer.seconds,
        "fps": count / timer.seconds,
        "detect_track_fps": count / clock.seconds["faces"],
        "crop_fps": max(found, 1) / clock.seconds["crop"],
        "face_found_fraction": found / count,
        "workers": labeler.face_workers,
    }, records


def boxes_only_stage(labeler, frames: list) -> dict:
    """The face stage as it was before landmarks: Haar boxes on the worker threads, tracked, cropped around
    the detector's box. The reference the landmark face stage is measured against in the same run."""
    from concurrent.futures import ThreadPoolExecutor

    from mtclar_hf.labeling.faces import FaceTracker, OpenCVCascadeDetector, opencv_threads

    detector = OpenCVCascadeDetector()
    crop = labeler.image_processor.preprocess_arrays
    with opencv_threads(1), ThreadPoolExecutor(labeler.face_workers) as pool:
        list(pool.map(detector.detect, [f.image for f in frames[: labeler.batch_size]]))  # warm-up
        with Timer() as timer:
            tracker = FaceTracker(smoothing=0.5)
            boxes = [tracker.update(d) for d in pool.map(detector.detect, [f.image for f in frames])]
            found = [(f.image, b) for f, b in zip(frames, boxes) if b is not None]
            list(pool.map(lambda item: crop([item[0]], [item[1]]), found))
    return {"frames": len(frames), "fps": len(frames) / timer.seconds, "face_found_fraction": len(found) / len(frames)}


# A real face clip (`--real-faces DIR`, or $MTCLAR_REAL_FACES, holding single_face.mp4): drawn faces score low
# for HOG (it then looks at twice the size), so the generated clip alone would misjudge the detectors on video.
REAL_FACE_CLIP_NAME = "single_face.mp4"


def detector_comparison(model, processor, args, frames: list) -> dict:
    """Each detector's whole face stage (boxes -> 68 landmarks -> crop, the detector on every
    `--detect-every`-th frame of a followed face) beside the same stage detecting on every frame and
    the boxes-only Haar stage, on the generated clip's frames and, when given, on a real face clip."""
    clips = {"generated clip": frames}
    if args.real_faces:
        clips["real face clip"] = first_frames(Path(args.real_faces) / REAL_FACE_CLIP_NAME, len(frames))
    result = {}
    for clip, clip_frames in clips.items():
        haar = make_labeler(model, processor, args, "haar")
        result[f"{clip}: haar boxes only (no landmarks)"] = boxes_only_stage(haar, clip_frames)
        for name in ("hog", "haar"):
            stage, _ = face_stage(make_labeler(model, processor, args, name), clip_frames)
            result[f"{clip}: {name} + 68 landmarks"] = {**stage, "detect_every": args.detect_every}
        stage, _ = face_stage(make_labeler(model, processor, args, "hog", detect_every=1), clip_frames)
        result[f"{clip}: hog + 68 landmarks, detect every frame"] = {**stage, "detect_every": 1}
    return result


def encoder_stage(labeler, crops: list[np.ndarray]) -> dict:
    """Batched encoder passes alone on crops already made (one warm-up batch first)."""
    size = labeler.batch_size
    labeler.embed_crops(crops[:size])
    synchronize(labeler.device)
    with Timer() as timer:
        for start in range(0, len(crops), size):
            labeler.embed_crops(crops[start : start + size])
        synchronize(labeler.device)
    return {"frames": len(crops), "seconds": timer.seconds, "fps": len(crops) / timer.seconds}


def end_to_end(labeler, path: Path) -> dict:
    """Encode the whole clip (stages overlapped) and label it from one support frame every 2 s."""
    return labelled_end_to_end(labeler, path)[0]


def labelled_end_to_end(labeler, path: Path) -> tuple[dict, object]:
    """`end_to_end`'s figures and the labels it produced (to compare backends on the same clip)."""
    with Timer() as encode_timer:
        encoded = labeler.encode(path)
    found = np.flatnonzero(encoded.face_found)
    if len(found) == 0:
        raise RuntimeError(f"{path}: the detector found no face in any frame")
    step = max(1, int(SUPPORT_EVERY_S * FPS))
    support = {int(frame): (0.0, 0.0) for frame in found[::step]}
    with Timer() as label_timer:
        table = labeler.label(encoded, support, anchor="latest")
    frames = encoded.num_frames
    seconds = encode_timer.seconds + label_timer.seconds
    return {
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        "encode_seconds": encode_timer.seconds,
        "label_seconds": label_timer.seconds,
        "face_found_fraction": float(encoded.face_found.mean()),
        "profile_seconds": {k: round(v, 3) for k, v in encoded.profile.items()},
    }, table


# ------------------------------------------------------------------------------------------ anchors


@torch.inference_mode()
def reencoding_fps(labeler, crops: list[np.ndarray], anchors: int, queries: int) -> float:
    """Frames/s when every (frame, anchor) pair runs the full Siamese forward (both crops re-encoded)."""
    model, device = labeler.model, labeler.device
    anchor_crops = crops[:: max(1, len(crops) // anchors)][:anchors]
    pairs = [(q, a) for q in crops[:queries] for a in anchor_crops]
    with Timer() as timer:
        for start in range(0, len(pairs), labeler.batch_size):
            chunk = pairs[start : start + labeler.batch_size]
            pixels_a = torch.from_numpy(np.stack([q for q, _ in chunk])).to(device, labeler.dtype)
            pixels_b = torch.from_numpy(np.stack([a for _, a in chunk])).to(device, labeler.dtype)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=labeler.autocast):
                model(pixels_a, pixels_b)
        synchronize(device)
    return queries / timer.seconds


def anchor_costs(labeler, frames: list, records: list, queries: int, repeats: int) -> dict:
    """Encode the sample once, label it with K anchors per frame, and compare with re-encoding each pair.

    The frames carry the boxes the face stage found, so this times the model, not the detector."""
    from mtclar_hf.labeling.video import VideoFrame

    with_face = [
        VideoFrame(frame.index, frame.timestamp, frame.image, box=record.box)
        for frame, record in zip(frames, records)
        if record.pixels is not None
    ]
    crops = [record.pixels for record in records if record.pixels is not None]
    largest = max(ANCHOR_COUNTS)
    step = max(1, len(with_face) // (2 * largest))
    support = {index: (0.0, 0.0) for index in range(0, len(with_face), step)}
    if len(support) < largest:
        raise ValueError(f"{len(with_face)} frames with a face give {len(support)} support frames; need {largest}")
    labeler.encode(with_face[: labeler.batch_size])  # warm-up
    encode_seconds, encoded = math.inf, None
    for _ in range(repeats):
        with Timer() as timer:
            encoded = labeler.encode(with_face)
            synchronize(labeler.device)
        encode_seconds = min(encode_seconds, timer.seconds)
    frames_count = len(with_face)
    result = {"frames": frames_count, "support_frames": len(support), "encode_seconds": encode_seconds, "by_k": {}}
    for k in ANCHOR_COUNTS:
        label_seconds = math.inf
        for _ in range(repeats):
            with Timer() as timer:
                labeler.label(encoded, support, anchor="mean", max_anchors=k)
                synchronize(labeler.device)
            label_seconds = min(label_seconds, timer.seconds)
        cached_fps = frames_count / (encode_seconds + label_seconds)
        naive_fps = max(reencoding_fps(labeler, crops, k, queries) for _ in range(repeats))
        result["by_k"][str(k)] = {
            "label_seconds": label_seconds,
            "cached_fps": cached_fps,
            "label_only_fps": frames_count / label_seconds,
            "reencode_fps": naive_fps,
            "cached_vs_reencode": cached_fps / naive_fps,
        }
    by_k = result["by_k"]
    one, many = by_k[str(ANCHOR_COUNTS[0])], by_k[str(largest)]
    result["time_ratio_k20_vs_k1"] = (encode_seconds + many["label_seconds"]) / (encode_seconds + one["label_seconds"])
    return result


# ------------------------------------------------------------------------------------------ memory


def memory_child(args) -> int:
    """In a fresh process: label one clip and print its peak RSS (and the RSS before labelling) as JSON."""
    device = resolve_device(args.device)
    model, processor = load_parts(args.memory_model == "tiny", None, device)
    detector = None if args.memory_detector == "none" else args.memory_detector
    labeler = make_labeler(model, processor, args, detector=detector)
    setup_rss = current_rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with Timer() as timer:
        encoded = labeler.encode(args.memory_child)
        labeler.label(encoded, {int(np.flatnonzero(encoded.face_found)[0]): (0.0, 0.0)}, anchor="latest")
    print(
        json.dumps(
            {
                "frames": encoded.num_frames,
                "seconds": timer.seconds,
                "setup_rss_mb": setup_rss,
                "peak_rss_mb": peak_rss_mb(),
                "gpu_peak_mb": gpu_peak_mb(device),
            }
        )
    )
    return 0


def start_memory_run(args, clip: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "benchmarks.labeling", "--memory-child", str(clip)]
    command += ["--memory-model", args.memory_model, "--memory-detector", args.memory_detector]
    command += ["--batch-size", str(args.batch_size)]
    if args.device:
        command += ["--device", args.device]
    if args.face_workers:
        command += ["--face-workers", str(args.face_workers)]
    command += ["--detect-every", str(args.detect_every)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)


def finish_memory_run(process: subprocess.Popen, clip: Path) -> dict:
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"memory run on {clip} failed:\n{stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["growth_mb"] = result["peak_rss_mb"] - result["setup_rss_mb"]
    return result


def memory_comparison(args, short_clip: Path, work: Path) -> dict:
    """Peak RSS of labelling the clip and the clip 10 times over, each in its own process. The two run at
    the same time: each process's own high-water mark does not depend on the other (only their speed would)."""
    long_clip = repeat_clip(short_clip, work / "clip_x10.mp4", 10)
    clips = (short_clip, long_clip)
    processes = [start_memory_run(args, clip) for clip in clips]
    short, long = (finish_memory_run(process, clip) for process, clip in zip(processes, clips))
    return {
        "model": args.memory_model,
        "detector": args.memory_detector,
        "short_clip": short,
        "long_clip": long,
        "peak_rss_ratio": long["peak_rss_mb"] / short["peak_rss_mb"],
    }


# ------------------------------------------------------------------------------------------ backends


def backend_encoders(args, model, processor, work: Path) -> dict:
    """Backend name -> the encoder to give the labeller (None: its own PyTorch one). The ONNX export starts
    from a saved folder: a random in-memory model is saved into `work` first."""
    from mtclar_hf.export.onnx_export import onnx_encoder_for

    encoders = {}
    for backend in args.backend:
        if backend == "torch":
            encoders[backend] = None
            continue
        folder = args.model
        if folder is None:
            folder = work / "model"
            model.save_pretrained(folder)
            processor.save_pretrained(folder)
        with Timer() as timer:
            encoders[backend] = onnx_encoder_for(folder, device=resolve_device(args.device))
        print(f"{backend} encoder ready in {timer.seconds:.1f} s (export + verification when new)", file=sys.stderr)
    return encoders


def best_encoder_stage(labelers: dict, crops: list[np.ndarray], repeats: int) -> dict:
    """Each backend's encoder stage, best of `repeats`, the backends taking turns: on a shared machine the
    load drifts over minutes, and taking turns exposes both backends to it alike."""
    best = {}
    for _ in range(repeats):
        for name, labeler in labelers.items():
            figures = encoder_stage(labeler, crops)
            if name not in best or figures["fps"] > best[name]["fps"]:
                best[name] = figures
    return best


def largest_label_difference(tables: dict) -> float:
    """Largest |label difference| between the first backend's table and each other's (frames without a face
    are NaN in both and do not count)."""
    first, *others = (table[["valence", "arousal"]].to_numpy() for table in tables.values())
    return max((float(np.nanmax(np.abs(other - first))) for other in others), default=0.0)


def run_backends(args) -> dict:
    device = resolve_device(args.device)
    model, processor = load_parts(args.tiny, args.model, device)
    with tempfile.TemporaryDirectory(prefix="mtclar-bench-") as tmp:
        work = Path(tmp)
        encoders = backend_encoders(args, model, processor, work)
        labelers = {name: make_labeler(model, processor, args, encoder=enc) for name, enc in encoders.items()}
        whole_frame = {name: make_labeler(model, processor, args, None, enc) for name, enc in encoders.items()}
        clip = write_clip(work / "clip.mp4", args.seconds)
        decode = decode_stage(clip)
        frames = first_frames(clip, args.stage_frames)
        faces, records = face_stage(next(iter(labelers.values())), frames)
        encoder = best_encoder_stage(labelers, [r.pixels for r in records if r.pixels is not None], args.repeats)
        backends, tables = {}, {}
        for name in labelers:
            detected, tables[name] = labelled_end_to_end(labelers[name], clip)
            no_detect, _ = labelled_end_to_end(whole_frame[name], clip)
            providers = getattr(encoders[name], "providers", None)
            backends[name] = {"encoder": encoder[name], "end_to_end": detected, "end_to_end_no_detect": no_detect,
                              "providers": providers}
    result = {
        "benchmark": "labeling-backends",
        "machine": machine(),
        "device": device,
        "settings": {
            "model": args.model or ("tiny" if args.tiny else "default (ResNet-18-shaped, 256 px)"),
            "clip": f"{WIDTH}x{HEIGHT} {FPS} fps, {args.seconds:g} s, h264 (SynthAffect face moving)",
            "batch_size": args.batch_size,
            "face_workers": next(iter(labelers.values())).face_workers,
            "encoder_repeats": args.repeats,
            "stage_frames": args.stage_frames,
            "quick": args.quick,
        },
        "stages": {"decode": decode, "faces": faces},
        "backends": backends,
        "label_max_abs_difference": largest_label_difference(tables),
    }
    if {"torch", "onnx"} <= set(backends):
        figures = ("encoder", "end_to_end", "end_to_end_no_detect")
        result["onnx_vs_torch"] = {f: backends["onnx"][f]["fps"] / backends["torch"][f]["fps"] for f in figures}
        result["targets"] = {
            "onnx_encoder_vs_torch": target(result["onnx_vs_torch"]["encoder"], ">=", 1.5),
            "label_max_abs_difference": target(result["label_max_abs_difference"], "<=", 1e-3),
        }
    return result


def report_backends(result: dict) -> None:
    rows = [("decode fps", result["stages"]["decode"]["fps"], ""), ("faces fps", result["stages"]["faces"]["fps"], "")]
    for name, figures in result["backends"].items():
        rows.append((f"{name} encoder fps", figures["encoder"]["fps"], f"batch {result['settings']['batch_size']}"))
        rows.append((f"{name} end-to-end fps", figures["end_to_end"]["fps"], "with face detection"))
        rows.append((f"{name} end-to-end fps", figures["end_to_end_no_detect"]["fps"], "no detection (whole frame)"))
    rows.append(("labels max |diff|", f"{result['label_max_abs_difference']:.2e}", "between the backends, same clip"))
    print_table(f"Backends on {result['device']} ({result['settings']['model']}; {result['settings']['clip']})", rows)
    if "targets" in result:
        ratios = [(f"onnx / torch {name}", value, "") for name, value in result["onnx_vs_torch"].items()]
        checks = [(name, t["value"], f"{t['target']}: {'met' if t['met'] else 'MISSED'}") for name, t in result["targets"].items()]
        print_table("onnxruntime vs PyTorch", ratios + checks)


# ------------------------------------------------------------------------------------------ main


def run(args) -> dict:
    device = resolve_device(args.device)
    model, processor = load_parts(args.tiny, args.model, device)
    labeler = make_labeler(model, processor, args)
    with tempfile.TemporaryDirectory(prefix="mtclar-bench-") as tmp:
        work = Path(tmp)
        with Timer() as make_timer:
            clip = write_clip(work / "clip.mp4", args.seconds)
        decode = decode_stage(clip)
        frames = first_frames(clip, args.stage_frames)
        faces, records = face_stage(labeler, frames)
        detectors = detector_comparison(model, processor, args, frames)
        crops = [r.pixels for r in records if r.pixels is not None]
        encoder = encoder_stage(labeler, crops)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        e2e = end_to_end(labeler, clip)
        gpu_peak = gpu_peak_mb(device)
        anchors = anchor_costs(labeler, frames, records, args.queries, args.repeats)
        run_peak = peak_rss_mb()
        memory = memory_comparison(args, clip, work)
    stages = {"decode": decode["fps"], "faces": faces["fps"], "encoder": encoder["fps"]}
    slowest = min(stages, key=stages.get)
    k20 = anchors["by_k"][str(max(ANCHOR_COUNTS))]
    return {
        "benchmark": "labeling",
        "machine": machine(),
        "device": str(labeler.device),
        "settings": {
            "model": args.model or ("tiny" if args.tiny else "default (ResNet-18-shaped, 256 px)"),
            "clip": f"{WIDTH}x{HEIGHT} {FPS} fps, {args.seconds:g} s, h264 (SynthAffect face moving)",
            "batch_size": args.batch_size,
            "face_workers": labeler.face_workers,
            "detect_every": labeler.detect_every,
            "compile": args.compile,
            "bf16_autocast": labeler.autocast,
            "channels_last": labeler.channels_last,
            "quick": args.quick,
            "clip_make_seconds": make_timer.seconds,
        },
        "stages": {"decode": decode, "faces": faces, "encoder": encoder},
        "face_stage_by_detector": detectors,
        "slowest_stage": slowest,
        "end_to_end": e2e,
        "anchors": anchors,
        "memory": {"run_peak_rss_mb": run_peak, "end_to_end_gpu_peak_mb": gpu_peak, **memory},
        "targets": {
            "end_to_end_vs_slowest_stage": target(e2e["fps"] / stages[slowest], ">=", 0.7),
            "time_k20_vs_k1": target(anchors["time_ratio_k20_vs_k1"], "<=", 1.25),
            "cached_vs_reencode_k20": target(k20["cached_vs_reencode"], ">=", 10.0),
            "peak_rss_10x_clip_vs_1x": target(memory["peak_rss_ratio"], "<=", 1.5),
        },
    }


def target(value: float, relation: str, bound: float) -> dict:
    met = value >= bound if relation == ">=" else value <= bound
    return {"value": value, "target": f"{relation} {bound:g}", "met": bool(met)}


def report(result: dict) -> None:
    stages, e2e, anchors, memory = result["stages"], result["end_to_end"], result["anchors"], result["memory"]
    print_table(
        f"Labelling on {result['device']} ({result['settings']['model']}; {result['settings']['clip']})",
        [
            ("decode fps", stages["decode"]["fps"], f"{stages['decode']['frames']} frames"),
            ("faces fps", stages["faces"]["fps"], f"detect+track {stages['faces']['detect_track_fps']:.1f}, "
             f"crop {stages['faces']['crop_fps']:.1f}, {stages['faces']['workers']} workers"),
            ("encoder fps", stages["encoder"]["fps"], f"batch {result['settings']['batch_size']}"),
            ("end-to-end fps", e2e["fps"], f"{e2e['frames']} frames, slowest stage: {result['slowest_stage']}"),
            ("end-to-end busy s", "", json.dumps(e2e["profile_seconds"])),
        ],
    )
    print_table(
        f"Face stage by detector ({stages['faces']['frames']} frames, {stages['faces']['workers']} workers)",
        [
            (f"{name} fps", row["fps"], f"face found in {row['face_found_fraction']:.0%} of frames")
            for name, row in result["face_stage_by_detector"].items()
        ],
    )
    rows = []
    for k, row in anchors["by_k"].items():
        rows.append((f"K={k} cached fps", row["cached_fps"], f"label only {row['label_only_fps']:.0f} fps"))
        rows.append((f"K={k} re-encode fps", row["reencode_fps"], f"cached is {row['cached_vs_reencode']:.1f}x"))
    print_table(f"Anchors ({anchors['frames']} frames, {anchors['support_frames']} support frames)", rows)
    print_table(
        "Memory (MiB)",
        [
            ("this run peak RSS", memory["run_peak_rss_mb"], ""),
            ("1x clip peak RSS", memory["short_clip"]["peak_rss_mb"],
             f"{memory['short_clip']['frames']} frames, +{memory['short_clip']['growth_mb']:.0f} over setup"),
            ("10x clip peak RSS", memory["long_clip"]["peak_rss_mb"],
             f"{memory['long_clip']['frames']} frames, +{memory['long_clip']['growth_mb']:.0f} over setup"),
        ],
    )
    print_table(
        "Targets",
        [(name, t["value"], f"{t['target']}: {'met' if t['met'] else 'MISSED'}") for name, t in result["targets"].items()],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: a 2 s clip, a few frames per stage")
    parser.add_argument("--tiny", action="store_true", help="tiny test model instead of the default one")
    parser.add_argument("--model", default=None, help="a saved model folder instead of a random model")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (default 60; --quick 2)")
    parser.add_argument("--stage-frames", type=int, default=None, help="frames for the stage-alone figures")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--face-workers", type=int, default=None)
    parser.add_argument("--detect-every", type=int, default=None,
                        help="the labeller's detector interval while a face is followed (default: its own)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder")
    parser.add_argument("--backend", nargs="+", choices=("torch", "onnx"), default=["torch"],
                        help="encoder backends; more than one (or onnx) compares them in one run")
    parser.add_argument("--queries", type=int, default=None, help="frames timed for re-encoding every pair")
    parser.add_argument("--repeats", type=int, default=None, help="best of N for the anchor timings")
    parser.add_argument("--memory-model", choices=("tiny", "default"), default=None,
                        help="model of the 1x/10x memory runs (default: tiny on the CPU, default on a GPU)")
    parser.add_argument("--memory-detector", choices=("none", "hog", "haar"), default=None,
                        help="face detector of the memory runs (default: none on the CPU, hog on a GPU)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--real-faces", default=os.environ.get("MTCLAR_REAL_FACES"),
                        help="folder holding a real face clip, single_face.mp4, for the face-stage rows "
                        "(default: $MTCLAR_REAL_FACES; none: generated clip only)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    return parser


def fill_defaults(args) -> None:
    """Sizes that finish in a few minutes on 2 CPU cores (or seconds with --quick)."""
    from mtclar_hf.labeling.faces import DEFAULT_DETECT_EVERY

    on_gpu = resolve_device(args.device).startswith("cuda")
    defaults = {
        "detect_every": DEFAULT_DETECT_EVERY,
        "seconds": 2.0 if args.quick else 60.0,
        "stage_frames": 32 if args.quick else (1024 if on_gpu else 256),
        "queries": 2 if args.quick else 8,
        "repeats": 1 if args.quick else 2,
        "memory_model": "default" if on_gpu and not args.quick else "tiny",
        "memory_detector": "hog" if on_gpu else "none",
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.batch_size = min(args.batch_size, 16)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    fill_defaults(args)
    if args.memory_child:
        return memory_child(args)
    if args.backend == ["torch"]:
        result = run(args)
        report(result)
    else:
        result = run_backends(args)
        report_backends(result)
    if args.out:
        print(f"\nwrote {write_json(result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

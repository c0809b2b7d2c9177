"""SynthAffect: a procedural affect dataset written in the real AffectNet and AFEW-VA layouts.

``write_synthaffect(out_dir, seed=...)`` renders faces of many synthetic identities (see
:mod:`mtclar_hf.data.synth_render` for the face model) and writes

- ``out_dir/affectnet/``: the original AffectNet layout (``Manually_Annotated_Images/<subdir>/<name>.jpg``,
  ``training.csv``, ``validation.csv``) plus the ``identities.csv`` sidecar;
- ``out_dir/afew_va/``: the AFEW-VA layout (``<clip>/00000.png ...`` and ``<clip>/<clip>.json``) with smooth
  valence/arousal trajectories and head motion, labels as integers in [-10, 10].

Train, validation and clip identities are disjoint. Every image and clip is seeded from ``(seed, kind,
index)`` alone, so the output is byte-identical for a given seed whatever the number of worker processes.
The expression category is derived from (valence, arousal) on the circumplex (`category_from_va`).

Command line (also used to draw the README contact sheet)::

    mtclar synth --out DIR [--seed 0 --identities 60 ...]
    mtclar synth --contact-sheet docs/images/synthaffect_contact_sheet.png

The module is longer than most because both layouts (stills and clips) come from the same identities and
seeds; apart, the seeding that keeps them disjoint and reproducible would be split.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import ConfigError
from ..io_utils import atomic_directory, atomic_path
from .affectnet import AFFECTNET_NAMES as EXPRESSION_NAMES
from .affectnet import CSV_COLUMNS, SYNTHETIC_MARKER
from .synth_render import (
    BASE_SCALE,
    Pose,
    Scene,
    head_box,
    random_pose,
    random_scene,
    render_face,
    sample_identity,
)

# Circumplex sectors: (name, lowest angle in degrees, inclusive), angle = atan2(arousal, valence).
# Read counter-clockwise from the positive valence axis; "Sad" wraps round from -170 to -90 degrees.
CIRCUMPLEX_SECTORS = (
    ("Sad", -170.0),
    ("Happy", -90.0),
    ("Surprise", 70.0),
    ("Fear", 105.0),
    ("Anger", 125.0),
    ("Disgust", 150.0),
    ("Contempt", 170.0),
)
NEUTRAL_RADIUS = 0.2
AFFECTNET_HEADER = CSV_COLUMNS  # the original release's columns, which the loader reads
IMAGES_PER_SUBDIR = 500
JPEG_QUALITY = 92
DEFAULT_FPS = 25.0
# What SynthAffect renders unless told otherwise: `write_synthaffect`, both command lines (`mtclar synth`,
# `mtclar synth`) and a training recipe's `data.synth` block.
DEFAULT_SEED = 0
DEFAULT_IDENTITIES = 60
DEFAULT_TRAIN_IMAGES = 2000
DEFAULT_VAL_IMAGES = 400
DEFAULT_CLIPS = 12
DEFAULT_FRAMES_PER_CLIP = 200
DEFAULT_IMAGE_SIZE = 128
DEFAULT_TRAIN_CLIP_FRAMES = 60
DEFAULT_NUM_WORKERS = 2
# Bumped whenever rendering changes what is written, so cached renders (training's outputs/cache) are redone.
RENDER_VERSION = 4
# Seed streams: each kind of random draw has its own stream so adding clips never changes images.
_IMAGE_STREAM, _CLIP_STREAM, _IDENTITY_STREAM = 1, 2, 3


def category_from_va(valence: float, arousal: float) -> int:
    """AffectNet expression code (0-7) of a (valence, arousal) point on the circumplex.

    Neutral inside a radius of ``NEUTRAL_RADIUS``; otherwise the sector of the angle
    ``atan2(arousal, valence)``: Happy [-90, 70), Surprise [70, 105), Fear [105, 125), Anger [125, 150),
    Disgust [150, 170), Contempt [170, 190), Sad [-170, -90).
    """
    if math.hypot(valence, arousal) < NEUTRAL_RADIUS:
        return 0
    angle = math.degrees(math.atan2(arousal, valence))
    if angle < CIRCUMPLEX_SECTORS[0][1]:
        angle += 360.0  # (-180, -170) belongs to Contempt, which spans 170..190
    name = CIRCUMPLEX_SECTORS[0][0]
    for sector, start in CIRCUMPLEX_SECTORS:
        if angle >= start:
            name = sector
    return EXPRESSION_NAMES.index(name)


# ------------------------------------------------------------------------------------------------ clips


@dataclass
class SynthFrame:
    index: int
    image: np.ndarray  # (S, S, 3) uint8
    valence: float
    arousal: float
    landmarks: np.ndarray  # (68, 2) float32, image pixels


@dataclass
class SynthClip:
    frames: np.ndarray  # (T, S, S, 3) uint8
    valence: np.ndarray  # (T,) float32 in [-1, 1]
    arousal: np.ndarray  # (T,) float32 in [-1, 1]
    landmarks: np.ndarray  # (T, 68, 2) float32
    fps: float = DEFAULT_FPS


def affect_trajectory(rng: np.random.Generator, num_frames: int, fps: float = DEFAULT_FPS) -> np.ndarray:
    """A smooth valence or arousal signal in [-1, 1] with occasional fast changes.

    Sum of: a per-clip level; three sinusoids with periods of 0.8-3.5 s; a smoothed Ornstein-Uhlenbeck
    wander (correlation time 0.35 s); and, about every 3 s, a quick shift (a logistic step) or a short
    burst. The mix was tuned (see docs/SYNTHAFFECT.md) so that, pooled over clips, holding the first frame's
    label gives a CCC of ~0.3 and linear interpolation between labels every 50th frame ~0.6: sparse anchors
    help a lot but are not enough, which is what MT-CLAR's few-shot labelling must add to.
    """
    t = np.arange(num_frames) / fps
    signal = np.full(num_frames, rng.uniform(-0.55, 0.55))
    for _ in range(3):
        period = rng.uniform(0.8, 3.5)
        signal += rng.uniform(0.1, 0.25) * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    duration = max(float(t[-1]), 1.0 / fps)
    for _ in range(int(rng.poisson(duration / 3.0))):
        centre, width, size = rng.uniform(0, duration), rng.uniform(0.08, 0.3), rng.normal(0, 0.35)
        if rng.random() < 0.5:
            signal += size / (1.0 + np.exp(-(t - centre) / width))
        else:
            signal += size * np.exp(-(((t - centre) / (4 * width)) ** 2))
    signal += 0.45 * rng.uniform(0.5, 1.5) * _smoothed_wander(rng, num_frames, fps, correlation_s=0.35)
    return np.clip(signal, -1.0, 1.0)


def _smoothed_wander(rng: np.random.Generator, num_frames: int, fps: float, correlation_s: float) -> np.ndarray:
    """Unit-variance Ornstein-Uhlenbeck process, then a 5-frame moving average so it stays smooth."""
    rho = math.exp(-1.0 / (fps * correlation_s))
    shocks = rng.normal(0.0, math.sqrt(1 - rho**2), num_frames)
    wander = np.empty(num_frames)
    wander[0] = rng.normal()
    for i in range(1, num_frames):
        wander[i] = rho * wander[i - 1] + shocks[i]
    return np.convolve(np.pad(wander, 2, mode="edge"), np.ones(5) / 5, mode="valid")


def head_motion(rng: np.random.Generator, num_frames: int, image_size: int, fps: float = DEFAULT_FPS) -> list[Pose]:
    """Smooth in-plane rotation, translation and scale (slow sways plus a small tremor)."""
    t = np.arange(num_frames) / fps

    def sway(amplitude: float) -> np.ndarray:
        periods = rng.uniform(1.5, 8.0, 2)
        phases = rng.uniform(0, 2 * math.pi, 2)
        return amplitude * (
            0.7 * np.sin(2 * math.pi * t / periods[0] + phases[0])
            + 0.3 * np.sin(2 * math.pi * t / periods[1] + phases[1])
        )

    angle = rng.normal(0, 4) + sway(rng.uniform(2, 10))
    centre_x = image_size * (0.5 + rng.uniform(-0.04, 0.04) + sway(rng.uniform(0.01, 0.05)))
    centre_y = image_size * (0.5 + rng.uniform(-0.03, 0.03) + sway(rng.uniform(0.005, 0.03)))
    scale = image_size * BASE_SCALE * rng.uniform(0.85, 1.05) * (1 + sway(rng.uniform(0.0, 0.06)))
    return [Pose(float(angle[i]), float(centre_x[i]), float(centre_y[i]), float(scale[i])) for i in range(num_frames)]


def _clip_plan(identity_seed: int, num_frames: int, image_size: int, seed: int, fps: float):
    if num_frames < 1:
        raise ConfigError(f"num_frames must be at least 1, got {num_frames}")
    rng = np.random.default_rng([_CLIP_STREAM, int(seed), int(identity_seed)])
    valence = affect_trajectory(rng, num_frames, fps)
    arousal = affect_trajectory(rng, num_frames, fps)
    poses = head_motion(rng, num_frames, image_size, fps)
    scene = random_scene(rng, image_size)
    light_drift = rng.uniform(-0.3, 0.3) * np.sin(2 * math.pi * np.arange(num_frames) / fps / rng.uniform(4, 15))
    return sample_identity(identity_seed), valence, arousal, poses, scene, light_drift, rng


def iter_clip(
    identity_seed: int, num_frames: int, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = DEFAULT_SEED, fps: float = DEFAULT_FPS
) -> Iterator[SynthFrame]:
    """Yield the frames of one clip one at a time (bounded memory for long videos).

    The background stays (one scene per clip); the head moves, the light drifts slowly and each frame has
    fresh sensor noise. Same arguments, same frames, as `render_clip`.
    """
    identity, valence, arousal, poses, scene, light_drift, rng = _clip_plan(
        identity_seed, num_frames, image_size, seed, fps
    )
    for index in range(num_frames):
        frame_scene = Scene(
            scene.background,
            scene.light_angle + float(light_drift[index]),
            scene.light_strength,
            scene.brightness,
            scene.noise_sigma,
            scene.blur_radius,
        )
        image, landmarks = render_face(identity, valence[index], arousal[index], poses[index], frame_scene, rng)
        yield SynthFrame(index, image, float(valence[index]), float(arousal[index]), landmarks)


def render_clip(
    identity_seed: int, num_frames: int, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = DEFAULT_SEED, fps: float = DEFAULT_FPS
) -> SynthClip:
    """Render a whole clip in memory: frames (T, S, S, 3) uint8, valence/arousal (T,), landmarks (T, 68, 2)."""
    frames = list(iter_clip(identity_seed, num_frames, image_size=image_size, seed=seed, fps=fps))
    return SynthClip(
        frames=np.stack([f.image for f in frames]),
        valence=np.array([f.valence for f in frames], dtype=np.float32),
        arousal=np.array([f.arousal for f in frames], dtype=np.float32),
        landmarks=np.stack([f.landmarks for f in frames]).astype(np.float32),
        fps=fps,
    )


def face_crop_frames(clip: SynthClip, size: int) -> np.ndarray:
    """The clip as a face-crop video (T, size, size, 3): each frame cut to the image processor's square crop
    around its landmark box (zero-padded outside the frame) and resized, the crop the models are trained on.

    Such a clip is labelled without face detection (its frames are already face crops), and a drawn face
    may escape a detector anyway.
    """
    from ..image_processing_mtclar import MTCLARImageProcessor, landmark_boxes, square_crop_region

    margin = MTCLARImageProcessor.face_margin
    crops = []
    for frame, box in zip(clip.frames, landmark_boxes(clip.landmarks)):
        left, top, side = square_crop_region(box, margin)
        crop = Image.fromarray(frame).crop((left, top, left + side, top + side))
        crops.append(np.asarray(crop.resize((size, size), Image.BILINEAR)))
    return np.stack(crops)


# ----------------------------------------------------------------------------------------------- images


def sample_valence_arousal(rng: np.random.Generator) -> tuple[float, float]:
    """Uniform over the unit disk of the circumplex, so every category gets samples."""
    radius, angle = math.sqrt(rng.random()), rng.uniform(-math.pi, math.pi)
    return radius * math.cos(angle), radius * math.sin(angle)


def render_still(identity_seed: int, image_index: int, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = DEFAULT_SEED) -> dict:
    """One AffectNet-style sample: a random expression of an identity under random pose and scene."""
    rng = np.random.default_rng([_IMAGE_STREAM, int(seed), int(image_index)])
    identity = sample_identity(identity_seed)
    valence, arousal = sample_valence_arousal(rng)
    pose = random_pose(rng, image_size)
    image, landmarks = render_face(identity, valence, arousal, pose, random_scene(rng, image_size), rng)
    return {
        "image": image,
        "landmarks": landmarks,
        "valence": valence,
        "arousal": arousal,
        "expression": category_from_va(valence, arousal),
        # AffectNet's face_* columns come from a face detector and reach the forehead; the head outline
        # stands in for them. `mtclar prepare` crops around the landmarks unless told `--face-box csv`.
        "face_box": _clamped_box(head_box(identity, pose), image_size),
    }


def _clamped_box(box, image_size: int) -> tuple[float, float, float, float]:
    x, y, w, h = box
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(image_size), x + w), min(float(image_size), y + h)
    return x0, y0, x1 - x0, y1 - y0


# ------------------------------------------------------------------------------------------------ writer


@dataclass(frozen=True)
class IdentitySplit:
    """How identities are shared out: disjoint ranges for train, validation and clips."""

    train: list[int]
    validation: list[int]
    clips: list[int]


def split_identities(num_identities: int, num_clips: int) -> IdentitySplit:
    """Disjoint identity indices: ~20% (at least one per clip, up to half) for clips, 15% validation, rest train.

    Clips take the first indices, so the held-out clips stay the same people whatever `num_identities` is
    (as long as it leaves one identity per clip): recipes with more or fewer training people are then
    compared on the same clips.
    """
    if num_identities < 3:
        raise ConfigError(
            f"num_identities must be at least 3 (train, validation and clips need their own), got {num_identities}"
        )
    num_clip_ids = 0 if num_clips == 0 else min(max(1, round(0.2 * num_identities)), num_clips, num_identities // 2)
    num_val = max(1, round(0.15 * num_identities))
    num_train = num_identities - num_clip_ids - num_val
    if num_train < 1:
        raise ConfigError(f"num_identities={num_identities} leaves no training identity")
    ids = list(range(num_identities))
    return IdentitySplit(ids[num_clip_ids + num_val :], ids[num_clip_ids : num_clip_ids + num_val], ids[:num_clip_ids])


def identity_name(index: int) -> str:
    return f"synth_{index:05d}"


def _identity_seed(seed: int, index: int) -> int:
    """A distinct identity seed per (dataset seed, identity index)."""
    return int(np.random.default_rng([_IDENTITY_STREAM, int(seed), int(index)]).integers(0, 2**62))


def _format_floats(values) -> str:
    return ";".join(f"{v:.2f}" for v in np.asarray(values).reshape(-1))


def _write_still(task: tuple) -> list:
    """Worker: render and save one AffectNet image, return its CSV row (plus split and identity)."""
    images_dir, split, image_index, identity_index, seed, image_size = task
    sample = render_still(_identity_seed(seed, identity_index), image_index, image_size=image_size, seed=seed)
    relative = f"{image_index // IMAGES_PER_SUBDIR + 1}/synth_{image_index:07d}.jpg"
    path = Path(images_dir) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sample["image"]).save(path, quality=JPEG_QUALITY)
    x, y, w, h = sample["face_box"]
    row = [
        relative,
        f"{x:.1f}",
        f"{y:.1f}",
        f"{w:.1f}",
        f"{h:.1f}",
        _format_floats(sample["landmarks"]),
        sample["expression"],
        f"{sample['valence']:.6f}",
        f"{sample['arousal']:.6f}",
    ]
    return [split, identity_name(identity_index), row]


def _write_clip(task: tuple) -> dict:
    """Worker: render one AFEW-VA clip folder (PNG frames + JSON); return its summary."""
    clip_dir, clip_id, identity_index, seed, image_size, num_frames, fps = task
    clip_dir = Path(clip_dir)
    clip_dir.mkdir(parents=True, exist_ok=True)
    frames = {}
    # Each clip gets its own trajectory seed, so two clips of one actor differ.
    clip_seed = int(np.random.default_rng([_CLIP_STREAM, int(seed), int(clip_id)]).integers(0, 2**62))
    for frame in iter_clip(
        _identity_seed(seed, identity_index), num_frames, image_size=image_size, seed=clip_seed, fps=fps
    ):
        name = f"{frame.index:05d}"
        Image.fromarray(frame.image).save(clip_dir / f"{name}.png", compress_level=1)
        frames[name] = {
            "valence": int(round(frame.valence * 10)),
            "arousal": int(round(frame.arousal * 10)),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in frame.landmarks],
        }
    document = {"actor": identity_name(identity_index), "video_id": clip_dir.name, "frames": frames}
    (clip_dir / f"{clip_dir.name}.json").write_text(json.dumps(document))
    return {"clip": clip_dir.name, "actor": document["actor"], "frames": num_frames}


def _run_tasks(function, tasks: list, num_workers: int) -> list:
    if num_workers <= 1 or len(tasks) < 8:
        return [function(task) for task in tasks]
    # fork is cheap and the renderer is pure numpy/Pillow; chunks keep inter-process traffic small.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(num_workers) as pool:
        return pool.map(function, tasks, chunksize=max(1, len(tasks) // (8 * num_workers)))


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if not isinstance(value, int | np.integer) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")


def write_synthaffect(
    out_dir: str | os.PathLike,
    *,
    seed: int = DEFAULT_SEED,
    num_identities: int = DEFAULT_IDENTITIES,
    train_images: int = DEFAULT_TRAIN_IMAGES,
    val_images: int = DEFAULT_VAL_IMAGES,
    num_clips: int = DEFAULT_CLIPS,
    frames_per_clip: int = DEFAULT_FRAMES_PER_CLIP,
    image_size: int = DEFAULT_IMAGE_SIZE,
    fps: float = DEFAULT_FPS,
    num_workers: int = DEFAULT_NUM_WORKERS,
    num_train_clips: int = 0,
    train_clip_frames: int = DEFAULT_TRAIN_CLIP_FRAMES,
) -> dict:
    """Render SynthAffect into ``out_dir`` (atomically: replaced only once complete) and return a summary.

    ``out_dir/affectnet`` holds ``train_images`` + ``val_images`` stills of the train / validation identities,
    ``out_dir/afew_va`` holds ``num_clips`` clips of ``frames_per_clip`` frames of the clip identities (an
    actor may appear in several clips when there are more clips than clip identities).
    ``out_dir/afew_va_train`` (when ``num_train_clips`` > 0) holds clips of ``train_clip_frames`` frames of
    the TRAINING identities: video a model may learn from, as AFEW-VA is beside AffectNet.
    """
    _check_counts(
        num_identities=num_identities,
        train_images=train_images,
        val_images=val_images,
        num_clips=num_clips,
        frames_per_clip=frames_per_clip,
    )
    if image_size < 32:
        raise ConfigError(f"image_size must be at least 32 pixels, got {image_size}")
    if num_clips and frames_per_clip < 1:
        raise ConfigError("frames_per_clip must be at least 1 when clips are requested")
    split = split_identities(num_identities, num_clips)
    start = time.perf_counter()
    with atomic_directory(out_dir) as tmp:
        affectnet_dir, afew_dir = tmp / "affectnet", tmp / "afew_va"
        images_dir = affectnet_dir / "Manually_Annotated_Images"
        images_dir.mkdir(parents=True)
        afew_dir.mkdir()
        still_tasks = [
            (str(images_dir), "train", i, split.train[i % len(split.train)], seed, image_size)
            for i in range(train_images)
        ]
        still_tasks += [
            (
                str(images_dir),
                "validation",
                train_images + i,
                split.validation[i % len(split.validation)],
                seed,
                image_size,
            )
            for i in range(val_images)
        ]
        # Held-out clips first, then training clips: a clip's motion and affect are seeded by its id.
        clip_tasks = _clip_tasks(afew_dir, range(1, num_clips + 1), split.clips, seed, image_size, frames_per_clip, fps)
        if num_train_clips:
            train_ids = range(num_clips + 1, num_clips + num_train_clips + 1)
            clip_tasks += _clip_tasks(
                tmp / "afew_va_train", train_ids, split.train, seed, image_size, train_clip_frames, fps
            )
        # Clips first: they are the longest tasks, so the pool ends evenly.
        clip_summaries = _run_tasks(_write_clip, clip_tasks, num_workers) if clip_tasks else []
        clip_summaries = clip_summaries[:num_clips]
        rows = _run_tasks(_write_still, still_tasks, num_workers)
        _write_affectnet_csvs(affectnet_dir, rows)
        # Says "synthetic" to `mtclar prepare`, so that models trained on it say so too (the demo warns).
        (affectnet_dir / SYNTHETIC_MARKER).write_text(json.dumps({"dataset": "SynthAffect", "synthetic": True, "seed": seed}))
    seconds = time.perf_counter() - start
    actors = {clip["actor"] for clip in clip_summaries}
    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "image_size": image_size,
        "train_images": train_images,
        "val_images": val_images,
        "clips": num_clips,
        "frames_per_clip": frames_per_clip,
        "train_clips": num_train_clips,
        "fps": fps,
        # Counts only (the CLI prints the summary); names are identity_name(i) over split_identities(...).
        "identities": {"train": len(split.train), "validation": len(split.validation), "clips": len(actors)},
        "seconds": round(seconds, 2),
    }


# Validation clips are numbered past any held-out or training clip, so their motion and affect never repeat one.
VALIDATION_CLIP_START = 10_001


def write_validation_clips(
    out_dir: str | os.PathLike,
    *,
    seed: int = DEFAULT_SEED,
    num_identities: int = DEFAULT_IDENTITIES,
    num_clips: int = DEFAULT_CLIPS,
    num_val_clips: int = 8,
    frames_per_clip: int = DEFAULT_FRAMES_PER_CLIP,
    image_size: int = DEFAULT_IMAGE_SIZE,
    fps: float = DEFAULT_FPS,
    num_workers: int = DEFAULT_NUM_WORKERS,
) -> list[dict]:
    """AFEW-VA-layout clips of the VALIDATION identities into ``out_dir`` (atomically): people neither trained on
    nor in the held-out clips, on which labelling settings are chosen so that the held-out clips stay untouched.
    The identity split is `write_synthaffect`'s for the same ``num_identities`` and ``num_clips``."""
    _check_counts(num_val_clips=num_val_clips, frames_per_clip=frames_per_clip)
    split = split_identities(num_identities, num_clips)
    clip_ids = range(VALIDATION_CLIP_START, VALIDATION_CLIP_START + num_val_clips)
    with atomic_directory(out_dir) as tmp:
        tasks = _clip_tasks(Path(tmp), clip_ids, split.validation, seed, image_size, frames_per_clip, fps)
        return _run_tasks(_write_clip, tasks, num_workers)


def _clip_tasks(folder: Path, clip_ids, identities: list[int], seed: int, image_size: int, frames: int, fps: float):
    """`_write_clip` tasks for clips numbered `clip_ids`, their people taken in turn from `identities`."""
    width = max(3, len(str(clip_ids[-1]))) if len(clip_ids) else 3
    return [
        (str(folder / f"{clip_id:0{width}d}"), clip_id, identities[n % len(identities)], seed, image_size, frames, fps)
        for n, clip_id in enumerate(clip_ids)
    ]


def _write_affectnet_csvs(affectnet_dir: Path, rows: list) -> None:
    for split, filename in (("train", "training.csv"), ("validation", "validation.csv")):
        with open(affectnet_dir / filename, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(AFFECTNET_HEADER)
            writer.writerows(row for row_split, _, row in rows if row_split == split)
    with open(affectnet_dir / "identities.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("subDirectory_filePath", "identity"))
        writer.writerows((row[0], identity) for _, identity, row in rows)


# ------------------------------------------------------------------------------------------ contact sheet

# One column per expression: (valence, arousal) points well inside each circumplex sector.
CONTACT_SHEET_POINTS = (
    (0.0, 0.0),
    (0.85, 0.2),
    (-0.7, -0.5),
    (0.15, 0.9),
    (-0.3, 0.85),
    (-0.8, 0.35),
    (-0.6, 0.65),
    (-0.85, 0.05),
)


def make_contact_sheet(
    out_png: str | os.PathLike, *, seed: int = DEFAULT_SEED, num_identities: int = 5, image_size: int = DEFAULT_IMAGE_SIZE
) -> Path:
    """A grid of SynthAffect samples: one identity per row, one circumplex category per column, labelled.

    The last row shows random still samples (random identities, expressions, poses and scenes) as written to
    the AffectNet layout.
    """
    if num_identities < 1:
        raise ConfigError(f"num_identities must be at least 1, got {num_identities}")
    label_height = 26
    cols = len(CONTACT_SHEET_POINTS)
    tile_h = image_size + label_height
    sheet = Image.new("RGB", (cols * image_size, (num_identities + 1) * tile_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row in range(num_identities + 1):
        for col, (valence, arousal) in enumerate(CONTACT_SHEET_POINTS):
            if row < num_identities:
                rng = np.random.default_rng([_IMAGE_STREAM, seed, row, 10_000])
                identity = sample_identity(_identity_seed(seed, row))
                pose, scene = random_pose(rng, image_size), random_scene(rng, image_size)
                image, _ = render_face(identity, valence, arousal, pose, scene, rng)
            else:
                sample = render_still(
                    _identity_seed(seed, 1000 + col), 1_000_000 + col, image_size=image_size, seed=seed
                )
                image, valence, arousal = sample["image"], sample["valence"], sample["arousal"]
            x, y = col * image_size, row * tile_h
            sheet.paste(Image.fromarray(image), (x, y))
            name = EXPRESSION_NAMES[category_from_va(valence, arousal)]
            draw.text((x + 3, y + image_size + 1), f"{name}", fill=(0, 0, 0), font=font)
            draw.text((x + 3, y + image_size + 13), f"v={valence:+.2f} a={arousal:+.2f}", fill=(60, 60, 60), font=font)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        sheet.save(tmp)
    return out_png

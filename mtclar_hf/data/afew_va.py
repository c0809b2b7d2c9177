"""AFEW-VA as a Hugging Face `datasets.DatasetDict`, and clip-by-clip access for the labeller.

Raw layout: one folder per clip (``001`` .. ``600``) of PNG frames
``00000.png``, ``00001.png``, ... and one JSON per clip, ``<clip>/<clip>.json`` (a top-level
``<clip>.json`` beside the folder is accepted too)::

    {"actor": ..., "video_id": "001",
     "frames": {"00000": {"valence": v, "arousal": a, "landmarks": [[x, y] x 68]}, ...}}

Valence and arousal are integers in [-10, 10]; they are divided by 10 here, so every label this
project sees is in [-1, 1]. The face box is the bounding box of the 68 landmarks.

The raw files must agree with each other: a frame listed in the JSON without its PNG, a PNG without a
JSON entry, or an entry missing a field is an error naming the file (and line), unless
``skip_missing=True``, which drops and counts the unmatched frames instead.

The prepared dataset has one split, ``train`` (all frames), plus ``fold_clip`` and ``fold_actor``
columns from :func:`mtclar_hf.data.splits.assign_group_folds` so a user can take a clip- or
actor-disjoint split with ``ds.filter(lambda r: r["fold_actor"] != 0)`` without any code of ours.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError
from ..image_processing_mtclar import landmark_boxes
from .affectnet import NUM_LANDMARK_VALUES, PrepareSummary, dataset_from_columns, save_dataset_dict
from .splits import assign_group_folds, fold_column_name

LABEL_SCALE = 10.0
NUM_LANDMARKS = NUM_LANDMARK_VALUES // 2
FOLD_MODES = ("clip", "actor")


@dataclass
class AfewVaClip:
    """One clip: its labels per frame and a way to get its frames, from the raw layout or a prepared dataset.

    ``valence`` / ``arousal`` are (T,) float32 in [-1, 1], ``landmarks`` (T, 68, 2) float32, frames sorted
    by ``frame_indices``. Exactly one of ``frame_paths`` (raw layout) or ``dataset`` + ``rows`` (prepared
    dataset) is set; :meth:`iter_images` hides the difference.
    """

    clip_id: str
    actor: str
    frame_names: list[str]
    frame_indices: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    landmarks: np.ndarray
    frame_paths: list[Path] | None = None
    dataset: object = field(default=None, repr=False)
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame_names)

    @property
    def face_boxes(self) -> np.ndarray:
        """(T, 4) landmark bounding boxes (x, y, w, h) in image pixels."""
        return landmark_boxes(self.landmarks.reshape(len(self), -1))

    def iter_images(self) -> Iterator:
        """Yield the frames as RGB PIL images, one at a time (bounded memory for long clips)."""
        from PIL import Image

        if self.frame_paths is not None:
            for path in self.frame_paths:
                with Image.open(path) as image:
                    yield image.convert("RGB")
        else:
            for row in self.rows:
                yield self.dataset[int(row)]["image"].convert("RGB")

    def load_frames(self) -> list[np.ndarray]:
        """All frames as uint8 RGB (H, W, 3) arrays."""
        return [np.asarray(image) for image in self.iter_images()]


def _line_of(text: str, key: str) -> int | str:
    """1-based line of the first occurrence of the JSON key ``"key"`` in ``text`` (for error messages)."""
    position = text.find(f'"{key}"')
    return "?" if position < 0 else text.count("\n", 0, position) + 1


def _frame_sort_key(name: str):
    return (int(name), name) if name.isdigit() else (math.inf, name)


def find_clip_annotations(raw_dir) -> list[tuple[str, Path, Path]]:
    """(clip_id, json_path, frames_dir) for every clip folder in ``raw_dir``, sorted by clip id."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputFileError(raw_dir, "AFEW-VA folder not found")
    clips = []
    seen = set()
    for entry in sorted(raw_dir.iterdir(), key=lambda path: _frame_sort_key(path.name)):
        if not entry.is_dir():
            continue
        inside, beside = entry / f"{entry.name}.json", raw_dir / f"{entry.name}.json"
        json_path = inside if inside.is_file() else beside if beside.is_file() else None
        if json_path is None:
            if any(name.endswith(".png") for name in os.listdir(entry)):
                raise InputFileError(
                    entry, f"clip folder has PNG frames but no {entry.name}.json (inside or beside it)"
                )
            continue  # not a clip folder (e.g. a README folder)
        clips.append((entry.name, json_path, entry))
        seen.add(entry.name)
    for stray in sorted(raw_dir.glob("*.json")):
        if stray.stem not in seen:
            raise InputFileError(stray, f"no clip folder {stray.stem}/ with its PNG frames")
    if not clips:
        raise InputFileError(
            raw_dir, "no AFEW-VA clips found (expected folders like 001/ with 001.json and PNG frames)"
        )
    return clips


def _read_json(json_path: Path) -> tuple[dict, str]:
    text = json_path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFileError(json_path, f"line {err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise InputFileError(json_path, "line 1: expected an object with a 'frames' object")
    if not isinstance(data.get("actor"), str):
        raise InputFileError(json_path, f"line {_line_of(text, 'actor')}: missing or non-string 'actor'")
    return data, text


def afew_label(value, where, name: str, key: str) -> float:
    """One AFEW-VA label in [-1, 1]. The files store tenths (integers in [-10, 10]) whatever the clip's range: a
    calm clip whose labels all lie in {-1, 0, 1} is divided by 10 like any other. Every reader of the JSON
    goes through here."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputFileError(where, f"frame {name}: {key} {value!r} is not a number")
    if not -LABEL_SCALE <= value <= LABEL_SCALE:
        raise InputFileError(where, f"frame {name}: {key} {value} is outside [-10, 10]")
    return value / LABEL_SCALE


def _frame_labels(entry, name: str, json_path: Path, text: str) -> tuple[float, float, np.ndarray]:
    """Validated (valence, arousal) in [-1, 1] and (68, 2) landmarks of one JSON frame entry."""
    where = f"{json_path}, line {_line_of(text, name)}"
    if not isinstance(entry, dict):
        raise InputFileError(where, f"frame {name}: expected an object with valence, arousal, landmarks")
    for key in ("valence", "arousal", "landmarks"):
        if key not in entry:
            raise InputFileError(where, f"frame {name}: missing field {key!r}")
    labels = [afew_label(entry[key], where, name, key) for key in ("valence", "arousal")]
    try:
        landmarks = np.asarray(entry["landmarks"], dtype=np.float32)
    except (TypeError, ValueError):
        raise InputFileError(where, f"frame {name}: landmarks must be 68 [x, y] pairs") from None
    if landmarks.shape != (NUM_LANDMARKS, 2) or not np.isfinite(landmarks).all():
        raise InputFileError(
            where, f"frame {name}: landmarks must be 68 finite [x, y] pairs, got shape {landmarks.shape}"
        )
    return labels[0], labels[1], landmarks


def read_clip(clip_id: str, json_path: Path, frames_dir: Path, skip_missing: bool = False, summary=None) -> AfewVaClip:
    """Read and cross-check one clip's JSON and PNG frames."""
    data, text = _read_json(json_path)
    frames = data["frames"]
    pngs = {name[:-4] for name in os.listdir(frames_dir) if name.endswith(".png")}
    unlabelled = sorted(pngs - set(frames), key=_frame_sort_key)
    if unlabelled:
        if not skip_missing:
            raise InputFileError(
                json_path,
                f"no entry for frame(s) {', '.join(unlabelled[:5])} found as PNG in {frames_dir} (pass --skip-missing to drop them)",
            )
        for _ in unlabelled:
            summary.drop("train", "PNG frame without a JSON entry")
    names, valence, arousal, landmarks = [], [], [], []
    for name in sorted(frames, key=_frame_sort_key):
        if not name.isdigit():
            raise InputFileError(
                f"{json_path}, line {_line_of(text, name)}", f"frame key {name!r} is not a frame number"
            )
        v, a, points = _frame_labels(frames[name], name, json_path, text)
        if name not in pngs:
            if not skip_missing:
                raise InputFileError(
                    f"{json_path}, line {_line_of(text, name)}",
                    f"frame {name} is listed but {frames_dir / (name + '.png')} does not exist (pass --skip-missing to drop it)",
                )
            summary.drop("train", "frame listed in JSON without its PNG")
            continue
        names.append(name)
        valence.append(v)
        arousal.append(a)
        landmarks.append(points)
    return AfewVaClip(
        clip_id=clip_id,
        actor=data["actor"],
        frame_names=names,
        frame_indices=np.array([int(name) for name in names], dtype=np.int32),
        valence=np.asarray(valence, dtype=np.float32),
        arousal=np.asarray(arousal, dtype=np.float32),
        landmarks=np.asarray(landmarks, dtype=np.float32).reshape(-1, NUM_LANDMARKS, 2),
        frame_paths=[frames_dir / f"{name}.png" for name in names],
    )


def load_afew_va_clips(raw_dir, skip_missing: bool = False, summary=None) -> Iterator[AfewVaClip]:
    """Yield every clip of a raw AFEW-VA folder, frames sorted, labels already in [-1, 1]."""
    summary = summary if summary is not None else PrepareSummary(name="AFEW-VA")
    for clip_id, json_path, frames_dir in find_clip_annotations(raw_dir):
        yield read_clip(clip_id, json_path, frames_dir, skip_missing=skip_missing, summary=summary)


def iter_prepared_clips(dataset) -> Iterator[AfewVaClip]:
    """Yield the clips of a PREPARED AFEW-VA dataset (a `datasets.Dataset`) like :func:`load_afew_va_clips`.

    Works on any subset (``select``/``filter``, e.g. one test fold): only the label columns are read up
    front, images are decoded one frame at a time by :meth:`AfewVaClip.iter_images`.
    """
    needed = ["clip_id", "actor", "frame_index", "frame_name", "valence", "arousal", "landmarks"]
    missing = [name for name in needed if name not in dataset.column_names]
    if missing:
        raise ConfigError(f"not a prepared AFEW-VA dataset: missing column(s) {missing}")
    columns = dataset.select_columns(needed).with_format("numpy")[:]
    clip_ids = np.asarray(columns["clip_id"]).astype(str)
    order = np.lexsort((columns["frame_index"], clip_ids))
    boundaries = np.flatnonzero(clip_ids[order][1:] != clip_ids[order][:-1]) + 1
    for rows in np.split(order, boundaries):
        if len(rows) == 0:
            continue
        yield AfewVaClip(
            clip_id=str(clip_ids[rows[0]]),
            actor=str(columns["actor"][rows[0]]),
            frame_names=[str(name) for name in columns["frame_name"][rows]],
            frame_indices=np.asarray(columns["frame_index"][rows], dtype=np.int32),
            valence=np.asarray(columns["valence"][rows], dtype=np.float32),
            arousal=np.asarray(columns["arousal"][rows], dtype=np.float32),
            landmarks=np.asarray(columns["landmarks"][rows], dtype=np.float32).reshape(-1, NUM_LANDMARKS, 2),
            dataset=dataset,
            rows=rows,
        )


def afew_va_features():
    """The explicit `Features` of a prepared AFEW-VA dataset (docs/CONTRACTS.md "Datasets" + fold columns)."""
    from datasets import Features, Image, List, Value

    features = {
        "image": Image(),
        "valence": Value("float32"),
        "arousal": Value("float32"),
        "landmarks": List(Value("float32"), length=NUM_LANDMARK_VALUES),
        "face_box": List(Value("float32"), length=4),
        "clip_id": Value("string"),
        "actor": Value("string"),
        "frame_index": Value("int32"),
        "frame_name": Value("string"),
    }
    features.update({fold_column_name(mode): Value("int32") for mode in FOLD_MODES})
    return Features(features)


def build_afew_va(raw_dir, folds: int = 5, seed: int = 0, skip_missing: bool = False):
    """Read a raw AFEW-VA folder into a `DatasetDict` with one ``train`` split, and a `PrepareSummary`.

    ``fold_clip`` / ``fold_actor`` hold ``folds`` clip- / actor-disjoint folds (fewer when there are fewer
    actors than folds, and -1 everywhere when there is a single one; the summary says so).
    """
    import datasets

    summary = PrepareSummary(name=f"AFEW-VA from {raw_dir}")
    clips = [clip for clip in load_afew_va_clips(raw_dir, skip_missing=skip_missing, summary=summary) if len(clip)]
    if not clips:
        raise InputFileError(raw_dir, "no labelled frames found")
    paths = [path for clip in clips for path in clip.frame_paths]
    landmarks = np.concatenate([clip.landmarks.reshape(len(clip), -1) for clip in clips])
    columns = {
        "image": paths,
        "valence": np.concatenate([clip.valence for clip in clips]),
        "arousal": np.concatenate([clip.arousal for clip in clips]),
        "landmarks": landmarks,
        "face_box": landmark_boxes(landmarks),
        "clip_id": [clip.clip_id for clip in clips for _ in range(len(clip))],
        "actor": [clip.actor for clip in clips for _ in range(len(clip))],
        "frame_index": np.concatenate([clip.frame_indices for clip in clips]).astype(np.int32),
        "frame_name": [name for clip in clips for name in clip.frame_names],
    }
    for mode, column in (("clip", "clip_id"), ("actor", "actor")):
        num_groups = len(set(columns[column]))
        k = min(folds, num_groups)
        if k < 2:
            # One actor (e.g. your own recordings) is a valid dataset; it just has no actor-disjoint split.
            summary.notes.append(f"only {num_groups} {mode}: {fold_column_name(mode)} is -1 (no {mode}-disjoint split)")
            columns[fold_column_name(mode)] = np.full(len(paths), -1, dtype=np.int32)
            continue
        if k < folds:
            summary.notes.append(
                f"only {num_groups} {mode}s: {fold_column_name(mode)} has {k} folds instead of {folds}"
            )
        columns[fold_column_name(mode)] = assign_group_folds(columns[column], k, seed).astype(np.int32)
    summary.kept["train"] = len(paths)
    summary.image_bytes = sum(os.path.getsize(path) for path in paths)
    summary.notes.append(f"{len(clips)} clips, {len(set(columns['actor']))} actors")
    dataset = dataset_from_columns(columns, afew_va_features())
    return datasets.DatasetDict({"train": dataset}), summary


def prepare_afew_va(
    raw_dir, out_dir, folds: int = 5, seed: int = 0, skip_missing: bool = False, num_proc: int | None = None
):
    """Build the AFEW-VA `DatasetDict` from ``raw_dir`` and save it to ``out_dir``; return the summary."""
    dataset_dict, summary = build_afew_va(raw_dir, folds=folds, seed=seed, skip_missing=skip_missing)
    save_dataset_dict(dataset_dict, out_dir, summary.image_bytes, num_proc=num_proc)
    return summary


__all__ = [
    "AfewVaClip",
    "afew_va_features",
    "build_afew_va",
    "iter_prepared_clips",
    "load_afew_va_clips",
    "prepare_afew_va",
]

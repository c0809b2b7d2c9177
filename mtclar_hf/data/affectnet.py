"""AffectNet as a Hugging Face `datasets.DatasetDict`.

Two raw layouts are read:

- **original** release: ``Manually_Annotated_Images/<subdir>/<name>.jpg`` with ``training.csv`` and
  ``validation.csv`` (header ``subDirectory_filePath,face_x,face_y,face_width,face_height,
  facial_landmarks,expression,valence,arousal``; the real ``validation.csv`` ships without the header,
  so a header-less file is read with the same column order).
- **redistributed** layout: ``train_set/images/<id>.jpg`` and ``train_set/annotations/<id>_exp.npy``,
  ``<id>_val.npy``, ``<id>_aro.npy``, ``<id>_lnd.npy`` (same for ``val_set/``).

In both layouts the ``face_box`` column is the bounding box of the 68 landmarks every row carries: the
project's one crop convention (`LANDMARK_BOX`), which labelling reproduces on video. ``face_box="csv"``
keeps the original release's detector boxes (``face_*``, which reach the forehead) instead. Which one was
used is recorded in each split's ``info.description`` (``face_box_source: ...``, read back with
`dataset_box_source`) and in the dataset card, and training copies it into the model's image processor.

An optional ``identities.csv`` sidecar (``subDirectory_filePath,identity``; SynthAffect writes one)
fills the ``identity`` column, keyed by ``image_id``; real AffectNet has no identities, so it is "".

Rows with expression codes 8-10 (None, Uncertain, No-Face) or with the ``-2`` "not annotated" valence /
arousal marker are dropped and counted per reason. Anything else that is not a valid label (an unknown
code, a value outside [-1, 1], NaN, a wrong number of landmarks) is an error naming the file and line:
silently dropping it would hide a broken file. A missing image is an error too, unless
``skip_missing=True``, in which case it is counted.

The dataset is built straight from Arrow arrays (image *paths*; ``save_to_disk`` embeds the bytes), which
is what keeps hundreds of thousands of rows fast: ``Dataset.from_dict`` on Python lists takes ~20 s for
300k rows where this takes well under one.

The module is longer than most because both AffectNet layouts are read, checked row by row (each check beside
the column it guards) and built into the dataset here.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..configuration_mtclar import AFFECTNET_CLASS_NAMES as AFFECTNET_NAMES
from ..errors import ConfigError, InputFileError
from ..image_processing_mtclar import LANDMARK_BOX, UNKNOWN_BOX_SOURCE, landmark_boxes

NUM_LANDMARK_VALUES = 136
NOT_ANNOTATED = -2.0
# Codes present in the raw files that are not expressions; rows carrying them are dropped.
DROPPED_CODES = {8: "None", 9: "Uncertain", 10: "No-Face"}
CSV_COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
ORIGINAL_SPLITS = {"train": "training.csv", "validation": "validation.csv"}
REDISTRIBUTED_SPLITS = {"train": "train_set", "validation": "val_set"}
IMAGES_DIR = "Manually_Annotated_Images"
IDENTITIES_FILE = "identities.csv"
# How `face_box` was made: `--face-box` choice -> source name recorded in the dataset and the processor.
FACE_BOX_CHOICES = {"landmarks": LANDMARK_BOX, "csv": "affectnet_face_box"}
BOX_SOURCE_KEY = "face_box_source"
# A file SynthAffect writes beside its AffectNet-layout CSVs: the data is synthetic.
SYNTHETIC_MARKER = "synthaffect.json"
# save_to_disk estimates shard sizes from the Arrow table, which holds only paths before the images are
# embedded; we size shards from the image files instead, at the library's default 500 MB per shard.
MAX_SHARD_BYTES = 500 * 1024 * 1024


@dataclass
class PrepareSummary:
    """What a `prepare` run kept and dropped, per split; printed by the CLI."""

    name: str
    kept: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, Counter] = field(default_factory=dict)
    image_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    box_source: str = UNKNOWN_BOX_SOURCE
    dataset: str = "AffectNet"
    synthetic: bool = False

    def drop(self, split: str, reason: str) -> None:
        self.dropped.setdefault(split, Counter())[reason] += 1

    def format(self) -> str:
        lines = [f"{self.name}:"]
        for split, kept in self.kept.items():
            drops = self.dropped.get(split, Counter())
            lines.append(f"  {split}: kept {kept} rows, dropped {sum(drops.values())}")
            for reason, count in sorted(drops.items()):
                lines.append(f"    dropped {count}: {reason}")
        lines.append(f"  face boxes: {self.box_source}")
        lines.append(f"  data: {self.dataset}" + (" (synthetic faces)" if self.synthetic else ""))
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def affectnet_features():
    """The explicit `Features` of a prepared AffectNet-like dataset (docs/CONTRACTS.md "Datasets")."""
    from datasets import ClassLabel, Features, Image, List, Value

    return Features(
        {
            "image": Image(),
            "expression": ClassLabel(names=list(AFFECTNET_NAMES)),
            "valence": Value("float32"),
            "arousal": Value("float32"),
            "face_box": List(Value("float32"), length=4),
            "landmarks": List(Value("float32"), length=NUM_LANDMARK_VALUES),
            "image_id": Value("string"),
            "identity": Value("string"),
        }
    )


def split_description(summary: PrepareSummary) -> str:
    """The `DatasetInfo.description` of a prepared split: what it is, where its face boxes came from, and whether
    its faces are synthetic (read back by `dataset_box_source` and `dataset_provenance`)."""
    return (
        f"{summary.name}, prepared by mtclar_hf.\n{BOX_SOURCE_KEY}: {summary.box_source}\n"
        f"dataset: {summary.dataset}\nsynthetic: {str(summary.synthetic).lower()}"
    )


def _description_field(dataset, key: str) -> str | None:
    import re

    found = re.search(rf"^{key}: (.+)$", dataset.info.description or "", flags=re.MULTILINE)
    return found.group(1).strip() if found else None


def dataset_box_source(dataset) -> str:
    """The face-box source recorded by `mtclar prepare` in a split's description; "unknown" when absent."""
    return _description_field(dataset, BOX_SOURCE_KEY) or UNKNOWN_BOX_SOURCE


def dataset_provenance(dataset) -> dict | None:
    """{"dataset": name, "synthetic": bool} recorded by `mtclar prepare`; None for splits prepared without it."""
    name, synthetic = _description_field(dataset, "dataset"), _description_field(dataset, "synthetic")
    if name is None or synthetic is None:
        return None
    return {"dataset": name, "synthetic": synthetic == "true"}


def dataset_card(summary: PrepareSummary) -> str:
    """README.md of a prepared folder: what was kept and how faces are boxed."""
    box_source = summary.box_source
    how = {
        LANDMARK_BOX: "the bounding box of the 68 iBUG landmarks (the crop convention `mtclar label` reproduces on video)",
        "affectnet_face_box": "AffectNet's own `face_x/y/width/height` detector boxes (they reach the forehead; "
        "`mtclar label` crops around landmarks and will warn about the difference)",
    }.get(box_source, box_source)
    return (
        f"# {summary.name}\n\nPrepared with `mtclar prepare`; open with `datasets.load_from_disk`.\n\n"
        f"- {BOX_SOURCE_KEY}: `{box_source}`: the `face_box` column is {how}.\n"
        + "".join(f"- {line.strip()}\n" for line in summary.format().splitlines()[1:])
    )


def dataset_from_columns(columns: dict, features, description: str = ""):
    """Build a `datasets.Dataset` from column arrays without a Python pass per row.

    ``columns`` holds, per feature: a list of file paths for `Image()`, a (N, L) float array for fixed-length
    float lists, a 1-D numpy array for scalars, a list of str for strings. The Arrow table is cast to the
    feature schema, which validates types and lengths.
    """
    import datasets
    import pyarrow as pa

    arrays = {}
    for name, feature in features.items():
        values = columns[name]
        if isinstance(feature, datasets.Image):
            paths = pa.array([str(path) for path in values], pa.string())
            arrays[name] = pa.StructArray.from_arrays(
                [pa.nulls(len(paths), pa.binary()), paths], names=["bytes", "path"]
            )
        elif isinstance(feature, datasets.List):
            matrix = np.ascontiguousarray(values, dtype=np.float32).reshape(len(values), feature.length)
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), feature.length)
        elif isinstance(values, np.ndarray):
            arrays[name] = pa.array(values)
        else:
            arrays[name] = pa.array(list(values), pa.string())
    table = pa.table(arrays).cast(features.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features, description=description))


def detect_layout(raw_dir: str | os.PathLike) -> str:
    """Return "original" or "redistributed" from the files present in ``raw_dir``."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputFileError(raw_dir, "AffectNet folder not found")
    if (raw_dir / ORIGINAL_SPLITS["train"]).is_file():
        return "original"
    if (raw_dir / REDISTRIBUTED_SPLITS["train"] / "annotations").is_dir():
        return "redistributed"
    raise InputFileError(
        raw_dir,
        "not an AffectNet folder: expected training.csv (original release) or train_set/annotations/ "
        "(redistributed layout)",
    )


def read_identities(raw_dir: Path) -> dict[str, str]:
    """The optional ``identities.csv`` sidecar as {image_id: identity}; empty when absent."""
    path = raw_dir / IDENTITIES_FILE
    if not path.is_file():
        return {}
    identities = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [name.strip() for name in header[:2]] != ["subDirectory_filePath", "identity"]:
            raise InputFileError(path, "line 1: expected the header 'subDirectory_filePath,identity'")
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise InputFileError(path, f"line {line_number}: expected 2 fields, found {len(row)}")
            identities[row[0].strip()] = row[1].strip()
    return identities


def _parse_float(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputFileError(where, f"{what} {text!r} is not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise InputFileError(where, f"{what} is {text}")
    return value


def _check_labels(expression: float, valence: float, arousal: float, where: str) -> str | None:
    """Return a drop reason for a row to skip, None for a row to keep; raise for an invalid row."""
    if expression != int(expression) or not 0 <= expression <= 10:
        raise InputFileError(where, f"expression code {expression:g} is not an integer in 0..10")
    if int(expression) in DROPPED_CODES:
        code = int(expression)
        return f"expression {code} ({DROPPED_CODES[code]})"
    if valence == NOT_ANNOTATED or arousal == NOT_ANNOTATED:
        return "valence/arousal not annotated (-2)"
    for name, value in (("valence", valence), ("arousal", arousal)):
        if not -1.0 <= value <= 1.0:
            raise InputFileError(where, f"{name} {value:g} is outside [-1, 1]")
    return None


class _SplitColumns:
    """Accumulates the kept rows of one split as column lists."""

    def __init__(self):
        self.image, self.image_id, self.identity = [], [], []
        self.expression, self.valence, self.arousal = [], [], []
        self.face_box, self.landmarks = [], []
        self.image_bytes = 0

    def add(self, image_path, image_id, identity, expression, valence, arousal, face_box, landmarks, size):
        self.image.append(image_path)
        self.image_id.append(image_id)
        self.identity.append(identity)
        self.expression.append(int(expression))
        self.valence.append(valence)
        self.arousal.append(arousal)
        self.face_box.append(face_box)
        self.landmarks.append(landmarks)
        self.image_bytes += size

    def to_columns(self, face_box_from_landmarks: bool) -> dict:
        landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(-1, NUM_LANDMARK_VALUES)
        face_box = landmark_boxes(landmarks) if face_box_from_landmarks else np.asarray(self.face_box, np.float32)
        return {
            "image": self.image,
            "expression": np.asarray(self.expression, dtype=np.int64),
            "valence": np.asarray(self.valence, dtype=np.float32),
            "arousal": np.asarray(self.arousal, dtype=np.float32),
            "face_box": face_box.reshape(-1, 4),
            "landmarks": landmarks,
            "image_id": self.image_id,
            "identity": self.identity,
        }


def _image_size(path: str, where: str, skip_missing: bool) -> int | None:
    """Size in bytes of an image, None when it is missing and ``skip_missing``; raise otherwise."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        if skip_missing:
            return None
        raise InputFileError(where, f"image {path} not found (pass --skip-missing to drop such rows)") from None


def _csv_rows(path: Path):
    """Yield (line_number, row) of an original-layout CSV, with or without its header line."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            return
        if first and first[0].strip() == CSV_COLUMNS[0]:
            header = [name.strip() for name in first]
            if tuple(header) != CSV_COLUMNS:
                raise InputFileError(path, f"line 1: expected the header {','.join(CSV_COLUMNS)}")
        else:
            yield reader.line_num, first
        # line_num counts physical lines, so a quoted field spanning lines does not shift later numbers.
        for row in reader:
            yield reader.line_num, row


def read_original_split(raw_dir, split, identities, skip_missing, summary) -> _SplitColumns:
    """Parse one CSV of the original release; face boxes come from its face_* columns."""
    raw_dir = Path(raw_dir)
    csv_path = raw_dir / ORIGINAL_SPLITS[split]
    if not csv_path.is_file():
        raise InputFileError(
            csv_path, "not found (the original AffectNet layout needs training.csv and validation.csv)"
        )
    images_dir = f"{raw_dir / IMAGES_DIR}{os.sep}"
    columns = _SplitColumns()
    landmark_texts, line_numbers = [], []
    for line_number, row in _csv_rows(csv_path):
        if not row:
            continue
        where = f"{csv_path}, line {line_number}"
        if len(row) != len(CSV_COLUMNS):
            raise InputFileError(where, f"expected {len(CSV_COLUMNS)} comma-separated fields, found {len(row)}")
        image_id = row[0].strip()
        expression = _parse_float(row[6], "expression", where)
        valence = _parse_float(row[7], "valence", where)
        arousal = _parse_float(row[8], "arousal", where)
        reason = _check_labels(expression, valence, arousal, where)
        if reason is not None:
            summary.drop(split, reason)
            continue
        face_box = [_parse_float(row[col], CSV_COLUMNS[col], where) for col in range(1, 5)]
        image_path = images_dir + image_id
        size = _image_size(image_path, where, skip_missing)
        if size is None:
            summary.drop(split, "image file missing")
            continue
        columns.add(
            image_path, image_id, identities.get(image_id, ""), expression, valence, arousal, face_box, None, size
        )
        # Trailing separators occur in the wild; the values themselves are parsed in bulk below.
        landmark_texts.append(row[5].strip().rstrip(";"))
        line_numbers.append(line_number)
    columns.landmarks = _parse_landmark_texts(landmark_texts, line_numbers, csv_path)
    return columns


def _parse_landmark_texts(texts: list[str], line_numbers: list[int], csv_path: Path) -> np.ndarray:
    """Parse every row's ';'-separated landmark string at once with Arrow (C++), into (N, 136) float32.

    A Python split per row costs ~30 us, i.e. ~10 s for 300k rows; this takes a fraction of that. When
    the bulk parse fails, the rows are re-parsed one by one to name the offending line.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not texts:
        return np.zeros((0, NUM_LANDMARK_VALUES), dtype=np.float32)
    pieces = pc.split_pattern(pa.array(texts, pa.string()), ";")
    counts = pc.list_value_length(pieces).to_numpy(zero_copy_only=False)
    try:
        values = pc.cast(pc.utf8_trim_whitespace(pieces.flatten()), pa.float32()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        values = None
    if values is None or (counts != NUM_LANDMARK_VALUES).any() or not np.isfinite(values).all():
        for text, line_number in zip(texts, line_numbers):
            _parse_landmarks(text, f"{csv_path}, line {line_number}")
    return values.reshape(-1, NUM_LANDMARK_VALUES)


def _parse_landmarks(text: str, where: str) -> np.ndarray:
    """One row's landmarks (the slow path, used to locate a bad row)."""
    try:
        values = np.array([float(value) for value in text.split(";")], dtype=np.float32)
    except ValueError:
        raise InputFileError(where, "facial_landmarks must be 136 ';'-separated numbers") from None
    if values.size != NUM_LANDMARK_VALUES or not np.isfinite(values).all():
        raise InputFileError(where, f"facial_landmarks holds {values.size} finite values, expected 136")
    return values


def _load_npy_value(path: Path) -> np.ndarray:
    """Load one annotation .npy; redistributions store numbers as strings (dtype '<U8'), so convert."""
    try:
        array = np.load(path, allow_pickle=False)
        return np.asarray(array, dtype=np.float64).reshape(-1)
    except FileNotFoundError:
        raise InputFileError(path, "annotation file not found") from None
    except (ValueError, OSError) as err:
        raise InputFileError(path, f"not a numeric .npy array ({err})") from None


def read_redistributed_split(raw_dir, split, identities, skip_missing, summary) -> _SplitColumns:
    """Parse one ``*_set`` folder of the redistributed layout; face boxes come from the landmarks."""
    split_dir = Path(raw_dir) / REDISTRIBUTED_SPLITS[split]
    annotations = split_dir / "annotations"
    images = split_dir / "images"
    if not annotations.is_dir():
        raise InputFileError(
            annotations, "not found (the redistributed AffectNet layout needs <split>_set/annotations/)"
        )
    ids = sorted(
        (name[: -len("_exp.npy")] for name in os.listdir(annotations) if name.endswith("_exp.npy")), key=_natural_key
    )
    columns = _SplitColumns()
    for image_id in ids:
        values = {kind: _load_npy_value(annotations / f"{image_id}_{kind}.npy") for kind in ("exp", "val", "aro")}
        for kind, value in values.items():
            if value.size != 1 or not np.isfinite(value).all():
                raise InputFileError(
                    annotations / f"{image_id}_{kind}.npy", f"expected one finite number, found {value.size} values"
                )
        where = str(annotations / f"{image_id}_exp.npy")
        expression, valence, arousal = (float(values[kind][0]) for kind in ("exp", "val", "aro"))
        reason = _check_labels(expression, valence, arousal, where)
        if reason is not None:
            summary.drop(split, reason)
            continue
        landmark_path = annotations / f"{image_id}_lnd.npy"
        landmarks = _load_npy_value(landmark_path)
        if landmarks.size != NUM_LANDMARK_VALUES or not np.isfinite(landmarks).all():
            raise InputFileError(landmark_path, f"expected 136 finite landmark values, found {landmarks.size}")
        image_path = str(images / f"{image_id}.jpg")
        size = _image_size(image_path, where, skip_missing)
        if size is None:
            summary.drop(split, "image file missing")
            continue
        columns.add(
            image_path, image_id, identities.get(image_id, ""), expression, valence, arousal, None, landmarks, size
        )
    return columns


def _natural_key(name: str):
    """Sort "2" before "10" so numeric ids keep their numeric order."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def build_affectnet(raw_dir, layout: str | None = None, skip_missing: bool = False, face_box: str = "landmarks"):
    """Read a raw AffectNet folder into a `DatasetDict` (train, validation) and a `PrepareSummary`.

    ``layout`` is "original", "redistributed" or None to detect it. ``face_box`` is "landmarks" (the box of
    the 68 landmarks, the default) or "csv" (the original layout's ``face_*`` columns).
    """
    import datasets

    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputFileError(raw_dir, "AffectNet folder not found")
    layout = layout or detect_layout(raw_dir)
    if layout not in ("original", "redistributed"):
        raise ConfigError(f"--layout must be 'original' or 'redistributed', not {layout!r}")
    if face_box not in FACE_BOX_CHOICES:
        raise ConfigError(f"--face-box must be one of {', '.join(FACE_BOX_CHOICES)}, not {face_box!r}")
    if face_box == "csv" and layout == "redistributed":
        raise InputFileError(raw_dir, "--face-box csv needs the original layout's face_* columns; this is the redistributed layout")
    box_source = FACE_BOX_CHOICES[face_box]
    identities = read_identities(raw_dir)
    summary = PrepareSummary(name=f"AffectNet ({layout} layout) from {raw_dir}")
    summary.box_source = box_source
    if (raw_dir / SYNTHETIC_MARKER).is_file():
        summary.dataset, summary.synthetic = "SynthAffect", True
    reader = read_original_split if layout == "original" else read_redistributed_split
    features = affectnet_features()
    splits = {}
    for split in ("train", "validation"):
        columns = reader(raw_dir, split, identities, skip_missing, summary)
        splits[split] = dataset_from_columns(
            columns.to_columns(face_box == "landmarks"), features, split_description(summary)
        )
        summary.kept[split] = len(splits[split])
        summary.image_bytes += columns.image_bytes
    return datasets.DatasetDict(splits), summary


def save_dataset_dict(dataset_dict, out_dir, image_bytes: int, num_proc: int | None = None, card: str | None = None):
    """``save_to_disk`` into ``out_dir`` atomically, embedding the image files, in ~500 MB shards; ``card``
    becomes its README.md."""
    from ..io_utils import atomic_directory

    total_rows = sum(len(split) for split in dataset_dict.values()) or 1
    num_proc = num_proc if num_proc and num_proc > 1 else None
    num_shards = {}
    for name, split in dataset_dict.items():
        split_bytes = image_bytes * len(split) / total_rows
        shards = max(1, math.ceil(split_bytes / MAX_SHARD_BYTES), num_proc or 1)
        num_shards[name] = max(1, min(shards, len(split)))
    with atomic_directory(out_dir) as tmp:
        dataset_dict.save_to_disk(str(tmp), num_shards=num_shards, num_proc=num_proc)
        if card is not None:
            (tmp / "README.md").write_text(card, encoding="utf-8")


def prepare_affectnet(
    raw_dir,
    out_dir,
    layout: str | None = None,
    skip_missing: bool = False,
    num_proc: int | None = None,
    face_box: str = "landmarks",
):
    """Build the AffectNet `DatasetDict` from ``raw_dir`` and save it to ``out_dir``; return the summary."""
    dataset_dict, summary = build_affectnet(raw_dir, layout=layout, skip_missing=skip_missing, face_box=face_box)
    if not any(len(split) for split in dataset_dict.values()):
        raise InputFileError(raw_dir, "no usable rows (every row was dropped)")
    card = dataset_card(summary)
    save_dataset_dict(dataset_dict, out_dir, summary.image_bytes, num_proc=num_proc, card=card)
    return summary


__all__ = [
    "AFFECTNET_NAMES",
    "PrepareSummary",
    "affectnet_features",
    "build_affectnet",
    "dataset_box_source",
    "dataset_from_columns",
    "detect_layout",
    "prepare_affectnet",
    "save_dataset_dict",
]

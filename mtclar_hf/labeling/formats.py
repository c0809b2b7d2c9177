"""Labels in the formats annotators and dataset builders use: NOVA, ELAN, AFEW-VA and time-based CSV.

Export reads a labels table written by `mtclar label` (columns `frame`, `timestamp`, `valence`,
`arousal`, ...; `lm{i}_x`/`lm{i}_y` with `--landmarks`) and writes:

* ``nova``     one NOVA annotation per dimension: an XML header ``NAME.valence.annotation`` (a CONTINUOUS
               scheme with a sample rate) and its ASCII data file ``NAME.valence.annotation~``, one
               ``score;confidence`` line per sample; ``NaN;0`` where no face was found.
* ``elan``     an ELAN ``.eaf``: millisecond time slots and one tier per dimension, one annotation per run
               of frames whose value, rounded to 2 decimals, is the same; faceless frames are gaps.
* ``afew-va``  the AFEW-VA per-clip JSON: frames keyed ``00000``..., valence and arousal as integers in
               [-10, 10] and the 68 landmarks; faceless frames are left out.
* ``seconds``  ``time,valence,arousal`` at a fixed rate, linearly interpolated between frame times, empty
               cells where no face was found.

Every time comes from the frames' own timestamps (the decoder's presentation times), so a variable frame
rate video maps correctly: frame i is shown from its timestamp until the next frame's.

Import reads any of these back and, through the timestamps of the video it belongs to, gives the
support set {frame: (valence, arousal)} that `mtclar label --support` takes (`write_support_csv`).

The module is longer than most because each of the four formats has a writer and a reader here, side by side.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..data.afew_va import LABEL_SCALE
from ..errors import ConfigError, InputFileError, LabelError
from ..io_utils import atomic_write_text
from .faces import NUM_LANDMARKS
from .tables import LANDMARK_COLUMNS
from .video import read_afew_annotation

FORMATS = ("nova", "elan", "afew-va", "seconds")
DIMENSIONS = ("valence", "arousal")
LABEL_COLUMNS = ("frame", "timestamp", "valence", "arousal")
ELAN_DECIMALS = 2
NOVA_SUFFIX = ".annotation"
NOVA_DATA_SUFFIX = ".annotation~"
DEFAULT_FRAME_SECONDS = 1 / 25  # how long a lone frame lasts when nothing else says


# ---------------------------------------------------------------------------------------------------------------
# The labels table and the time line


@dataclass
class FrameLabels:
    """One video's per-frame labels: timestamps (N,) seconds, valence/arousal (N,) NaN where unlabelled.

    `landmarks` (N, 68, 2) when the table has them, `names` the frame file names of a frame folder.
    """

    timestamps: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    landmarks: np.ndarray | None = None
    names: list[str] | None = None
    source: str = ""

    @property
    def num_frames(self) -> int:
        return len(self.timestamps)

    def frame_ends(self) -> np.ndarray:
        return frame_ends(self.timestamps)

    def labelled(self) -> np.ndarray:
        return np.isfinite(self.valence) & np.isfinite(self.arousal)


def frame_ends(timestamps: np.ndarray) -> np.ndarray:
    """When each frame stops being shown: the next frame's time; the last lasts the median frame interval."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    steps = np.diff(timestamps)
    last = float(np.median(steps)) if len(steps) else DEFAULT_FRAME_SECONDS
    return np.append(timestamps[1:], timestamps[-1] + last) if len(timestamps) else timestamps


def default_rate(timestamps: np.ndarray) -> float:
    """The video's mean frame rate (frames per second of its duration), to 3 decimals."""
    ends = frame_ends(timestamps)
    duration = float(ends[-1] - timestamps[0]) if len(timestamps) else 0.0
    return round(len(timestamps) / duration, 3) if duration > 0 else 1 / DEFAULT_FRAME_SECONDS


def read_labels_table(path) -> FrameLabels:
    """A labels table of `mtclar label` (.csv, .parquet or .json records), checked for the columns we need."""
    return labels_from_table(read_table(path), source=str(path))


def read_table(path):
    """The DataFrame of a labels table file (.csv, .parquet or .json records), unchecked."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "labels file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pd.read_parquet(path)
        elif suffix == ".json":
            # pandas would read a column named "timestamp" as dates, and frame names like 00003 as numbers
            table = pd.read_json(path, orient="records", convert_dates=False, dtype={"frame_name": str})
        else:
            table = pd.read_csv(path, dtype={"frame_name": str})  # AFEW-VA names like 00003 stay text
    except (ValueError, OSError, UnicodeDecodeError) as err:  # pandas' parser errors are ValueErrors
        raise InputFileError(path, f"cannot read as a labels table: {str(err).splitlines()[0]}") from None
    return table


def labels_from_table(table, source: str = "labels") -> FrameLabels:
    """`FrameLabels` from a labels DataFrame (the output of `FewShotVideoLabeler.label`)."""
    import pandas as pd

    table = pd.DataFrame(table)
    missing = [c for c in LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(
            source, f"missing column(s) {', '.join(missing)}: expected a labels table written by `mtclar label`"
        )
    if table.empty:
        raise InputFileError(source, "the labels table has no rows")
    table = table.sort_values("frame")
    frames = pd.to_numeric(table["frame"], errors="coerce").to_numpy()
    if not np.array_equal(frames, np.arange(len(table))):
        raise InputFileError(source, "column frame must number every frame 0, 1, 2, ... once")
    timestamps = pd.to_numeric(table["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(timestamps).all() or (np.diff(timestamps) <= 0).any():
        raise InputFileError(source, "column timestamp must hold increasing times in seconds")
    values = {}
    for name in DIMENSIONS:
        column = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
        outside = np.flatnonzero(np.abs(column) > 1.0)
        if len(outside):
            raise LabelError(f"{source}: frame {outside[0]}: {name} {column[outside[0]]} is outside [-1, 1]")
        values[name] = column
    landmark_columns = list(LANDMARK_COLUMNS)
    landmarks = None
    if all(c in table.columns for c in landmark_columns):
        landmarks = table[landmark_columns].to_numpy(dtype=np.float64).reshape(len(table), NUM_LANDMARKS, 2)
    names = [str(n) for n in table["frame_name"]] if "frame_name" in table.columns else None
    return FrameLabels(timestamps, values["valence"], values["arousal"], landmarks, names, source)


def resample(labels: FrameLabels, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, valence, arousal) at `rate` Hz from time 0 to the end of the last frame.

    Within frame i (its timestamp to the next one's) values go linearly from frame i's label to frame i+1's;
    where frame i has no label (no face) the sample is NaN, and where only frame i+1 lacks one, frame i's
    label holds. Before the first frame, the first frame's label holds.
    """
    if not rate > 0 or not math.isfinite(rate):
        raise ConfigError(f"--rate must be a positive number of samples per second, got {rate}")
    end = float(labels.frame_ends()[-1])
    times = np.arange(max(1, math.ceil(end * rate - 1e-9))) / rate
    current = np.clip(np.searchsorted(labels.timestamps, times, side="right") - 1, 0, None)
    following = np.minimum(current + 1, labels.num_frames - 1)
    span = labels.timestamps[following] - labels.timestamps[current]
    fraction = np.where(span > 0, (times - labels.timestamps[current]) / np.where(span > 0, span, 1), 0.0)
    fraction = np.clip(fraction, 0.0, 1.0)
    sampled = []
    for values in (labels.valence, labels.arousal):
        here, there = values[current], values[following]
        blended = here + fraction * (np.where(np.isfinite(there), there, here) - here)
        sampled.append(np.where(np.isfinite(here), blended, np.nan))
    return times, sampled[0], sampled[1]


def values_at(sample_times: np.ndarray, sample_values: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Samples (times increasing, NaN = no value) read at each frame's time: the inverse of `resample`.

    Between two samples with values, linear interpolation. Next to a sample without a value, a frame takes
    the first sample inside its own display interval (its time to the next frame's) when that one has a
    value, and stays NaN otherwise: the edges of a faceless stretch fall on the right frames. Beyond the
    first or last sample, a frame takes it when it is within one sample interval (the median).
    """
    sample_times = np.asarray(sample_times, dtype=np.float64)
    sample_values = np.asarray(sample_values, dtype=np.float64)
    frame_times = np.asarray(frame_times, dtype=np.float64)
    result = np.full(len(frame_times), np.nan)
    if not len(sample_times) or not len(frame_times):
        return result
    spacing = float(np.median(np.diff(sample_times))) if len(sample_times) > 1 else DEFAULT_FRAME_SECONDS
    ends = frame_ends(frame_times)
    left = np.searchsorted(sample_times, frame_times, side="right") - 1
    first_inside = np.searchsorted(sample_times, frame_times, side="left")
    for i, (t, j, k) in enumerate(zip(frame_times, left, first_inside)):
        if 0 <= j < len(sample_times) - 1 and np.isfinite(sample_values[j : j + 2]).all():
            fraction = (t - sample_times[j]) / (sample_times[j + 1] - sample_times[j])
            result[i] = sample_values[j] + fraction * (sample_values[j + 1] - sample_values[j])
        elif k < len(sample_times) and sample_times[k] < ends[i]:
            result[i] = sample_values[k]  # NaN when the frame's own first sample has no value
        elif j == len(sample_times) - 1 and t - sample_times[j] <= spacing + 1e-9:
            result[i] = sample_values[j]
        elif j < 0 and sample_times[0] - t <= spacing + 1e-9:
            result[i] = sample_values[0]
    return result


# ---------------------------------------------------------------------------------------------------------------
# Export


def export_labels(labels: FrameLabels, to: str, out, rate: float | None = None, video_id: str | None = None) -> list[Path]:
    """Write `labels` in format `to` (one of `FORMATS`) at `out`; returns the files written (atomically).

    `rate` (samples per second) applies to `nova` and `seconds` (default: the video's mean frame rate).
    For `nova`, `out` names the annotation: `out.valence.annotation(~)` and `out.arousal.annotation(~)`
    are written (inside `out` when it is a folder).
    """
    if to not in FORMATS:
        raise ConfigError(f"unknown label format {to!r} (choose from {', '.join(FORMATS)})")
    if rate is not None and to not in ("nova", "seconds"):
        raise ConfigError(f"--rate applies to the nova and seconds formats, not to {to}")
    out = Path(out)
    if not labels.labelled().any():
        raise LabelError(f"{labels.source}: no frame has a label (no face was found in any frame): nothing to export")
    if to == "nova":
        return write_nova(labels, out, rate or default_rate(labels.timestamps))
    if to == "elan":
        return [atomic_write_text(out, elan_document(labels))]
    if to == "afew-va":
        return [atomic_write_text(out, afew_va_json(labels, video_id or out.stem))]
    return [atomic_write_text(out, seconds_csv(labels, rate or default_rate(labels.timestamps)))]


def _number(value: float, decimals: int = 4) -> str:
    """A label as text: fixed decimals, no "-0.0000"."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def nova_paths(out: Path, labels_source: str = "labels") -> dict[str, tuple[Path, Path]]:
    """{dimension: (header, data)} paths of a NOVA export named `out` (a folder: the labels file's stem inside)."""
    if out.is_dir() or str(out).endswith(("/", "\\")):
        out = out / Path(labels_source).stem
    name = out.name[: -len(NOVA_SUFFIX)] if out.name.endswith(NOVA_SUFFIX) else out.name
    return {
        dim: (out.with_name(f"{name}.{dim}{NOVA_SUFFIX}"), out.with_name(f"{name}.{dim}{NOVA_DATA_SUFFIX}"))
        for dim in DIMENSIONS
    }


def nova_header(dimension: str, rate: float, size: int) -> str:
    """The XML header of a CONTINUOUS NOVA annotation (ssi-v 3, ASCII data file of `size` samples)."""
    root = ET.Element("annotation", {"ssi-v": "3"})
    ET.SubElement(root, "info", {"ftype": "ASCII", "size": str(size)})
    ET.SubElement(root, "meta", {"annotator": "mtclar"})
    ET.SubElement(
        root, "scheme", {"name": dimension, "type": "CONTINUOUS", "sr": f"{rate:g}", "min": "-1", "max": "1"}
    )
    ET.indent(root, space="\t")
    return '<?xml version="1.0" ?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_nova(labels: FrameLabels, out: Path, rate: float) -> list[Path]:
    times, valence, arousal = resample(labels, rate)
    written = []
    for dimension, values in zip(DIMENSIONS, (valence, arousal)):
        header, data = nova_paths(out, labels.source)[dimension]
        lines = [f"{_number(v)};1" if math.isfinite(v) else "NaN;0" for v in values]
        written.append(atomic_write_text(data, "\n".join(lines) + "\n"))
        written.append(atomic_write_text(header, nova_header(dimension, rate, len(lines))))
    return written


def value_runs(values: np.ndarray, decimals: int = ELAN_DECIMALS) -> list[tuple[int, int, float]]:
    """(first frame, last frame, rounded value) of each run of labelled frames sharing one rounded value."""
    rounded = np.round(values, decimals)
    runs = []
    for i, value in enumerate(rounded):
        if not math.isfinite(value):
            continue
        if runs and runs[-1][1] == i - 1 and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], i, value)
        else:
            runs.append((i, i, float(value)))
    return runs


def _milliseconds(seconds) -> np.ndarray:
    return np.round(np.asarray(seconds, dtype=np.float64) * 1000).astype(np.int64)


def elan_document(labels: FrameLabels) -> str:
    """An EAF 3.0 document: one time-alignable tier per dimension, millisecond time slots shared by tiers."""
    starts, ends = _milliseconds(labels.timestamps), _milliseconds(labels.frame_ends())
    tiers = {dim: [(starts[a], ends[b], v) for a, b, v in value_runs(getattr(labels, dim))] for dim in DIMENSIONS}
    tiers = {dim: [run for run in runs if run[1] > run[0]] for dim, runs in tiers.items()}  # ELAN refuses length 0
    slot_ids = {ms: f"ts{n}" for n, ms in enumerate(sorted({ms for runs in tiers.values() for r in runs for ms in r[:2]}), 1)}
    root = ET.Element(
        "ANNOTATION_DOCUMENT",
        {
            "AUTHOR": "mtclar",
            "DATE": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
            "FORMAT": "3.0",
            "VERSION": "3.0",
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "http://www.mpi.nl/tools/elan/EAFv3.0.xsd",
        },
    )
    header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    count = sum(len(runs) for runs in tiers.values())
    ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"}).text = str(count)
    order = ET.SubElement(root, "TIME_ORDER")
    for ms, slot in slot_ids.items():
        ET.SubElement(order, "TIME_SLOT", {"TIME_SLOT_ID": slot, "TIME_VALUE": str(ms)})
    number = 0
    for dimension, runs in tiers.items():
        tier = ET.SubElement(root, "TIER", {"TIER_ID": dimension, "LINGUISTIC_TYPE_REF": "default-lt"})
        for start, end, value in runs:
            number += 1
            annotation = ET.SubElement(ET.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION", {
                "ANNOTATION_ID": f"a{number}", "TIME_SLOT_REF1": slot_ids[start], "TIME_SLOT_REF2": slot_ids[end],
            })
            ET.SubElement(annotation, "ANNOTATION_VALUE").text = _number(value, ELAN_DECIMALS)
    ET.SubElement(root, "LINGUISTIC_TYPE", {
        "LINGUISTIC_TYPE_ID": "default-lt", "TIME_ALIGNABLE": "true", "GRAPHIC_REFERENCES": "false",
    })
    ET.indent(root, space="\t")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def afew_va_json(labels: FrameLabels, video_id: str, actor: str = "") -> str:
    """The AFEW-VA clip JSON; refuses (one line) a table without landmarks, which AFEW-VA requires."""
    if labels.landmarks is None:
        raise InputFileError(
            labels.source,
            "has no landmark columns (lm0_x ... lm67_y), which AFEW-VA requires: label with `mtclar label --landmarks`",
        )
    frames = {}
    for i in np.flatnonzero(labels.labelled()):
        points = labels.landmarks[i]
        if not np.isfinite(points).all():
            continue  # a labelled frame whose crop had no landmarks (a whole-frame crop) cannot be described
        name = labels.names[i] if labels.names is not None else f"{i:05d}"
        frames[name] = {
            "valence": int(round(labels.valence[i] * LABEL_SCALE)),
            "arousal": int(round(labels.arousal[i] * LABEL_SCALE)),
            "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in points],
        }
    if not frames:
        raise InputFileError(labels.source, "no labelled frame has landmarks: nothing to write as AFEW-VA")
    # One line per frame: a 68-point landmark list spread over 272 lines would drown the labels.
    entries = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in frames.items())
    head = f'{{"actor": {json.dumps(actor)}, "video_id": {json.dumps(video_id)},'
    return f'{head}\n "frames": {{\n{entries}\n }}\n}}\n'


def seconds_csv(labels: FrameLabels, rate: float) -> str:
    times, valence, arousal = resample(labels, rate)
    lines = ["time,valence,arousal"]
    for t, v, a in zip(times, valence, arousal):
        cells = [_number(x) if math.isfinite(x) else "" for x in (v, a)]
        lines.append(f"{t:.6f},{cells[0]},{cells[1]}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Import


def import_labels(path, source: str, frame_times: np.ndarray, frame_names: list[str] | None = None) -> dict:
    """The support set {frame: (valence, arousal)} of a label file in format `source`, on a video's frames.

    `frame_times` are the video's frame timestamps (`video.frame_timestamps`); `frame_names` the file stems of
    a frame folder (AFEW-VA keys). A frame gets a label when both dimensions have a value at its time.
    """
    if source not in FORMATS:
        raise ConfigError(f"unknown label format {source!r} (choose from {', '.join(FORMATS)})")
    path = Path(path)
    frame_times = np.asarray(frame_times, dtype=np.float64)
    if source == "afew-va":
        valence, arousal = read_afew_va(path, len(frame_times), frame_names)
    elif source == "elan":
        valence, arousal = read_elan(path, frame_times)
    else:
        read = read_nova if source == "nova" else read_seconds_csv
        samples = read(path)
        valence, arousal = (values_at(samples[0], samples[k], frame_times) for k in (1, 2))
    return support_from_values(path, valence, arousal, frame_times)


def support_from_values(path, valence: np.ndarray, arousal: np.ndarray, frame_times: np.ndarray) -> dict:
    half = np.flatnonzero(np.isfinite(valence) != np.isfinite(arousal))
    if len(half):
        i = half[0]
        has, lacks = ("valence", "arousal") if math.isfinite(valence[i]) else ("arousal", "valence")
        raise LabelError(f"{path}: frame {i} (t={frame_times[i]:.3f} s) has {has} but no {lacks}")
    labelled = np.flatnonzero(np.isfinite(valence))
    if not len(labelled):
        raise LabelError(f"{path}: no frame of the video falls where this file has labels (check --video)")
    for name, values in (("valence", valence), ("arousal", arousal)):
        outside = labelled[np.abs(values[labelled]) > 1.0 + 1e-9]
        if len(outside):
            i = outside[0]
            raise LabelError(f"{path}: frame {i} (t={frame_times[i]:.3f} s): {name} {values[i]:.4g} is outside [-1, 1]")
    return {int(i): (float(np.clip(valence[i], -1, 1)), float(np.clip(arousal[i], -1, 1))) for i in labelled}


def write_support_csv(support: dict, frame_times: np.ndarray, out) -> Path:
    """The support CSV `mtclar label --support` takes: frame, timestamp, valence, arousal."""
    lines = ["frame,timestamp,valence,arousal"]
    for frame in sorted(support):
        valence, arousal = support[frame]
        lines.append(f"{frame},{frame_times[frame]:.6f},{_number(valence)},{_number(arousal)}")
    return atomic_write_text(Path(out), "\n".join(lines) + "\n")


def _parse_xml(path: Path) -> ET.Element:
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as err:
        raise InputFileError(path, f"not valid XML: {err}") from None


def nova_pair(path: Path) -> dict[str, tuple[Path, Path]]:
    """The valence and arousal (header, data) files of a NOVA export, from either header, data file or name."""
    name = path.name
    for suffix in (NOVA_DATA_SUFFIX, NOVA_SUFFIX):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    stem = re.sub(r"\.(valence|arousal)$", "", name, flags=re.IGNORECASE)
    return nova_paths(path.with_name(stem))


def read_nova_scheme(header: Path, dimension: str) -> tuple[float, float, float, int]:
    """(rate, min, max, size) of a CONTINUOUS NOVA header; a one-line error for anything else."""
    root = _parse_xml(header)
    info, scheme = root.find("info"), root.find("scheme")
    if root.tag != "annotation" or info is None or scheme is None:
        raise InputFileError(header, "not a NOVA annotation header (expected <annotation> with <info> and <scheme>)")
    if scheme.get("type", "").upper() != "CONTINUOUS":
        raise InputFileError(header, f"scheme type {scheme.get('type')!r}: only CONTINUOUS annotations hold valence/arousal")
    if info.get("ftype", "ASCII").upper() != "ASCII":
        raise InputFileError(header, f"data file type {info.get('ftype')!r} is not supported (save it as ASCII in NOVA)")
    try:
        rate, low, high = (float(scheme.get(key, default)) for key, default in (("sr", ""), ("min", "-1"), ("max", "1")))
        size = int(info.get("size", "-1"))
    except ValueError:
        raise InputFileError(header, "scheme needs numeric sr, min and max attributes") from None
    if not rate > 0 or not high > low:
        raise InputFileError(header, f"scheme {dimension}: needs sr > 0 and max > min (sr={rate}, min={low}, max={high})")
    return rate, low, high, size


def read_nova(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample times, valence, arousal) of a NOVA pair; scores rescaled from the scheme's [min, max] to [-1, 1]."""
    series = {}
    for dimension, (header, data) in nova_pair(path).items():
        if not header.is_file():
            raise InputFileError(header, f"NOVA {dimension} header not found (export both valence and arousal)")
        rate, low, high, size = read_nova_scheme(header, dimension)
        if not data.is_file():
            raise InputFileError(data, "NOVA data file not found (it sits beside its .annotation header)")
        scores = []
        for number, line in enumerate(data.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                scores.append(float(line.split(";")[0]))
            except ValueError:
                raise InputFileError(data, f"line {number}: {line.strip()!r} is not 'score;confidence'") from None
        if size >= 0 and size != len(scores):
            raise InputFileError(data, f"holds {len(scores)} samples but its header says size={size}")
        scores = 2 * (np.asarray(scores, dtype=np.float64) - low) / (high - low) - 1
        check_range(data, dimension, scores, first_line=1, scale=f" (rescaled from [{low:g}, {high:g}])")
        series[dimension] = (np.arange(len(scores)) / rate, scores)
    (times, valence), (other_times, arousal) = series["valence"], series["arousal"]
    if len(other_times) != len(times) or not np.allclose(other_times, times):
        arousal = values_at(other_times, arousal, times)  # two rates: read arousal at valence's samples
    return times, valence, arousal


def read_seconds_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd

    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"cannot parse CSV: {str(err).splitlines()[0]}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("time", *DIMENSIONS) if c not in table.columns]
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(missing)} (needs time,valence,arousal)")
    columns = {c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64) for c in ("time", *DIMENSIONS)}
    bad_time = np.flatnonzero(~np.isfinite(columns["time"]))
    if len(bad_time):
        raise InputFileError(path, f"line {bad_time[0] + 2}: time {table['time'].iloc[bad_time[0]]!r} is not a number of seconds")
    if (np.diff(columns["time"]) <= 0).any():
        line = int(np.flatnonzero(np.diff(columns["time"]) <= 0)[0]) + 3
        raise InputFileError(path, f"line {line}: times must increase")
    for dimension in DIMENSIONS:
        check_range(path, dimension, columns[dimension], first_line=2)
    return columns["time"], columns["valence"], columns["arousal"]


def check_range(path, dimension: str, values: np.ndarray, first_line: int, scale: str = "") -> None:
    """Sample values (NaN = none) must lie in [-1, 1]: a one-line error naming the line of the first that does not."""
    outside = np.flatnonzero(np.abs(values) > 1.0 + 1e-9)
    if len(outside):
        raise LabelError(
            f"{path}: line {outside[0] + first_line}: {dimension} {values[outside[0]]:.4g}{scale} is outside [-1, 1]"
        )


def read_elan(path: Path, frame_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame values of the valence and arousal tiers: a frame takes the annotation its time falls in."""
    root = _parse_xml(path)
    if root.tag != "ANNOTATION_DOCUMENT":
        raise InputFileError(path, "not an ELAN document (expected <ANNOTATION_DOCUMENT>)")
    units = (root.find("HEADER").get("TIME_UNITS", "milliseconds") if root.find("HEADER") is not None else "milliseconds")
    if units != "milliseconds":
        raise InputFileError(path, f"TIME_UNITS {units!r} is not supported (milliseconds)")
    slots = {}
    for slot in root.iter("TIME_SLOT"):
        if slot.get("TIME_VALUE") is not None:
            slots[slot.get("TIME_SLOT_ID")] = int(slot.get("TIME_VALUE"))
    tiers = {tier.get("TIER_ID", "").strip().lower(): tier for tier in root.iter("TIER")}
    frame_ms = _milliseconds(frame_times)
    values = []
    for dimension in DIMENSIONS:
        tier = tiers.get(dimension)
        if tier is None:
            names = ", ".join(sorted(t for t in tiers if t)) or "none"
            raise InputFileError(path, f"no tier named {dimension} (tiers: {names})")
        column = np.full(len(frame_times), np.nan)
        for annotation in tier.iter("ALIGNABLE_ANNOTATION"):
            ident = annotation.get("ANNOTATION_ID", "?")
            start, end = slots.get(annotation.get("TIME_SLOT_REF1")), slots.get(annotation.get("TIME_SLOT_REF2"))
            if start is None or end is None:
                raise InputFileError(path, f"annotation {ident} on tier {dimension}: a time slot without a time")
            text = (annotation.findtext("ANNOTATION_VALUE") or "").strip()
            try:
                value = float(text)
            except ValueError:
                raise InputFileError(path, f"annotation {ident} on tier {dimension}: {text!r} is not a number") from None
            column[(frame_ms >= start) & (frame_ms < end)] = value
        values.append(column)
    return values[0], values[1]


def read_afew_va(path: Path, num_frames: int, frame_names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame values of an AFEW-VA clip JSON, read as `mtclar label --labels` reads one
    (`video.read_afew_annotation`); frames are found by name in a frame folder, by number in a video."""
    if not path.is_file():
        raise InputFileError(path, "file not found")
    index = {name: i for i, name in enumerate(frame_names)} if frame_names is not None else None
    valence, arousal = np.full(num_frames, np.nan), np.full(num_frames, np.nan)
    for name, entry in read_afew_annotation(path)["frames"].items():
        frame = index.get(name) if index is not None else int(name) if name.isdigit() else None
        if frame is None or not 0 <= frame < num_frames:
            raise InputFileError(path, f"frame {name!r} is not a frame of the video (0-{num_frames - 1})")
        valence[frame], arousal[frame] = entry["valence"], entry["arousal"]
    return valence, arousal

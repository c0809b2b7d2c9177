"""An annotator's work on a video, kept between sessions: the support table, its per-video store, browser previews.

What the demo (and any other front end) needs beyond the labeller itself:

* the support table the user edits, as rows {frame: (valence, arousal)} with NaN for frames suggested but not
  labelled yet (`rows_from_table`, `table_from_rows`); it is checked by `support.split_support_table`;
* `SupportStore`: support labels saved per video, keyed by the SHA-256 of the video file, in a folder
  that outlives a page reload (and the server, when the folder is given);
* a VP9/WebM preview of a video the browser cannot play (HEVC, ProRes, ...), from a downscaled copy
  (`needs_browser_preview`, `write_browser_preview`); frame numbers stay the original's, which the
  labeller keeps reading;
* what the model's provenance says about the faces it knows (`provenance_note`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..io_utils import atomic_write_text
from .support import parse_cell, read_support_rows, support_table, write_support_csv

TABLE_COLUMNS = ["frame", "valence", "arousal"]
# Codecs browsers play in <video>; HEVC (phones' default) and ProRes are not among them in Chromium. Previews are
# written as VP9, which every Chromium build decodes (H.264 is missing from builds without proprietary codecs).
BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}
BROWSER_CONTAINERS = {".webm", ".mp4", ".m4v", ".mkv"}
PREVIEW_SIDE = 480
SYNTHETIC_WARNING = "this model was trained on synthetic faces; real faces will not be labelled meaningfully"


# ---------------------------------------------------------------------------------------------------------------
# The support table


def empty_support_table():
    return support_table({})


def skipped_note(unlabelled: list[int]) -> str:
    """"frames 96, 119 have no labels yet: skipped" (empty when none were)."""
    if not unlabelled:
        return ""
    shown = ", ".join(str(f) for f in unlabelled[:12]) + (", ..." if len(unlabelled) > 12 else "")
    return f"frame{'s' if len(unlabelled) > 1 else ''} {shown} {'have' if len(unlabelled) > 1 else 'has'} no labels yet: skipped"


def _number(value) -> float:
    """A table cell as a float, NaN when empty or not a number: for editing, not checking."""
    value = parse_cell(value)
    return value if isinstance(value, float) else math.nan


def rows_from_table(table) -> dict[int, tuple[float, float]]:
    """Every row with a frame, labels or not (NaN): for editing, not labelling."""
    import pandas as pd

    if table is None:
        return {}
    table = pd.DataFrame(table)
    table.columns = [str(c).strip().lower() for c in table.columns]
    if table.empty or not set(TABLE_COLUMNS) <= set(table.columns):
        return {}
    rows = {}
    for frame, valence, arousal in table[TABLE_COLUMNS].itertuples(index=False):
        frame = _number(frame)
        if not math.isnan(frame):
            rows[int(frame)] = (_number(valence), _number(arousal))
    return rows


def table_from_rows(rows: dict[int, tuple[float, float]]):
    """A support table sorted by frame, labels to 3 decimals; NaN labels stay empty cells for the user to fill in."""
    return support_table(dict(sorted(rows.items()))).round({"valence": 3, "arousal": 3})


# ---------------------------------------------------------------------------------------------------------------
# Work kept per video


class SupportStore:
    """Support rows per video, keyed by the video file's SHA-256: `folder/<digest>.csv` (+ `.json` naming it).

    The same video uploaded again (after a page reload, or under another name) finds its labels.
    """

    def __init__(self, folder):
        self.folder = Path(folder)

    def _paths(self, digest: str) -> tuple[Path, Path]:
        if not digest or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
        return self.folder / f"{digest}.csv", self.folder / f"{digest}.json"

    def save(self, digest: str, rows: dict, video_name: str = "") -> None:
        """Keep `rows`; nothing is written when they are what is kept already (the table also changes when a
        video's kept rows are put back into it, and when a new video starts with an empty table)."""
        if rows == self.load(digest):
            return
        table, about = self._paths(digest)
        write_support_csv(rows, table)
        atomic_write_text(about, json.dumps({"video": video_name, "frames": len(rows)}) + "\n")

    def load(self, digest: str) -> dict[int, tuple[float, float]]:
        table, _ = self._paths(digest)
        if not table.is_file():
            return {}
        try:
            return read_support_rows(table)
        except InputFileError:
            return {}  # a damaged store file must not stop the video from loading

    def video_name(self, digest: str) -> str:
        _, about = self._paths(digest)
        try:
            return str(json.loads(about.read_text()).get("video", ""))
        except (OSError, ValueError, AttributeError):
            return ""


# ---------------------------------------------------------------------------------------------------------------
# A preview the browser can play


def needs_browser_preview(path) -> bool:
    """Whether a browser's <video> may fail on this file: a codec or container outside what every Chromium plays."""
    from .video import probe_video

    info = probe_video(path)
    return info.codec not in BROWSER_CODECS or Path(path).suffix.lower() not in BROWSER_CONTAINERS


def write_browser_preview(path, out, max_side: int = PREVIEW_SIDE) -> Path:
    """A VP9/WebM copy of `path`, downscaled to at most `max_side` pixels, keeping every frame's own time.

    Only for watching: the labeller keeps reading the original, so frame numbers are the original's.
    """
    from PIL import Image

    from .video import iter_video_frames, write_video

    frames = iter_video_frames(path)
    times = []

    def scaled():
        for frame in frames:
            times.append(frame.timestamp)
            image = Image.fromarray(frame.image)
            scale = min(1.0, max_side / max(image.size))
            if scale < 1.0:
                image = image.resize((max(2, round(image.width * scale)), max(2, round(image.height * scale))),
                                     Image.BILINEAR)
            yield np.asarray(image)

    def timestamps():
        while True:  # each frame's time is known once `scaled` has yielded it
            yield times[-1]

    return write_video(scaled(), Path(out).with_suffix(".webm"), codec="libvpx-vp9", timestamps=timestamps(), crf=40)


# ---------------------------------------------------------------------------------------------------------------
# What the model knows


def provenance_note(model) -> tuple[str, str]:
    """("synthetic" | "unknown" | "real", a sentence for the user) from `model.config.provenance`.

    Provenance is a dict like {"dataset": "SynthAffect", "synthetic": True}, or None when not recorded.
    """
    provenance = getattr(getattr(model, "config", None), "provenance", None)
    if not isinstance(provenance, dict):
        return "unknown", "This model does not say what data it was trained on; judge its labels on a few frames first."
    dataset = str(provenance.get("dataset") or "an unnamed dataset")
    if provenance.get("synthetic"):
        return "synthetic", f"Trained on {dataset}: {SYNTHETIC_WARNING}."
    return "real", f"Trained on {dataset} (real faces)."


def read_labels_upload(path, num_frames: int):
    """A labels table downloaded earlier for this video (`mtclar label`'s columns) as a DataFrame, checked: every
    frame once, values in range, and as many frames as the video has."""
    from .formats import labels_from_table, read_table

    table = read_table(path)
    labels = labels_from_table(table, source=str(path))
    missing = [column for column in ("face_found", "is_support") if column not in table.columns]
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(missing)}: expected a labels table of this demo")
    if labels.num_frames != num_frames:
        raise InputFileError(path, f"labels {labels.num_frames} frames, but this video has {num_frames}")
    return table.sort_values("frame").reset_index(drop=True)

"""The labelled table: its rows and columns (`output_table`), as files (.csv, .parquet, .json) and as figures;
and reading the small CSV tables a user writes (support frames, labels, actors) with one-line errors.

The CLI's `--plot`, the quickstart's figure and the demo's plots all draw through these functions, so a
labelled video looks the same wherever it is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, InputFileError
from .faces import NUM_LANDMARKS

if TYPE_CHECKING:
    from .labeler import EncodedVideo

TABLE_FORMATS = (".csv", ".parquet", ".json")
OUTPUT_COLUMNS = (
    "frame",
    "timestamp",
    "valence",
    "arousal",
    "face_found",
    "is_support",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "uncertainty",
)
LANDMARK_COLUMNS = tuple(f"lm{i}_{axis}" for i in range(NUM_LANDMARKS) for axis in ("x", "y"))
DEFAULT_LABEL_RANGE = (-1.0, 1.0)


def output_table(encoded: EncodedVideo, valence, arousal, is_support, landmarks: bool, uncertainty):
    """One row per frame (`OUTPUT_COLUMNS`, then `LANDMARK_COLUMNS` when `landmarks`)."""
    import pandas as pd

    boxes = encoded.boxes
    table = pd.DataFrame(
        {
            "frame": np.arange(encoded.num_frames),
            "timestamp": encoded.timestamps,
            "valence": valence,
            "arousal": arousal,
            "face_found": encoded.face_found,
            "is_support": is_support,
            "box_x": boxes[:, 0],
            "box_y": boxes[:, 1],
            "box_w": boxes[:, 2],
            "box_h": boxes[:, 3],
            "uncertainty": uncertainty,
        },
        columns=list(OUTPUT_COLUMNS),
    )
    if landmarks:
        points = encoded.landmarks_or_nan().reshape(encoded.num_frames, -1)
        table = pd.concat([table, pd.DataFrame(points, columns=list(LANDMARK_COLUMNS))], axis=1)
    return table


def check_table_path(path) -> str:
    """The table format of `path` (its suffix), or a one-line error naming it; its folder must be writable."""
    from ..io_utils import check_writable

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise ConfigError(f"--out {path}: unknown format {suffix or '(none)'} (use {', '.join(TABLE_FORMATS)})")
    check_writable(path)
    return suffix


def write_table(table, path) -> Path:
    """A DataFrame to .csv, .parquet or .json (records) by extension, atomically."""
    from ..io_utils import atomic_path

    path = Path(path)
    suffix = check_table_path(path)
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            table.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_json(tmp, orient="records", indent=2)
    return path


def read_csv_table(path, what: str, columns: tuple[str, ...], dtype=None):
    """A CSV with `columns` (header names trimmed, any case; others kept) as a DataFrame; `what` names it in the
    one-line errors for a missing, empty or unparsable file, or a missing column."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, f"{what} not found")
    try:
        table = pd.read_csv(path, dtype=dtype) if path.stat().st_size else None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"cannot parse CSV: {err}") from None
    needed = ",".join(columns)
    if table is None:
        raise InputFileError(path, f"empty {what} (needs columns {needed})")
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(missing)} (needs {needed})")
    return table


def _padded(label_range) -> tuple[float, float]:
    low, high = label_range
    pad = 0.025 * (high - low)
    return low - pad, high + pad


def timeline_figure(table, title: str = "", truth=None, label_range=DEFAULT_LABEL_RANGE, size=(10, 5)):
    """Valence and arousal against time, support frames marked; `truth` ({"valence": array, "arousal": array}
    or a table with `true_valence` / `true_arousal` columns) is drawn dashed when known."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    axes = figure.subplots(2, 1, sharex=True)
    support = table[table["is_support"]]
    for axis, column, colour in zip(axes, ("valence", "arousal"), ("tab:blue", "tab:orange")):
        known = truth[column][: len(table)] if truth is not None else table.get(f"true_{column}")
        if known is not None:
            axis.plot(table["timestamp"], known, lw=1.0, ls="--", color="grey", label="ground truth")
        axis.plot(table["timestamp"], table[column], lw=1.4, color=colour, label=column)
        axis.scatter(support["timestamp"], support[column], color="tab:red", s=22, zorder=3, label="support (labelled)")
        axis.set_ylim(*_padded(label_range))
        axis.set_ylabel(column)
        axis.axhline(0, color="grey", lw=0.5)
        axis.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[1].set_xlabel("time (s)")
    if title:
        axes[0].set_title(title)
    figure.tight_layout()
    return figure


def circumplex_figure(table, label_range=DEFAULT_LABEL_RANGE):
    """Every labelled frame on the valence-arousal plane, coloured by time; support frames ringed in red."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    figure = Figure(figsize=(4.0, 4.0), dpi=100)
    axis = figure.subplots()
    low, high = label_range
    axis.add_patch(Circle(((low + high) / 2, (low + high) / 2), (high - low) / 2, fill=False, color="grey", lw=0.8))
    axis.axhline(0, color="grey", lw=0.5)
    axis.axvline(0, color="grey", lw=0.5)
    points = axis.scatter(table["valence"], table["arousal"], c=table["timestamp"], cmap="viridis", s=14)
    support = table[table["is_support"]]
    axis.scatter(support["valence"], support["arousal"], facecolors="none", edgecolors="tab:red", s=70, lw=1.5, label="support")
    figure.colorbar(points, ax=axis, label="time (s)", fraction=0.046, pad=0.04)
    axis.set_xlim(*_padded(label_range))
    axis.set_ylim(*_padded(label_range))
    axis.set_aspect("equal")
    axis.set_xlabel("valence")
    axis.set_ylabel("arousal")
    axis.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    return figure


def plot_labels(table, path, title: str = "", label_range=DEFAULT_LABEL_RANGE) -> Path:
    """The timeline figure to a PNG, atomically."""
    from ..io_utils import atomic_path

    figure = timeline_figure(table, title=title, label_range=label_range)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return Path(path)

"""What a labelled video's `<stem>.summary.json` says: how its labels were made and how far to trust them.

Written beside the label table (`labels.csv` -> `labels.summary.json`) before it, so that a table on disk
always has its summary. It holds the mode `auto` chose and its estimated RMSE, the model (folder or Hub id,
revision, weights' SHA-256, what it was trained on), the package version, the crop convention and the support
set.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from ..io_utils import atomic_write_text
from .auto import describe_auto


def summary_path(table_path) -> Path:
    """`labels.csv` -> `labels.summary.json`."""
    table_path = Path(table_path)
    return table_path.with_name(f"{table_path.stem}.summary.json")


def _model_folder(model_path, model) -> Path | None:
    """The local folder holding the weights: the given folder, or a Hub id's snapshot in the cache."""
    if Path(model_path).is_dir():
        return Path(model_path)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(str(model_path), "config.json", revision=getattr(model.config, "_commit_hash", None))
    return Path(cached).parent if isinstance(cached, str) else None


def model_record(model_path, model, processor) -> dict:
    """The model's identity and the crop it expects: the same for every video a run labels."""
    from .. import __version__
    from ..hub.push import weights_digest

    folder = _model_folder(model_path, model)
    return {
        "model": str(model_path),
        "revision": getattr(model.config, "_commit_hash", None),
        "weights_sha256": weights_digest(folder) if folder is not None else None,
        "provenance": getattr(model.config, "provenance", None),
        "package_version": __version__,
        "crop": {
            "face_box_source": getattr(processor, "face_box_source", None),
            "face_margin": getattr(processor, "face_margin", None),
            "resize_size": getattr(processor, "resize_size", None),
            "crop_size": getattr(processor, "crop_size", None),
        },
    }


def faces_description(detector) -> str:
    """How a labeller's crops were found, for the summary: given crops, or its detector's boxes refined by
    predicted landmarks."""
    if detector is None:
        return "given crops (--no-detect)"
    name = getattr(detector, "name", type(detector).__name__)
    return f"{name} detector -> 68 predicted landmarks (where a frame folder has none of its own)"


def _finite(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def video_summary(source, table, support: dict, model: dict, faces: str) -> dict:
    """The summary of one labelled video (`table` from `FewShotVideoLabeler.label` or `label_without_support`)."""
    labelling = table.attrs.get("labelling", {})
    anchors = set(labelling.get("anchors", []))
    auto = labelling.get("auto")
    return {
        "video": str(source),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "frames": int(len(table)),
        "faces_found": int(table["face_found"].sum()),
        "faces": faces,
        "anchor_mode": labelling.get("anchor_mode", "single-image (no support)"),
        "auto": auto,
        "estimated_rmse": None if not auto else auto["estimated"],
        "support": [
            {"frame": int(frame), "valence": float(v), "arousal": float(a), "anchor": int(frame) in anchors}
            for frame, (v, a) in sorted(support.items())
        ],
        "mean_uncertainty": _finite(float(table["uncertainty"].mean())) if table["uncertainty"].notna().any() else None,
        **model,
    }


def write_summary(summary: dict, table_path) -> Path:
    path = summary_path(table_path)
    atomic_write_text(path, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return path


def estimate_line(summary: dict) -> str:
    """One line: the video, the mode used and its estimated RMSE."""
    auto, estimated = summary.get("auto"), summary.get("estimated_rmse")
    if auto is None:
        return f"{summary['video']}: anchor mode {summary['anchor_mode']} (no estimate: choose auto to check the labels)"
    chosen = describe_auto(auto)
    if estimated is None:
        return f"{summary['video']}: auto used {chosen} (fewer than 3 anchors: no estimate)"
    return (
        f"{summary['video']}: auto chose {chosen}; estimated RMSE valence {estimated['valence_rmse']:.3f}, "
        f"arousal {estimated['arousal_rmse']:.3f}"
    )


def worst_first(summaries: list[dict]) -> list[dict]:
    """Videos by estimated RMSE (valence + arousal), worst first; those without an estimate last."""

    def badness(summary):
        estimated = summary.get("estimated_rmse")
        return -(estimated["valence_rmse"] + estimated["arousal_rmse"]) if estimated else math.inf

    return sorted(summaries, key=badness)

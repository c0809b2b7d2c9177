"""The few-shot protocol run on the data a user names: what `mtclar evaluate` and `mtclar calibrate` do.

The data is AFEW-VA (a raw folder, or a dataset prepared by `mtclar prepare afew-va`, optionally one fold of
it) or a folder of the user's own labelled videos (`own_videos`). It is read and checked before any model
loads. The protocol itself is `evaluation`; this module picks its inputs, runs it, and says the report in a
few lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InputFileError
from .anchors import AUTO_MODE, available_modes
from .calibration import CALIBRATION_SPACINGS, calibrate_model_folder
from .evaluation import Protocol, evaluate_afew_va, skipped_summary
from .video import DEFAULT_FOLDER_FPS

# The anchor modes scored when none are asked for (with `auto`, and where the model offers them).
REPORTED_MODES = ("latest", "fused", "offset")


@dataclass
class EvaluationData:
    """What an evaluation scores: AFEW-VA clips (`kind="afew-va"`) or labelled videos (`kind="videos"`), how
    their faces are cropped ("landmarks" or "detector"), and how the report names the data."""

    kind: str
    items: list
    faces: str
    source: str | dict


def afew_va_clips(path, fold: int | None = None, fold_by: str = "actor") -> list:
    """Clips of a raw AFEW-VA folder or of a prepared dataset (`mtclar prepare afew-va`), optionally one fold."""
    from ..data.afew_va import iter_prepared_clips, load_afew_va_clips

    path = Path(path)
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        dataset = loaded["train"] if isinstance(loaded, datasets.DatasetDict) else loaded
        if fold is not None:
            column = f"fold_{fold_by}"
            if column not in dataset.column_names:
                raise InputFileError(path, f"prepared dataset has no {column} column")
            keep = [i for i, value in enumerate(dataset[column]) if value == fold]
            if not keep:
                raise ConfigError(f"--fold {fold}: no frames in fold {fold} of {column}")
            dataset = dataset.select(keep)
        return list(iter_prepared_clips(dataset))
    if fold is not None:
        raise ConfigError("--fold needs a prepared dataset (`mtclar prepare afew-va`); a raw folder has no folds")
    return list(load_afew_va_clips(path))


def evaluation_data(
    *,
    afew_va=None,
    videos=None,
    labels=None,
    actors=None,
    faces: str | None = None,
    fold: int | None = None,
    fold_by: str = "actor",
    limit: int | None = None,
    label_range=None,
) -> EvaluationData:
    """The clips of `afew_va`, or the videos of `videos` with their label CSVs (in `labels`, by default beside
    them) and who is in them (`actors` CSV), read and checked (labels in `label_range`, the model's); the first `limit` of them. AFEW-VA is cropped
    around its landmarks unless `faces="detector"`; videos always go through the detector."""
    if videos is None:
        for flag, value in (("--labels", labels), ("--actors", actors)):
            if value is not None:
                raise ConfigError(f"{flag} goes with --videos")
        if afew_va is None:
            raise ConfigError("give AFEW-VA clips (--afew-va) or your own labelled videos (--videos)")
        data = Path(afew_va)
        if not data.exists():
            raise InputFileError(data, "AFEW-VA folder not found")
        clips = afew_va_clips(data, fold, fold_by)
        return EvaluationData("afew-va", clips[:limit] if limit is not None else clips, faces or "landmarks", str(afew_va))
    from .own_videos import list_labelled_videos, read_actors_csv

    if faces == "landmarks":
        raise ConfigError("--faces landmarks needs AFEW-VA landmarks; videos go through the face detector")
    if fold is not None:
        raise ConfigError("--fold applies to a prepared AFEW-VA dataset, not to --videos")
    found = list_labelled_videos(videos, labels, read_actors_csv(actors) if actors is not None else None, label_range)
    source = {"videos": str(videos), "labels": str(labels or videos)}
    return EvaluationData("videos", found[:limit] if limit is not None else found, "detector", source)


def default_evaluation_modes(model) -> list[str]:
    """`auto` and those of `REPORTED_MODES` the model offers."""
    return [AUTO_MODE] + [mode for mode in REPORTED_MODES if mode in available_modes(model)]


def evaluate_data(
    labeler,
    data: EvaluationData,
    protocol: Protocol,
    *,
    model_name: str,
    fps: float = DEFAULT_FOLDER_FPS,
    progress: bool = False,
) -> dict:
    """The report of `mtclar evaluate`: the model and data named, the faces path, then the protocol's report."""
    from .own_videos import evaluate_videos

    if data.kind == "afew-va":
        report = evaluate_afew_va(labeler, data.items, protocol, fps=fps, progress=progress, faces=data.faces)
    else:
        report = evaluate_videos(labeler, data.items, protocol, progress=progress)
    return {"model": str(model_name), "data": data.source, "faces": data.faces, **report}


def summary_lines(report: dict) -> list[str]:
    """The report in a few lines: per anchor source, the pooled CCC and RMSE of every mode."""
    lines = []
    for source in ("same_video", "cross_actor"):
        section = report.get(source)
        if not section:
            continue
        if not section["num_videos"]:
            lines.append(f"{source}: no video had a face in a support frame: nothing to score")
            continue
        lines.append(
            f"{source}: {section['num_videos']} videos, support {section['support_fraction']:.1%} of frames (pooled over query frames)"
        )
        for mode, values in section["pooled"].items():
            cells = "  ".join(
                f"{key} {values[key]:.3f}" if values[key] is not None else f"{key} n/a"
                for key in ("valence_ccc", "arousal_ccc", "valence_rmse", "arousal_rmse")
            )
            lines.append(f"  {mode:<12} {cells}")
        skipped = skipped_summary(section)
        if skipped:
            lines.append(f"  {skipped}")
    return lines


def calibrate_on_folder(
    model_dir,
    afew_va,
    *,
    fold: int | None = None,
    fold_by: str = "actor",
    spacings=CALIBRATION_SPACINGS,
    device=None,
    progress: bool = False,
):
    """Calibrate labelling on the validation clips of `afew_va` and store it in the local model folder `model_dir`:
    (`AutoSettings`, measurements), as `calibration.calibrate_model_folder` gives them."""
    from .loading import load_model_and_processor

    data, model_dir = Path(afew_va), Path(model_dir)
    if not data.exists():
        raise InputFileError(data, "AFEW-VA folder not found")
    if not model_dir.is_dir():
        raise InputFileError(model_dir, "calibration is stored in the model folder: give a local folder")
    model, processor = load_model_and_processor(model_dir, device=device)
    raw_clips = afew_va_clips(data, fold, fold_by)
    if not raw_clips:
        raise InputFileError(data, "no clip to calibrate on")
    return calibrate_model_folder(
        model_dir, model, processor, raw_clips, f"{{num_clips}} clips of {data}", spacings, progress
    )

"""Labelling to files: one video or frame folder to a label table and its summary, or every video of a folder.

`label_source` is what `mtclar label SOURCE --out TABLE` does: encode the source, take its support set (the
user's CSV, or frames a strategy picks from a frame folder's annotation), label every frame, then write the
plot, the summary and the table, each atomically and the table last. `label_folder` does that for every video
of a folder: under `accelerate launch` each process takes its share, finished outputs are skipped on `resume`,
a video that fails is reported and the others go on, and the videos are listed by estimated error, worst first.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputFileError, MTCLARError
from .anchors import label_range
from .loading import load_model_and_processor, make_labeler
from .summary import estimate_line, faces_description, model_record, video_summary, worst_first, write_summary
from .support import read_support_csv, select_support
from .tables import TABLE_FORMATS, check_table_path, plot_labels, write_table
from .video import (
    DEFAULT_FOLDER_FPS,
    check_unique_stems,
    find_afew_annotation,
    list_video_files,
    read_afew_annotation,
)

logger = logging.getLogger(__name__)


@dataclass
class LabelOptions:
    """How each source is labelled.

    The support set comes from `support` (a CSV `frame,valence,arousal`, or a folder of `<source stem>.csv`), or
    `strategy` (with `k`, `budget`, `seed`, see `select_support`) picks it from the ground truth of a frame
    folder (`labels`: its AFEW-VA JSON; by default the one in the folder); `no_support` labels with the SL
    head's own predictions instead. `anchor`, `anchor_options` (max_anchors, time_scale,
    similarity_temperature), `strict` and `landmarks` are those of `FewShotVideoLabeler.label`; `fps` is a
    frame folder's frame rate.
    """

    support: str | Path | None = None
    strategy: str | None = None
    k: int = 20
    budget: float = 0.06
    seed: int = 0
    labels: str | Path | None = None
    no_support: bool = False
    anchor: str | None = None
    anchor_options: dict = field(default_factory=dict)
    strict: bool = False
    landmarks: bool = False
    fps: float = DEFAULT_FOLDER_FPS


@dataclass
class BatchResult:
    """What one process of a batch did: videos labelled, skipped as already done, and those that failed."""

    labelled: int
    already_done: int
    failed: list[str]
    process_index: int = 0
    num_processes: int = 1


def support_for(source: Path, encoded, annotation, options: LabelOptions, label_range) -> dict:
    """The support set of one source: the user's CSV (or CSV folder), with labels in `label_range`, or frames
    picked from the annotation."""
    if options.support is not None:
        support_path = Path(options.support)
        if support_path.is_dir():
            support_path = support_path / f"{source.stem if source.is_file() else source.name}.csv"
        return read_support_csv(support_path, video=source.name, label_range=label_range)
    if annotation is None:
        raise ConfigError(
            f"{source}: --strategy needs ground-truth labels (--labels AFEW_JSON or a frame folder with its JSON); "
            "for an unlabelled video, run `mtclar suggest` and pass the filled CSV with --support"
        )
    frames = [annotation["frames"].get(name) for name in (encoded.frame_names or [])]
    if not frames or any(entry is None for entry in frames):
        raise ConfigError(f"{source}: the annotation does not label every frame, so --strategy cannot pick from it")
    chosen = select_support(
        options.strategy,
        encoded.face_found,
        k=options.k,
        budget=options.budget,
        seed=options.seed,
        embeddings=encoded.embeddings,
    )
    return {i: (frames[i]["valence"], frames[i]["arousal"]) for i in chosen}


def label_source(
    labeler, source, out, options: LabelOptions, *, model_info: dict, plot=None, progress: bool = False
) -> dict:
    """Label one video or frame folder into the table `out` (.csv/.parquet/.json), with `<out stem>.summary.json`
    beside it and optionally a `plot` PNG; returns the summary. `model_info` is `summary.model_record(...)`."""
    source, out = Path(source), Path(out)
    check_table_path(out)  # before the work, and before the summary that goes beside the table
    annotation = None
    if source.is_dir():
        labels = Path(options.labels) if options.labels else find_afew_annotation(source)
        annotation = read_afew_annotation(labels) if labels else None
    elif options.labels:
        raise ConfigError("--labels (an AFEW-VA JSON) applies to a frame folder, not to a video file")
    encoded = labeler.encode(source, fps=options.fps, annotation=annotation, progress=progress)
    if options.no_support:
        support, table = {}, labeler.label_without_support(encoded, landmarks=options.landmarks)
    else:
        support = support_for(source, encoded, annotation, options, label_range(labeler.model))
        table = labeler.label(
            encoded,
            support,
            anchor=options.anchor,
            strict=options.strict,
            landmarks=options.landmarks,
            **options.anchor_options,
        )
    if encoded.frame_names is not None:
        table.insert(1, "frame_name", encoded.frame_names)
    summary = video_summary(source, table, support, model_info, faces=faces_description(labeler.detector))
    # Plot and summary before the table: in a batch, an existing table means this video is finished.
    if plot is not None:
        plot_labels(table, plot, title=source.name, label_range=label_range(labeler.model))
    write_summary(summary, out)
    write_table(table, out)
    found = int(encoded.face_found.sum())
    print(f"{source}: {encoded.num_frames} frames, face in {found}, {len(support)} support -> {out}", file=sys.stderr)
    print(estimate_line(summary), file=sys.stderr)
    return summary


def batch_outputs(videos: list[Path], out_dir, table_format: str = "csv", plot_dir=None) -> dict:
    """Each video's output table (and plot) in the batch's output folder: {video: (table, plot or None)}."""
    out_dir = Path(out_dir)
    return {
        video: (out_dir / f"{video.stem}.{table_format}", Path(plot_dir) / f"{video.stem}.png" if plot_dir else None)
        for video in videos
    }


def videos_to_label(outputs: dict, resume: bool = False, overwrite: bool = False) -> list[Path]:
    """The videos still to do: finished outputs are never redone silently (`resume` skips, `overwrite` redoes)."""
    finished = [video for video, (out, _) in outputs.items() if out.exists()]
    if not finished or overwrite:
        return list(outputs)
    if not resume:
        raise InputFileError(
            outputs[finished[0]][0],
            f"already exists ({len(finished)} of {len(outputs)} outputs do): pass --resume to skip finished videos "
            "or --overwrite to label them again",
        )
    print(f"mtclar label: --resume: {len(finished)} of {len(outputs)} video(s) already done, skipped", file=sys.stderr)
    return [video for video in outputs if video not in finished]


def label_folder(
    folder,
    out_dir,
    model_path,
    options: LabelOptions,
    *,
    labeler_options: dict | None = None,
    device=None,
    table_format: str = "csv",
    plot_dir=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> BatchResult:
    """Label every video of `folder` into `out_dir` (`<stem>.<table_format>` and its summary, plots in
    `plot_dir`); under `accelerate launch` each process loads the model and takes its share of the videos.

    A video that fails is reported and skipped: the batch goes on, and the result lists it. Each output is
    written atomically when its video is done, so an interrupted batch loses at most the video in progress;
    `resume` then skips the finished ones. `labeler_options` are `make_labeler`'s keyword arguments.
    """
    import torch
    from accelerate import PartialState
    from tqdm.auto import tqdm

    folder = Path(folder)
    videos = list_video_files(folder)
    if not videos:
        raise InputFileError(folder, "no video files (or image frames) in this folder")
    check_unique_stems(folder, videos, "their outputs would collide")
    if Path(out_dir).suffix.lower() in TABLE_FORMATS:
        raise ConfigError(f"--out {out_dir}: labelling a folder of videos needs an output FOLDER")
    if resume and overwrite:
        raise ConfigError("use either --resume or --overwrite, not both")

    # Without a GPU, accelerate only forms a (gloo) process group when told it runs on the CPU.
    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    outputs = batch_outputs(videos, out_dir, table_format, plot_dir)
    todo = videos_to_label(outputs, resume, overwrite)
    state.wait_for_everyone()  # every process has listed what is done before any of them writes
    model, processor = load_model_and_processor(model_path, device=device or state.device)
    labeler = make_labeler(model, processor, model_path=model_path, device=device, **(labeler_options or {}))
    model_info = model_record(model_path, model, processor)
    failures, summaries = [], []
    with state.split_between_processes(todo) as mine:
        for video in tqdm(mine, desc=f"videos (process {state.process_index})", unit="video", disable=not progress):
            out, plot = outputs[video]
            try:
                summaries.append(label_source(labeler, video, out, options, model_info=model_info, plot=plot))
            except MTCLARError as err:  # one bad video must not stop the batch
                print(f"mtclar label: error: {err}", file=sys.stderr)
                failures.append(video.name)
            except Exception:  # a bug, not bad input: keep its traceback, but finish the other videos
                logger.exception("%s: unexpected error while labelling", video)
                failures.append(video.name)
    print_estimates_worst_first(state, summaries)
    return BatchResult(
        labelled=len(mine) - len(failures),
        already_done=len(videos) - len(todo),
        failed=failures,
        process_index=state.process_index,
        num_processes=state.num_processes,
    )


def print_estimates_worst_first(state, summaries: list[dict]) -> None:
    """Every process's videos, one line each, worst estimated error first, printed once by the main process."""
    from accelerate.utils import gather_object

    gathered = gather_object(summaries) if state.num_processes > 1 else summaries
    if state.is_main_process and gathered:
        print("mtclar label: videos by estimated error, worst first:", file=sys.stderr)
        for summary in worst_first(gathered):
            print("  " + estimate_line(summary), file=sys.stderr)

"""`mtclar label`, `mtclar suggest` and `mtclar evaluate`.

    mtclar label VIDEO --model M --support SUPPORT.csv --out OUT.csv [--anchor fused] [--plot OUT.png]
    mtclar label FRAME_FOLDER --model M --labels CLIP.json --strategy every-k --out OUT.parquet
    mtclar label VIDEO_DIR --model M --support SUPPORT_DIR --out OUT_DIR      # a batch; shares out
                                                                              # over `accelerate launch` processes
    mtclar suggest VIDEO --model M --budget 0.06 --out support.csv            # which frames to label first
    mtclar evaluate --model M --afew-va DIR --anchor latest fused --out metrics.json

Models load with the class their config names (`MTCLARModel` or `MTCLARForAffectPrediction`), never
through trust_remote_code on a user's folder, and `MTCLARImageProcessor.from_pretrained(M)`. Heavy imports live inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..errors import ConfigError, InputFileError, MTCLARError
from .loading import load_model_and_processor
from .tables import TABLE_FORMATS, check_table_path, plot_labels, write_table

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# Shared pieces


def make_encoder(args):
    """The encoder of `--backend`: None for PyTorch (the labeller's default), onnxruntime on the model's export."""
    if getattr(args, "backend", "torch") != "onnx":
        return None
    if getattr(args, "compile", False):
        raise ConfigError("--compile applies to the torch backend, not to --backend onnx")
    from ..export.onnx_export import onnx_encoder_for

    return onnx_encoder_for(args.model, device=args.device)


def make_labeler(args, model, processor):
    from .faces import parse_follow
    from .labeler import FewShotVideoLabeler

    return FewShotVideoLabeler(
        model,
        processor,
        detector=None if args.no_detect else args.detector,
        batch_size=args.batch_size,
        follow=parse_follow(args.follow),
        detector_scale=args.detector_scale,
        box_smoothing=args.box_smoothing,
        face_workers=getattr(args, "face_workers", None),
        compile=getattr(args, "compile", False),
        encoder=make_encoder(args),
    )


def show_progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _add_model_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="saved MT-CLAR model folder (or a cached Hub id)")
    parser.add_argument(
        "--device", default=None, help="torch device (default: the accelerate process's device, else CPU)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="frames per encoder batch (default 64)")
    parser.add_argument(
        "--face-workers", type=int, default=None, help="threads for face finding (default: one per core, at most 8)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the encoder: pays a compile up front, for long videos"
    )
    parser.add_argument(
        "--backend",
        default="torch",
        choices=("torch", "onnx"),
        help="encoder runtime: PyTorch, or onnxruntime on MODEL/onnx (exported there first when missing)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_face_arguments(parser) -> None:
    from .faces import DEFAULT_DETECTOR, DETECTORS

    parser.add_argument(
        "--no-detect",
        action="store_true",
        help="frames are already face crops, cut as the model's training crops (the 68-landmark box grown by the "
        "processor's margin): use the whole frame",
    )
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        choices=DETECTORS,
        help=f"face detector whose boxes seed the 68-landmark predictor (default {DEFAULT_DETECTOR}: dlib's HOG; "
        "haar: OpenCV's cascade). The crop always comes from the landmarks",
    )
    parser.add_argument(
        "--follow", default="largest", help="'largest' face, or N = the N-th face from the left (0-based)"
    )
    parser.add_argument(
        "--detector-scale",
        type=float,
        default=None,
        help="downscale factor for face detection (default: longer side 480 px for hog, 320 px for haar)",
    )
    parser.add_argument(
        "--box-smoothing",
        type=float,
        default=0.5,
        help="EMA weight of the previous frame's landmarks (and so of the crop box) in [0, 1) (default 0.5)",
    )


def _add_anchor_arguments(parser, multiple: bool) -> None:
    from .labeler import ALL_MODES

    if multiple:
        parser.add_argument(
            "--anchor",
            nargs="+",
            default=None,
            choices=ALL_MODES,
            help="anchor modes to score (default: auto, and those of latest, fused and offset the model offers; the "
            "baselines hold/interpolate are always added)",
        )
    else:
        parser.add_argument(
            "--anchor",
            default=None,
            choices=ALL_MODES,
            help="how query frames use the support frames (default: auto, which picks per video the mode and the "
            "temporal smoothing whose error on your own anchors, each left out in turn, is lowest, and estimates "
            "the labels' RMSE; with fewer than 3 anchors it uses the mode chosen on validation clips)",
        )
    parser.add_argument(
        "--max-anchors", type=int, default=None, help="mean/weighted: use only the N support frames nearest in time"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=2.0,
        help="weighted: seconds over which time distance lowers an anchor's weight by e",
    )
    parser.add_argument(
        "--similarity-temperature",
        type=float,
        default=0.1,
        help="weighted: softmax temperature of the embedding similarity",
    )


def _add_strategy_arguments(parser, default: str | None, active: bool = False) -> None:
    from .support import STRATEGIES

    parser.add_argument(
        "--strategy",
        default=default,
        choices=[s for s in STRATEGIES if s != "given" and (active or s != "active")],
        help="pick support frames from the ground truth"
        + (
            " (active: simulate `mtclar suggest --support`: the first frame, then the budget in 3 rounds, each "
            "picked from the labels of the frames picked so far)"
            if active
            else ""
        ),
    )
    parser.add_argument(
        "--k", type=int, default=20, help="every-k: label the first frame and every k-th after it (default 20)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=0.06,
        help="fraction/random/diverse" + ("/active" if active else "") + ": fraction of frames to label (default 0.06)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random: seed")


def _anchor_kwargs(args) -> dict:
    return dict(
        max_anchors=args.max_anchors, time_scale=args.time_scale, similarity_temperature=args.similarity_temperature
    )


# ---------------------------------------------------------------------------------------------------------------
# mtclar label


def is_frame_folder(folder: Path) -> bool:
    from .video import list_frame_files

    return bool(list_frame_files(folder))


def support_for(args, source: Path, encoded, annotation) -> dict:
    """The support set of one source: the user's CSV (or CSV folder), or frames picked from the annotation."""
    from .support import read_support_csv, select_support

    if args.support is not None:
        support_path = Path(args.support)
        if support_path.is_dir():
            support_path = support_path / f"{source.stem if source.is_file() else source.name}.csv"
        return read_support_csv(support_path, video=source.name)
    if annotation is None:
        raise ConfigError(
            f"{source}: --strategy needs ground-truth labels (--labels AFEW_JSON or a frame folder with its JSON); "
            "for an unlabelled video, run `mtclar suggest` and pass the filled CSV with --support"
        )
    frames = [annotation["frames"].get(name) for name in (encoded.frame_names or [])]
    if not frames or any(entry is None for entry in frames):
        raise ConfigError(f"{source}: the annotation does not label every frame, so --strategy cannot pick from it")
    chosen = select_support(
        args.strategy, encoded.face_found, k=args.k, budget=args.budget, seed=args.seed, embeddings=encoded.embeddings
    )
    return {i: (frames[i]["valence"], frames[i]["arousal"]) for i in chosen}


def label_one(args, labeler, source: Path, out: Path, plot: Path | None, progress: bool, model_info: dict) -> dict:
    """Label one video or frame folder: plot, summary, then table (each atomic); returns the summary."""
    from .summary import estimate_line, video_summary, write_summary
    from .video import find_afew_annotation, read_afew_annotation

    check_table_path(out)  # before the work, and before the summary that goes beside the table
    annotation = None
    if source.is_dir():
        labels = Path(args.labels) if args.labels else find_afew_annotation(source)
        annotation = read_afew_annotation(labels) if labels else None
    elif args.labels:
        raise ConfigError("--labels (an AFEW-VA JSON) applies to a frame folder, not to a video file")
    encoded = labeler.encode(source, fps=args.fps, annotation=annotation, progress=progress)
    if args.no_support:
        support, table = {}, labeler.label_without_support(encoded, landmarks=args.landmarks)
    else:
        support = support_for(args, source, encoded, annotation)
        table = labeler.label(
            encoded,
            support,
            anchor=args.anchor,
            strict=args.strict,
            landmarks=args.landmarks,
            **_anchor_kwargs(args),
        )
    if encoded.frame_names is not None:
        table.insert(1, "frame_name", encoded.frame_names)
    summary = video_summary(source, table, support, model_info, faces=_faces_description(args))
    # Plot and summary before the table: in a batch, an existing table means this video is finished.
    if plot is not None:
        plot_labels(table, plot, title=source.name)
    write_summary(summary, out)
    write_table(table, out)
    found = int(encoded.face_found.sum())
    print(f"{source}: {encoded.num_frames} frames, face in {found}, {len(support)} support -> {out}", file=sys.stderr)
    print(estimate_line(summary), file=sys.stderr)
    return summary


def _faces_description(args) -> str:
    if args.no_detect:
        return "given crops (--no-detect)"
    return f"{args.detector} detector -> 68 predicted landmarks (where a frame folder has none of its own)"


def run_label(args) -> int:
    source = Path(args.source)
    if not source.exists():
        raise InputFileError(source, "no such video file or folder")
    given = [name for name, value in (("--support", args.support), ("--strategy", args.strategy)) if value is not None]
    if args.no_support and given:
        raise ConfigError(f"--no-support labels without labelled frames: drop {' and '.join(given)}")
    if not given and not args.no_support:
        raise ConfigError(
            "give the labelled frames: --support SUPPORT.csv, or --strategy with --labels for a labelled frame folder "
            "(or --no-support for a model's single-image predictions)"
        )
    if len(given) > 1:
        raise ConfigError("use either --support or --strategy, not both")
    batch = source.is_dir() and not is_frame_folder(source)
    if batch:
        return run_label_batch(args, source)
    model, processor = load_model_and_processor(args.model, device=args.device)
    labeler = make_labeler(args, model, processor)
    from .summary import model_record

    plot = Path(args.plot) if args.plot else None
    label_one(args, labeler, source, Path(args.out), plot, show_progress(args), model_record(args.model, model, processor))
    return 0


def batch_outputs(args, videos: list[Path]) -> dict[Path, tuple[Path, Path | None]]:
    """Each video's output table (and plot) in the batch's output folder."""
    out_dir = Path(args.out)
    return {
        video: (out_dir / f"{video.stem}.{args.format}", Path(args.plot) / f"{video.stem}.png" if args.plot else None)
        for video in videos
    }


def videos_to_label(args, outputs: dict) -> list[Path]:
    """The videos still to do: finished outputs are never redone silently (--resume skips, --overwrite redoes)."""
    finished = [video for video, (out, _) in outputs.items() if out.exists()]
    if not finished or args.overwrite:
        return list(outputs)
    if not args.resume:
        raise InputFileError(
            outputs[finished[0]][0],
            f"already exists ({len(finished)} of {len(outputs)} outputs do): pass --resume to skip finished videos "
            "or --overwrite to label them again",
        )
    print(f"mtclar label: --resume: {len(finished)} of {len(outputs)} video(s) already done, skipped", file=sys.stderr)
    return [video for video in outputs if video not in finished]


def run_label_batch(args, folder: Path) -> int:
    """Label every video of a folder; under `accelerate launch` each process takes its share of them.

    A video that fails is reported and skipped: the batch goes on, and the exit status says that
    something failed. Each output is written atomically when its video is done, so an interrupted
    batch loses at most the video in progress; `--resume` then skips the finished ones.
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from .summary import model_record
    from .video import check_unique_stems, list_video_files

    videos = list_video_files(folder)
    if not videos:
        raise InputFileError(folder, "no video files (or image frames) in this folder")
    check_unique_stems(folder, videos, "their outputs would collide")
    out_dir = Path(args.out)
    if out_dir.suffix.lower() in TABLE_FORMATS:
        raise ConfigError(f"--out {out_dir}: labelling a folder of videos needs an output FOLDER")
    if args.resume and args.overwrite:
        raise ConfigError("use either --resume or --overwrite, not both")
    import torch

    # Without a GPU, accelerate only forms a (gloo) process group when told it runs on the CPU.
    state = PartialState(cpu=args.device == "cpu" or not torch.cuda.is_available())
    outputs = batch_outputs(args, videos)
    todo = videos_to_label(args, outputs)
    state.wait_for_everyone()  # every process has listed what is done before any of them writes
    model, processor = load_model_and_processor(args.model, device=args.device or state.device)
    labeler = make_labeler(args, model, processor)
    model_info = model_record(args.model, model, processor)
    failures, summaries = [], []
    with state.split_between_processes(todo) as mine:
        for video in tqdm(
            mine, desc=f"videos (process {state.process_index})", unit="video", disable=not show_progress(args)
        ):
            out, plot = outputs[video]
            try:
                summaries.append(label_one(args, labeler, video, out, plot, False, model_info))
            except MTCLARError as err:  # one bad video must not stop the batch
                print(f"mtclar label: error: {err}", file=sys.stderr)
                failures.append(video.name)
            except Exception:  # a bug, not bad input: keep its traceback, but finish the other videos
                logger.exception("%s: unexpected error while labelling", video)
                failures.append(video.name)
    print_estimates_worst_first(state, summaries)
    done = len(mine) - len(failures)
    skipped = len(videos) - len(todo)
    summary = f"mtclar label: {done} labelled, {skipped} already done, {len(failures)} failed"
    if state.num_processes > 1:
        summary += f" (process {state.process_index} of {state.num_processes})"
    if failures:
        print(f"{summary}: {', '.join(failures)}", file=sys.stderr)
        return 1
    print(summary, file=sys.stderr)
    return 0


def print_estimates_worst_first(state, summaries: list[dict]) -> None:
    """Every process's videos, one line each, worst estimated error first, printed once by the main process."""
    from accelerate.utils import gather_object

    from .summary import estimate_line, worst_first

    gathered = gather_object(summaries) if state.num_processes > 1 else summaries
    if state.is_main_process and gathered:
        print("mtclar label: videos by estimated error, worst first:", file=sys.stderr)
        for summary in worst_first(gathered):
            print("  " + estimate_line(summary), file=sys.stderr)


def register_label(subparsers) -> None:
    from .labeler import NO_SUPPORT_METHOD

    parser = subparsers.add_parser(
        "label",
        help="label every frame of a face video (or frame folder, or folder of videos) from a few labelled frames",
        description="Label valence/arousal of every frame from a few labelled (support) frames with MT-CLAR.",
    )
    parser.add_argument("source", help="video file, AFEW-VA style frame folder, or a folder of videos (batch)")
    _add_model_arguments(parser)
    parser.add_argument(
        "--support",
        default=None,
        help="CSV frame,valence,arousal (0-based decoded frame index); a folder of <video>.csv for a batch",
    )
    parser.add_argument(
        "--labels", default=None, help="AFEW-VA JSON of a frame folder (default: <folder>/<folder>.json when present)"
    )
    _add_strategy_arguments(parser, default=None)
    _add_anchor_arguments(parser, multiple=False)
    _add_face_arguments(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop when a support frame has no face (default: it keeps its label, the other anchors label the "
        "video, and a warning names it)",
    )
    parser.add_argument(
        "--drop-faceless-support", action="store_true", help="the default behaviour, kept for old scripts"
    )
    parser.add_argument(
        "--landmarks",
        action="store_true",
        help="add the 68 landmarks the crop was cut around (columns lm0_x, lm0_y, ..., lm67_y)",
    )
    parser.add_argument(
        "--no-support",
        action="store_true",
        help="no labelled frames: the SL head's own predictions (models with an SL head only), marked "
        f"method={NO_SUPPORT_METHOD!r} in the output",
    )
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate of a frame folder (default 25, as AFEW-VA)")
    parser.add_argument("--out", required=True, help="output .csv/.parquet/.json (a folder for a batch)")
    parser.add_argument(
        "--format", default="csv", choices=[f[1:] for f in TABLE_FORMATS], help="batch output format (default csv)"
    )
    parser.add_argument("--plot", default=None, help="PNG of valence/arousal over time (a folder for a batch)")
    parser.add_argument(
        "--resume", action="store_true", help="batch: skip videos whose output already exists (an interrupted run)"
    )
    parser.add_argument("--overwrite", action="store_true", help="batch: label again videos whose output exists")
    parser.set_defaults(func=run_label)


# ---------------------------------------------------------------------------------------------------------------
# mtclar suggest


def run_suggest(args) -> int:
    import pandas as pd

    from .support import check_support, read_support_csv, suggest_frames

    source = Path(args.source)
    support = read_support_csv(args.support, video=source.name) if args.support is not None else None
    model, processor = load_model_and_processor(args.model, device=args.device)
    labeler = make_labeler(args, model, processor)
    encoded = labeler.encode(source, fps=args.fps, progress=show_progress(args))
    if support is not None and encoded.face_found.any():
        check_support(support, encoded.face_found, source=str(args.support), drop_faceless=True)
    if args.count is not None and args.count < 1:
        raise ConfigError(f"--count must be >= 1, got {args.count}")
    chosen = suggest_frames(model, encoded, args.count, args.budget, support)
    table = pd.DataFrame(
        {
            "rank": range(1, len(chosen) + 1),
            "frame": chosen,
            "timestamp": encoded.timestamps[chosen].round(4),
            "valence": [None] * len(chosen),
            "arousal": [None] * len(chosen),
        }
    )
    if args.out:
        write_table(table, args.out)
        then = f"add them to {args.support}" if support is not None else f"pass {args.out} to `mtclar label --support`"
        print(f"{source}: label these {len(chosen)} frames (rank 1 first), then {then}", file=sys.stderr)
    else:
        print(table.to_csv(index=False), end="")
    return 0


def register_suggest(subparsers) -> None:
    parser = subparsers.add_parser(
        "suggest",
        help="which frames of a video to label next (covering the embedding space, or from the labels made so far)",
        description="Pick the frames to label; writes a support CSV template (rank, frame, timestamp, empty "
        "valence/arousal) to fill in for `mtclar label --support`. Without --support: greedy k-centre covering of the "
        "frame embeddings, the first frame first. With --support (the labels made so far): the frames far from every "
        "labelled frame in time and in appearance, favouring those the labelled frames' predictions disagree about.",
    )
    parser.add_argument("source", help="video file or frame folder")
    _add_model_arguments(parser)
    _add_face_arguments(parser)
    parser.add_argument(
        "--support",
        default=None,
        help="CSV frame,valence,arousal of the frames labelled so far: suggest the next frames given these labels",
    )
    parser.add_argument(
        "--budget", type=float, default=0.06, help="fraction of the face frames to label (default 0.06)"
    )
    parser.add_argument("--count", type=int, default=None, help="number of frames to label (overrides --budget)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate of a frame folder (default 25)")
    parser.add_argument("--out", default=None, help="support CSV template to write (default: print it)")
    parser.set_defaults(func=run_suggest)


# ---------------------------------------------------------------------------------------------------------------
# mtclar evaluate


def afew_va_clips(path: Path, fold: int | None, fold_by: str):
    """Clips of a raw AFEW-VA folder or of a prepared dataset (`mtclar prepare afew-va`)."""
    from ..data.afew_va import iter_prepared_clips, load_afew_va_clips

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


def summary_lines(report: dict) -> list[str]:
    from .evaluation import skipped_summary

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


def default_evaluation_modes(model) -> list[str]:
    from .labeler import available_modes

    return ["auto"] + [mode for mode in ("latest", "fused", "offset") if mode in available_modes(model)]


def evaluation_input(args):
    """What `mtclar evaluate` scores: ("afew-va", clips) or ("videos", labelled videos), read and checked before the
    model loads; also settles `--faces` (landmarks for AFEW-VA by default, the detector for videos)."""
    if args.videos is None:
        for flag, value in (("--labels", args.labels), ("--actors", args.actors)):
            if value is not None:
                raise ConfigError(f"{flag} goes with --videos")
        data = Path(args.afew_va)
        if not data.exists():
            raise InputFileError(data, "AFEW-VA folder not found")
        args.faces = args.faces or "landmarks"
        clips = afew_va_clips(data, args.fold, args.fold_by)
        return "afew-va", clips[: args.limit] if args.limit is not None else clips
    from .own_videos import list_labelled_videos, read_actors_csv

    if args.faces == "landmarks":
        raise ConfigError("--faces landmarks needs AFEW-VA landmarks; videos go through the face detector")
    if args.fold is not None:
        raise ConfigError("--fold applies to a prepared AFEW-VA dataset, not to --videos")
    args.faces = "detector"
    actors = read_actors_csv(args.actors) if args.actors is not None else None
    videos = list_labelled_videos(args.videos, args.labels, actors)
    return "videos", videos[: args.limit] if args.limit is not None else videos


def run_evaluate(args) -> int:
    from ..io_utils import atomic_write_text
    from .evaluation import Protocol, evaluate_afew_va
    from .labeler import check_mode
    from .own_videos import evaluate_videos

    kind, items = evaluation_input(args)
    model, processor = load_model_and_processor(args.model, device=args.device)
    modes = [check_mode(model, mode) for mode in args.anchor or default_evaluation_modes(model)]
    args.no_detect, args.follow, args.box_smoothing = args.faces == "landmarks", "largest", 0.5
    labeler = make_labeler(args, model, processor)
    protocol = Protocol(
        strategy=args.strategy,
        modes=modes,
        k=args.k,
        budget=args.budget,
        seed=args.seed,
        cross_actor=not args.no_cross_actor,
        anchor_options=_anchor_kwargs(args),
    )
    if kind == "afew-va":
        report = evaluate_afew_va(labeler, items, protocol, fps=args.fps, progress=show_progress(args), faces=args.faces)
        data = str(args.afew_va)
    else:
        report = evaluate_videos(labeler, items, protocol, progress=show_progress(args))
        data = {"videos": str(args.videos), "labels": str(args.labels or args.videos)}
    report = {"model": str(args.model), "data": data, "faces": args.faces, **report}
    atomic_write_text(args.out, json.dumps(report, indent=2, allow_nan=False) + "\n")
    for line in summary_lines(report):
        print(line, file=sys.stderr)
    print(f"metrics -> {args.out}", file=sys.stderr)
    return 0


def register_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="few-shot labelling accuracy on AFEW-VA or on your own labelled videos (per video and pooled "
        "RMSE/PCC/CCC/SAGR, baselines, cross-actor)",
        description="The reference few-shot protocol on a raw or prepared AFEW-VA folder, or on a folder of videos with "
        "their full label CSVs; every anchor mode is scored beside the hold and interpolate baselines, with same-video "
        "and cross-actor anchors.",
    )
    _add_model_arguments(parser)
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--afew-va", help="raw AFEW-VA folder (001/, 002/, ...) or a prepared dataset")
    data.add_argument(
        "--videos",
        help="folder of your own videos, each labelled in full by <video stem>.csv (frame,valence,arousal; frame = "
        "0-based decoded index, values in [-1, 1], a missing frame is unlabelled) in --labels",
    )
    parser.add_argument("--labels", default=None, help="with --videos: folder of the label CSVs (default: --videos)")
    parser.add_argument(
        "--actors",
        default=None,
        help="with --videos: CSV video,actor naming who is in each video, for cross-actor anchors (default: each "
        "video is its own actor)",
    )
    _add_strategy_arguments(parser, default="every-k", active=True)
    _add_anchor_arguments(parser, multiple=True)
    parser.add_argument("--no-cross-actor", action="store_true", help="skip the cross-actor anchors")
    parser.add_argument(
        "--faces",
        choices=("landmarks", "detector"),
        default=None,
        help="AFEW-VA: crop around the annotation's landmarks (default), or ignore them and find faces as on a user's "
        "video (detector, then predicted landmarks); both score the same support frames. --videos: always detector",
    )
    parser.add_argument("--detector", default="hog", choices=("hog", "haar"), help="with --faces detector (default hog)")
    parser.add_argument(
        "--detector-scale", type=float, default=None, help="with --faces detector: downscale factor for detection"
    )
    parser.add_argument(
        "--fold", type=int, default=None, help="prepared dataset: evaluate only this fold (a held-out split)"
    )
    parser.add_argument(
        "--fold-by", default="actor", choices=["actor", "clip"], help="fold column to use with --fold (default actor)"
    )
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N clips (or videos)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate of AFEW-VA clips (default 25)")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.set_defaults(func=run_evaluate)


def run_calibrate(args) -> int:
    from .auto import calibrate_model_folder

    data, model_dir = Path(args.afew_va), Path(args.model)
    if not data.exists():
        raise InputFileError(data, "AFEW-VA folder not found")
    if not model_dir.is_dir():
        raise InputFileError(model_dir, "calibration is stored in the model folder: give a local folder")
    model, processor = load_model_and_processor(model_dir, device=args.device)
    raw_clips = afew_va_clips(data, args.fold, args.fold_by)
    if not raw_clips:
        raise InputFileError(data, "no clip to calibrate on")
    settings, report = calibrate_model_folder(
        model_dir, model, processor, raw_clips, f"{{num_clips}} clips of {data}", args.spacings, show_progress(args)
    )
    print(f"auto: candidates {', '.join(settings.modes or [])}; from fewer than 3 anchors: {settings.sparse_mode}", file=sys.stderr)
    for mode, scale in sorted(settings.rmse_scale.items()):
        print(f"  {mode:<12} leave-one-out RMSE x {scale[0]:.2f} (valence), x {scale[1]:.2f} (arousal)", file=sys.stderr)
    print(f"stored in {model_dir / 'config.json'} (auto_anchor); measurements: {json.dumps(report)}", file=sys.stderr)
    return 0


def register_calibrate(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="choose the auto anchor mode's candidates and error scales on validation clips; stored in the model",
        description="Measure, on AFEW-VA-layout validation clips (never the clips you report on), which modes `auto` "
        "chooses among, which mode it uses with fewer than 3 anchors, and how leave-one-anchor-out errors relate to "
        "the errors query frames see. The result goes into MODEL/config.json (auto_anchor).",
    )
    _add_model_arguments(parser)
    parser.add_argument("--afew-va", required=True, help="validation clips: raw AFEW-VA folder or a prepared dataset")
    parser.add_argument("--fold", type=int, default=None, help="prepared dataset: use only this fold")
    parser.add_argument("--fold-by", default="actor", choices=["actor", "clip"], help="fold column (default actor)")
    parser.add_argument(
        "--spacings",
        type=int,
        nargs="+",
        default=[50, 20],
        help="support densities to calibrate at: every k-th frame (default 50 20, the quickstart's)",
    )
    parser.set_defaults(func=run_calibrate)


def register(subparsers: argparse._SubParsersAction) -> None:
    register_label(subparsers)
    register_suggest(subparsers)
    register_evaluate(subparsers)
    register_calibrate(subparsers)

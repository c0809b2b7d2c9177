"""`mtclar label`, `mtclar suggest`, `mtclar evaluate` and `mtclar calibrate`: argparse over the labelling API.

    mtclar label VIDEO --model M --support SUPPORT.csv --out OUT.csv [--anchor fused] [--plot OUT.png]
    mtclar label FRAME_FOLDER --model M --labels CLIP.json --strategy every-k --out OUT.parquet
    mtclar label VIDEO_DIR --model M --support SUPPORT_DIR --out OUT_DIR      # a batch; shares out
                                                                              # over `accelerate launch` processes
    mtclar suggest VIDEO --model M --budget 0.06 --out support.csv            # which frames to label first
    mtclar evaluate --model M --afew-va DIR --anchor latest fused --out metrics.json
    mtclar calibrate --model M --afew-va VALIDATION_DIR                       # stores auto's settings in M

Each handler turns its arguments into calls of `mtclar_hf.labeling`: `loading` (the model, its processor and
the labeller), `batch` (a source or a folder to label tables), `suggestions`, `evaluation_runs`. Heavy imports
live inside the handlers, so that `mtclar --help` stays quick. The module is longer than most because it
holds the four commands' arguments and their help texts; it has no other logic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError, InputFileError
from .loading import load_model_and_processor, make_labeler
from .tables import TABLE_FORMATS, write_table

# ---------------------------------------------------------------------------------------------------------------
# Shared pieces: arguments, and the library calls' options made from them


def show_progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def labeler_options(args, detector) -> dict:
    """`make_labeler`'s keyword arguments from the model and face arguments; `detector` None: given crops."""
    from .faces import DEFAULT_DETECT_EVERY

    return dict(
        detector=detector,
        follow=getattr(args, "follow", "largest"),
        batch_size=args.batch_size,
        detector_scale=args.detector_scale,
        box_smoothing=getattr(args, "box_smoothing", 0.5),
        detect_every=getattr(args, "detect_every", DEFAULT_DETECT_EVERY),
        face_workers=args.face_workers,
        compile=args.compile,
        backend=args.backend,
    )


def load_labeler(args, detector):
    """The model of `--model` on `--device` and its labeller; the model is `labeler.model`."""
    model, processor = load_model_and_processor(args.model, device=args.device)
    return make_labeler(model, processor, model_path=args.model, device=args.device, **labeler_options(args, detector))


def anchor_options(args) -> dict:
    return dict(
        max_anchors=args.max_anchors, time_scale=args.time_scale, similarity_temperature=args.similarity_temperature
    )


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
    from .faces import DEFAULT_DETECT_EVERY, DEFAULT_DETECTOR, DETECTORS

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
    parser.add_argument(
        "--detect-every",
        type=int,
        default=DEFAULT_DETECT_EVERY,
        help="run the detector on every N-th frame while a face is followed; in between the previous frame's "
        f"landmarks seed the next (default {DEFAULT_DETECT_EVERY}; 1: every frame)",
    )


def _add_anchor_arguments(parser, multiple: bool) -> None:
    from .anchors import ALL_MODES

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
            "the labels' RMSE; with fewer than 3 anchors it uses the mode and the difference gain chosen on "
            "validation clips by `mtclar calibrate`)",
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


# ---------------------------------------------------------------------------------------------------------------
# mtclar label


def run_label(args) -> int:
    from .batch import LabelOptions, label_source
    from .summary import model_record
    from .video import is_frame_folder

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
    options = LabelOptions(
        support=args.support,
        strategy=args.strategy,
        k=args.k,
        budget=args.budget,
        seed=args.seed,
        labels=args.labels,
        no_support=args.no_support,
        anchor=args.anchor,
        anchor_options=anchor_options(args),
        strict=args.strict,
        landmarks=args.landmarks,
        fps=args.fps,
    )
    detector = None if args.no_detect else args.detector
    if source.is_dir() and not is_frame_folder(source):
        return run_label_batch(args, source, options, detector)
    labeler = load_labeler(args, detector)
    model_info = model_record(args.model, labeler.model, labeler.image_processor)
    plot = Path(args.plot) if args.plot else None
    label_source(labeler, source, args.out, options, model_info=model_info, plot=plot, progress=show_progress(args))
    return 0


def run_label_batch(args, folder: Path, options, detector) -> int:
    from .batch import label_folder

    result = label_folder(
        folder,
        args.out,
        args.model,
        options,
        labeler_options=labeler_options(args, detector),
        device=args.device,
        table_format=args.format,
        plot_dir=args.plot,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=show_progress(args),
    )
    summary = f"mtclar label: {result.labelled} labelled, {result.already_done} already done, {len(result.failed)} failed"
    if result.num_processes > 1:
        summary += f" (process {result.process_index} of {result.num_processes})"
    if result.failed:
        print(f"{summary}: {', '.join(result.failed)}", file=sys.stderr)
        return 1
    print(summary, file=sys.stderr)
    return 0


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
    from .anchors import label_range
    from .suggestions import suggestion_table
    from .support import read_support_csv

    source = Path(args.source)
    labeler = load_labeler(args, None if args.no_detect else args.detector)
    support = None
    if args.support is not None:
        support = read_support_csv(args.support, video=source.name, label_range=label_range(labeler.model))
    table = suggestion_table(
        labeler,
        source,
        support=support,
        support_source=str(args.support),
        count=args.count,
        budget=args.budget,
        fps=args.fps,
        progress=show_progress(args),
    )
    if args.out:
        write_table(table, args.out)
        then = f"add them to {args.support}" if support is not None else f"pass {args.out} to `mtclar label --support`"
        print(f"{source}: label these {len(table)} frames (rank 1 first), then {then}", file=sys.stderr)
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


def run_evaluate(args) -> int:
    from ..io_utils import atomic_write_text
    from .anchors import check_mode, label_range
    from .evaluation import Protocol
    from .evaluation_runs import default_evaluation_modes, evaluate_data, evaluation_data, summary_lines

    model, processor = load_model_and_processor(args.model, device=args.device)
    data = evaluation_data(
        afew_va=args.afew_va,
        videos=args.videos,
        labels=args.labels,
        actors=args.actors,
        faces=args.faces,
        fold=args.fold,
        fold_by=args.fold_by,
        limit=args.limit,
        label_range=label_range(model),
    )
    modes = [check_mode(model, mode) for mode in args.anchor or default_evaluation_modes(model)]
    detector = None if data.faces == "landmarks" else args.detector
    labeler = make_labeler(
        model, processor, model_path=args.model, device=args.device, **labeler_options(args, detector)
    )
    protocol = Protocol(
        strategy=args.strategy,
        modes=modes,
        k=args.k,
        budget=args.budget,
        seed=args.seed,
        cross_actor=not args.no_cross_actor,
        anchor_options=anchor_options(args),
    )
    report = evaluate_data(labeler, data, protocol, model_name=args.model, fps=args.fps, progress=show_progress(args))
    atomic_write_text(args.out, json.dumps(report, indent=2, allow_nan=False) + "\n")
    for line in summary_lines(report):
        print(line, file=sys.stderr)
    print(f"metrics -> {args.out}", file=sys.stderr)
    return 0


def register_evaluate(subparsers) -> None:
    from .faces import DEFAULT_DETECTOR, DETECTORS

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
        "0-based decoded index, values in the model's label range, a missing frame is unlabelled) in --labels",
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
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        choices=DETECTORS,
        help=f"with --faces detector (default {DEFAULT_DETECTOR})",
    )
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
    from .evaluation_runs import calibrate_on_folder

    settings, report = calibrate_on_folder(
        args.model,
        args.afew_va,
        fold=args.fold,
        fold_by=args.fold_by,
        spacings=args.spacings,
        device=args.device,
        progress=show_progress(args),
    )
    model_dir = Path(args.model)
    gain = settings.sparse_gain
    print(f"auto: candidates {', '.join(settings.modes or [])} (preferred: {settings.preferred_mode}, another mode must "
          f"estimate below {settings.switch_margin:g}x); from fewer than 3 anchors: {settings.sparse_mode}, "
          f"differences x {gain[0]:.2f} (valence), x {gain[1]:.2f} (arousal)", file=sys.stderr)
    for mode, scale in sorted(settings.rmse_scale.items()):
        print(f"  {mode:<12} leave-one-out RMSE x {scale[0]:.2f} (valence), x {scale[1]:.2f} (arousal)", file=sys.stderr)
    print(f"stored in {model_dir / 'config.json'} (auto_anchor); measurements: {json.dumps(report)}", file=sys.stderr)
    return 0


def register_calibrate(subparsers) -> None:
    from .calibration import CALIBRATION_SPACINGS

    parser = subparsers.add_parser(
        "calibrate",
        help="choose the auto anchor mode's settings on validation clips; stored in the model",
        description="Measure, on AFEW-VA-layout validation clips (never the clips you report on), which modes `auto` "
        "chooses among, which mode it uses with fewer than 3 anchors and how much it stretches the pair heads' "
        "differences there (to be as large as the real ones), and how leave-one-anchor-out errors relate to the "
        "errors query frames see. The result goes into MODEL/config.json (auto_anchor).",
    )
    _add_model_arguments(parser)
    parser.add_argument("--afew-va", required=True, help="validation clips: raw AFEW-VA folder or a prepared dataset")
    parser.add_argument("--fold", type=int, default=None, help="prepared dataset: use only this fold")
    parser.add_argument("--fold-by", default="actor", choices=["actor", "clip"], help="fold column (default actor)")
    parser.add_argument(
        "--spacings",
        type=int,
        nargs="+",
        default=list(CALIBRATION_SPACINGS),
        help="support densities to calibrate at: every k-th frame (default 50 20, the quickstart's)",
    )
    parser.set_defaults(func=run_calibrate)


def register(subparsers: argparse._SubParsersAction) -> None:
    register_label(subparsers)
    register_suggest(subparsers)
    register_evaluate(subparsers)
    register_calibrate(subparsers)

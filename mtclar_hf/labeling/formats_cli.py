"""`mtclar export-labels` and `mtclar import-labels`: labels to and from NOVA, ELAN, AFEW-VA and time-based CSV.

    mtclar export-labels clip_labels.csv --to elan --out clip.eaf
    mtclar export-labels clip_labels.csv --to nova --out nova/clip --rate 25   # nova/clip.valence.annotation(~), ...
    mtclar export-labels clip_labels.csv --to seconds --out clip_10hz.csv --rate 10
    mtclar export-labels clip_labels.csv --to afew-va --out clip.json          # needs `mtclar label --landmarks`
    mtclar import-labels clip.eaf --from elan --video clip.mp4 --out support.csv

The formats themselves are described in `mtclar_hf.labeling.formats` and docs/FORMATS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .formats import FORMATS


def run_export(args) -> int:
    from .formats import export_labels, read_labels_table

    labels = read_labels_table(args.labels)
    written = export_labels(labels, args.to, args.out, rate=args.rate, video_id=args.video_id)
    print(f"{args.labels}: {labels.num_frames} frames -> {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def run_import(args) -> int:
    from .formats import import_labels, write_support_csv
    from .video import frame_timestamps, list_frame_files

    video = Path(args.video)
    times = frame_timestamps(video, fps=args.fps)
    names = [p.stem for p in list_frame_files(video)] if video.is_dir() else None
    support = import_labels(args.file, args.source, times, frame_names=names)
    write_support_csv(support, times, args.out)
    print(
        f"{args.file}: {len(support)} of {len(times)} frames labelled -> {args.out} "
        f"(pass it to `mtclar label {video} --support {args.out}`)",
        file=sys.stderr,
    )
    return 0


def register(subparsers) -> None:
    export = subparsers.add_parser(
        "export-labels",
        help="write a labels table as NOVA, ELAN, AFEW-VA JSON or a time-based CSV",
        description="Convert a labels table of `mtclar label` to the format of an annotation tool or dataset. "
        "Times come from the table's frame timestamps (variable frame rate safe).",
    )
    export.add_argument("labels", help="labels table written by `mtclar label` (.csv, .parquet or .json)")
    export.add_argument("--to", required=True, choices=FORMATS, help="target format")
    export.add_argument(
        "--out", required=True,
        help="output file (.eaf, .json, .csv); for nova a name NAME (or folder): NAME.valence.annotation, ...",
    )
    export.add_argument(
        "--rate", type=float, default=None,
        help="samples per second for nova and seconds (default: the video's mean frame rate)",
    )
    export.add_argument("--video-id", default=None, help="afew-va: the clip's video_id (default: the output's stem)")
    export.set_defaults(func=run_export)

    imported = subparsers.add_parser(
        "import-labels",
        help="turn a NOVA, ELAN, AFEW-VA or time-based CSV label file into a support CSV for `mtclar label`",
        description="Read labels made in another tool and map them onto the frames of VIDEO (through its real "
        "frame timestamps): every frame with both valence and arousal becomes a support frame.",
    )
    imported.add_argument("file", help="label file (nova: either .annotation header of the pair, or the name)")
    imported.add_argument("--from", dest="source", required=True, choices=FORMATS, help="format of FILE")
    imported.add_argument("--video", required=True, help="the video (or frame folder) the labels belong to")
    imported.add_argument("--fps", type=float, default=25.0, help="frame rate of a frame folder (default 25)")
    imported.add_argument("--out", required=True, help="support CSV to write (frame,timestamp,valence,arousal)")
    imported.set_defaults(func=run_import)

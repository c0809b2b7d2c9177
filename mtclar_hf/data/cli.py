"""``mtclar synth`` and ``mtclar prepare {affectnet,afew-va}``.

``synth`` renders SynthAffect (a synthetic stand-in written in both real layouts); ``prepare`` turns a
raw AffectNet or AFEW-VA folder into a `datasets.DatasetDict` saved with ``save_to_disk`` (open it with
``datasets.load_from_disk``), prints what it kept and dropped, and optionally pushes it to the Hub.
Heavy imports live inside the handlers so ``mtclar --help`` stays quick; SynthAffect's defaults come from
:mod:`.synth`, which renders it.
"""

from __future__ import annotations

import argparse

from . import synth


def register(subparsers) -> None:
    _register_synth(subparsers)
    _register_prepare(subparsers)


def _register_synth(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="render SynthAffect, a synthetic face dataset in the AffectNet and AFEW-VA layouts",
        description="Render SynthAffect into DIR/affectnet (original AffectNet layout) and DIR/afew_va (AFEW-VA "
        "layout), and/or draw a labelled grid of samples (--contact-sheet).",
    )
    parser.add_argument("--out", default=None, help="output folder for the dataset")
    parser.add_argument("--contact-sheet", metavar="PNG", default=None, help="draw a labelled grid of samples into this PNG")
    parser.add_argument("--seed", type=int, default=synth.DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--identities", type=int, default=synth.DEFAULT_IDENTITIES, help="number of synthetic identities (default: %(default)s)"
    )
    parser.add_argument(
        "--train-images", type=int, default=synth.DEFAULT_TRAIN_IMAGES,
        help="AffectNet-layout training images (default: %(default)s)",
    )
    parser.add_argument(
        "--val-images", type=int, default=synth.DEFAULT_VAL_IMAGES,
        help="AffectNet-layout validation images (default: %(default)s)",
    )
    parser.add_argument("--clips", type=int, default=synth.DEFAULT_CLIPS, help="AFEW-VA-layout clips (default: %(default)s)")
    parser.add_argument(
        "--frames", type=int, default=synth.DEFAULT_FRAMES_PER_CLIP, help="frames per clip (default: %(default)s)"
    )
    parser.add_argument(
        "--size", type=int, default=synth.DEFAULT_IMAGE_SIZE, help="image size in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--workers", type=int, default=synth.DEFAULT_NUM_WORKERS, help="rendering processes (default: %(default)s)"
    )
    parser.set_defaults(func=run_synth)


def _register_prepare(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn a raw AffectNet or AFEW-VA folder into a Hugging Face dataset (save_to_disk)",
        description="Read a raw dataset folder, validate it, and save it as a datasets.DatasetDict.",
    )
    kinds = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)

    affectnet = kinds.add_parser(
        "affectnet",
        help="AffectNet: original release (training.csv/validation.csv) or redistributed (train_set/annotations)",
        description="Prepare AffectNet (splits train, validation). Rows with codes 8-10 or the -2 marker are dropped and counted.",
    )
    affectnet.add_argument("raw", help="raw AffectNet folder")
    affectnet.add_argument(
        "--layout",
        choices=("auto", "original", "redistributed"),
        default="auto",
        help="raw layout (default: detect it)",
    )
    affectnet.add_argument(
        "--face-box",
        choices=("landmarks", "csv"),
        default="landmarks",
        help="face_box column: the box of the 68 landmarks every row carries (default; the crop `mtclar label` "
        "makes on video) or the original layout's face_* detector boxes",
    )
    _add_common_options(affectnet)
    affectnet.set_defaults(func=run_prepare_affectnet)

    afew = kinds.add_parser(
        "afew-va",
        help="AFEW-VA: clip folders of PNG frames + one JSON per clip; labels rescaled to [-1, 1]",
        description="Prepare AFEW-VA (split train with fold_clip / fold_actor columns for clip- and actor-disjoint k-fold).",
    )
    afew.add_argument("raw", help="raw AFEW-VA folder (001/, 002/, ...)")
    afew.add_argument("--folds", type=int, default=5, help="number of clip- / actor-disjoint folds (default: 5)")
    afew.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default: 0)")
    _add_common_options(afew)
    afew.set_defaults(func=run_prepare_afew_va)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder for save_to_disk")
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="drop (and count) rows whose image or frame is missing instead of failing",
    )
    parser.add_argument("--num-proc", type=int, default=None, help="processes used to embed the images when saving")
    parser.add_argument(
        "--push-to-hub", metavar="REPO", default=None, help="also push the saved dataset to this Hub repo"
    )
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create a private repo")


def run_synth(args) -> int:
    from ..errors import ConfigError

    if not args.out and not args.contact_sheet:
        raise ConfigError("give --out DIR and/or --contact-sheet PNG")
    if args.contact_sheet:
        print(f"wrote {synth.make_contact_sheet(args.contact_sheet, seed=args.seed, image_size=args.size)}")
    if args.out:
        result = synth.write_synthaffect(
            args.out,
            seed=args.seed,
            num_identities=args.identities,
            train_images=args.train_images,
            val_images=args.val_images,
            num_clips=args.clips,
            frames_per_clip=args.frames,
            image_size=args.size,
            num_workers=args.workers,
        )
        print(f"SynthAffect written to {args.out}")
        for key, value in result.items():
            print(f"  {key}: {value}")
    return 0


def _finish(summary, args) -> int:
    print(summary.format())
    print(f"saved to {args.out} (open with datasets.load_from_disk)")
    if args.push_to_hub:
        from ..hub.push import push_dataset

        url = push_dataset(args.out, args.push_to_hub, private=args.private)
        print(f"pushed to {url or args.push_to_hub}")
    return 0


def run_prepare_affectnet(args) -> int:
    from .affectnet import prepare_affectnet

    layout = None if args.layout == "auto" else args.layout
    summary = prepare_affectnet(
        args.raw,
        args.out,
        layout=layout,
        skip_missing=args.skip_missing,
        num_proc=args.num_proc,
        face_box=args.face_box,
    )
    return _finish(summary, args)


def run_prepare_afew_va(args) -> int:
    from .afew_va import prepare_afew_va

    summary = prepare_afew_va(
        args.raw, args.out, folds=args.folds, seed=args.seed, skip_missing=args.skip_missing, num_proc=args.num_proc
    )
    return _finish(summary, args)

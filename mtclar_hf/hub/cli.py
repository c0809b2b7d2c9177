"""`mtclar push` (a trained model folder) and `mtclar push-dataset` (a prepared dataset).

    mtclar push outputs/mtclar/final user/mtclar-affectnet --eval metrics.json [--private] [--revision v1]
    mtclar push outputs/mtclar/final user/mtclar-affectnet --out hub_ready/     # no upload: the Hub-ready folder
    mtclar push outputs/mtclar/final user/mtclar-affectnet --onnx              # with the ONNX export in onnx/
    mtclar push-dataset prepared/afew_va user/afew-va-prepared --private

The card is rendered and the folder checked (no pickle files, safetensors matching the config, processor
and code files present) before anything is uploaded. The token comes from HF_TOKEN or `hf auth login`
(never a command-line flag: it would end up in the shell history).
"""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "push",
        help="write the model card, check a trained model folder and push it to the Hugging Face Hub",
        description="Render README.md (model card with model-index results), check the folder, then upload it "
        "(or, with --out, write the Hub-ready folder and upload nothing).",
    )
    parser.add_argument("model_dir", help="saved MT-CLAR model folder (save_pretrained + image processor)")
    parser.add_argument("repo_id", nargs="?", default=None, help="Hub repo, e.g. user/mtclar-afew-va (optional with --out)")
    parser.add_argument("--eval", default=None, metavar="METRICS_JSON",
                        help="metrics from `mtclar evaluate` (default: the folder's own metrics.json from training)")
    parser.add_argument("--eval-dataset", default=None, help="name (or Hub id) of the evaluation data, shown in the model-index")
    parser.add_argument("--dataset", action="append", default=None, metavar="HUB_ID", help="training dataset on the Hub (repeatable)")
    parser.add_argument("--license", default="other", help="licence id for the card (default: other = research-only, see the card)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--revision", default=None, help="push to this branch (created when missing) instead of main")
    parser.add_argument("--out", default=None, metavar="HUB_READY_DIR", help="write the checked Hub-ready folder here; upload nothing")
    parser.add_argument("--overwrite", action="store_true", help="with --out: replace an existing folder")
    parser.add_argument("--onnx", action="store_true",
                        help="also upload the verified ONNX export (onnx/; MODEL_DIR/onnx, or exported now) for onnxruntime")
    parser.set_defaults(func=run_push)

    dataset = subparsers.add_parser(
        "push-dataset",
        help="push a prepared dataset (mtclar prepare ... --out DIR) to the Hub as Parquet with its dataset card",
        description="Export a save_to_disk DatasetDict to Parquet, render its dataset card, and upload both.",
    )
    dataset.add_argument("dataset_dir", help="prepared dataset folder (datasets.save_to_disk)")
    dataset.add_argument("repo_id", nargs="?", default=None, help="Hub dataset repo (optional with --out)")
    dataset.add_argument("--source", default=None, choices=("affectnet", "afew-va", "synthaffect"),
                         help="what the data is, for the licence notes (default: detected)")
    dataset.add_argument("--license", default=None, help="licence id (default: other, with the dataset's terms)")
    dataset.add_argument("--private", action="store_true", help="create the repo as private")
    dataset.add_argument("--revision", default=None, help="push to this branch (created when missing) instead of main")
    dataset.add_argument("--out", default=None, metavar="HUB_READY_DIR", help="write the Hub-ready folder here; upload nothing")
    dataset.add_argument("--overwrite", action="store_true", help="with --out: replace an existing folder")
    dataset.set_defaults(func=run_push_dataset)


def _repo_id(args, what: str) -> str:
    from ..errors import ConfigError

    if args.repo_id:
        return args.repo_id
    if args.out:
        # The card's usage code must run: without a Hub id it loads from the written folder itself.
        from pathlib import Path

        return str(Path(args.out).resolve())
    raise ConfigError(f"give REPO_ID (e.g. your-name/{what}) to push, or --out DIR to write the Hub-ready folder")


def run_push(args) -> int:
    from .push import push_model

    repo_id = _repo_id(args, "mtclar-model")
    result = push_model(
        args.model_dir, repo_id, eval_metrics=args.eval, private=args.private, revision=args.revision,
        dry_run_dir=args.out, overwrite=args.overwrite, license=args.license, datasets=args.dataset, eval_dataset=args.eval_dataset,
        onnx=args.onnx,
    )
    print(f"Hub-ready folder written to {result} (card: README.md)" if args.out else f"pushed {args.model_dir} to {result}")
    return 0


def run_push_dataset(args) -> int:
    from .push import push_dataset

    repo_id = _repo_id(args, "mtclar-dataset")
    result = push_dataset(
        args.dataset_dir, repo_id, private=args.private, dry_run_dir=args.out, overwrite=args.overwrite,
        source=args.source, license=args.license, revision=args.revision,
    )
    print(f"Hub-ready dataset folder written to {result}" if args.out else f"pushed {args.dataset_dir} to {result}")
    return 0

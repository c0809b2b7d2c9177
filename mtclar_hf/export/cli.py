"""`mtclar export-onnx`: a saved model folder to verified ONNX files for onnxruntime.

    mtclar export-onnx outputs/mtclar/final outputs/mtclar/final/onnx     # where --backend onnx looks first
    mtclar export-onnx MODEL_DIR OUT_DIR --check-image face.jpg             # verify on your own face crop too
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-onnx",
        help="export a saved model to ONNX (encoder, pair or affect heads), verified against PyTorch",
        description="Export the encoder (image -> embedding, dynamic batch) and the pair heads (or the MT-CLAR+SL "
        "affect heads) to ONNX with the image processor's config and a manifest. Every file is checked against "
        "PyTorch on random inputs and a face image; a file that disagrees is refused and nothing is written.",
    )
    parser.add_argument("model_dir", help="saved MT-CLAR model folder (save_pretrained + image processor)")
    parser.add_argument("out_dir", help="folder to write (MODEL_DIR/onnx is where `--backend onnx` looks)")
    parser.add_argument(
        "--check-image", default=None, help="a face crop to verify on (default: a rendered SynthAffect face)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty OUT_DIR")
    parser.set_defaults(func=run_export_onnx)


def run_export_onnx(args) -> int:
    from .onnx_export import export_onnx

    manifest = export_onnx(args.model_dir, args.out_dir, check_image=args.check_image, overwrite=args.overwrite)
    for name, entry in manifest["files"].items():
        print(
            f"{args.out_dir}/{entry['file']}: {name}, largest difference from PyTorch "
            f"{entry['max_abs_diff_vs_torch']:.2g}",
            file=sys.stderr,
        )
    print(f"ONNX export of {args.model_dir} -> {args.out_dir} (opset {manifest['opset']}, manifest.json)", file=sys.stderr)
    return 0

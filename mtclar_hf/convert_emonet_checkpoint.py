"""Convert EmoNet's pretrained `emonet_8.pth` (or `emonet_5.pth`) into an MT-CLAR model folder.

    mtclar convert-emonet emonet_8.pth models/mtclar-emofan
    python -m mtclar_hf.convert_emonet_checkpoint emonet_8.pth models/mtclar-emofan

The result is `MTCLARModel(MTCLARConfig(encoder="emofan"))` whose encoder holds EmoNet's weights (the FAN
landmark trunk, frozen, and the emotion branch), saved with `save_pretrained` as safetensors next to an
`MTCLARImageProcessor` that resizes face crops straight to 256x256 as EmoNet expects. MT-CLAR's projector heads
are freshly initialised (seeded): this folder is the starting point of MT-CLAR training, as in the paper. EmoNet's
own head (`emo_fc_2.*`: Linear 256->128, BatchNorm1d, Linear 128->n_expression+2) is checked and dropped, because
MT-CLAR replaces it by the identity.

Weights: EmoNet's weights come from github.com/face-analysis/emonet (`pretrained/emonet_8.pth`), released under
Creative Commons BY-NC-ND 4.0 (non-commercial, no derivatives). They are not shipped with this package and nothing
here downloads them: download them yourself and check that your use is allowed by that licence (a converted folder
is a derivative of those weights; do not redistribute it where the licence forbids).

Safety and strictness: the file is read with `torch.load(weights_only=True)`, so no pickled code runs. EmoNet's
own loaders strip every `module.` substring (DataParallel) and then call `load_state_dict(strict=False)`, which
silently loads nothing when the names do not match; here the names must match EmoNet's layout exactly, or the
conversion stops with a one-line error naming the first missing, unexpected or mis-shaped keys. The only tolerated
difference is absent `*.num_batches_tracked` counters (checkpoints written by PyTorch < 0.4.1 have none; inference
never reads them), which are filled with 0 and reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EMONET_HEAD_PREFIX = "emo_fc_2."
NUM_REGRESSION_OUTPUTS = 2  # valence, arousal
SHOWN_KEYS = 3  # how many offending keys an error message names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert-emonet",
        help="convert EmoNet's emonet_8.pth into an MT-CLAR model folder with the EmoFAN encoder",
        description=(
            "Convert EmoNet's pretrained weights (download them yourself from github.com/face-analysis/emonet; "
            "licence CC BY-NC-ND 4.0) into an MT-CLAR model folder (safetensors + config + image processor)."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run_convert_emonet)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pth", metavar="PTH", help="EmoNet checkpoint, e.g. emonet_8.pth")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output model folder")
    parser.add_argument(
        "--n-expression", type=int, choices=(5, 8), default=8, help="expression classes of the checkpoint (default: 8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the new MT-CLAR heads' initialisation (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")


def run_convert_emonet(args: argparse.Namespace) -> int:
    convert_emonet_checkpoint(args.pth, args.out_dir, n_expression=args.n_expression, seed=args.seed, overwrite=args.overwrite)
    return 0


# ------------------------------------------------------------------------------------------------ reading
def load_emonet_state_dict(pth_path: Path) -> dict:
    """The checkpoint's tensors with every `module.` substring removed, exactly as EmoNet's loaders do."""
    import torch

    from .errors import InputFileError

    if not pth_path.is_file():
        raise InputFileError(pth_path, "no such file")
    try:
        loaded = torch.load(pth_path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to read a user's file is a problem with that file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputFileError(
            pth_path, f"not a PyTorch weights file that loads safely with weights_only=True ({first_line})"
        ) from None
    if not isinstance(loaded, dict) or not loaded:
        raise InputFileError(pth_path, f"holds a {type(loaded).__name__}, not an EmoNet state dict (a dict of tensors)")
    not_tensors = [str(key) for key, value in loaded.items() if not isinstance(key, str) or not torch.is_tensor(value)]
    if not_tensors:
        raise InputFileError(
            pth_path, f"not a state dict: entries that are not named tensors: {', '.join(not_tensors[:SHOWN_KEYS])}"
        )
    stripped = {key.replace("module.", ""): value for key, value in loaded.items()}
    if len(stripped) != len(loaded):
        raise InputFileError(pth_path, "holds the same key both with and without a 'module.' prefix")
    return stripped


def expected_emonet_shapes(encoder, n_expression: int) -> tuple[dict, dict]:
    """EmoNet's key -> shape: the encoder's own keys, and those of the dropped head `emo_fc_2`."""
    encoder_shapes = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    hidden = 128
    head_shapes = {
        "emo_fc_2.0.weight": (hidden, encoder.output_size),
        "emo_fc_2.0.bias": (hidden,),
        "emo_fc_2.1.weight": (hidden,),
        "emo_fc_2.1.bias": (hidden,),
        "emo_fc_2.1.running_mean": (hidden,),
        "emo_fc_2.1.running_var": (hidden,),
        "emo_fc_2.1.num_batches_tracked": (),
        "emo_fc_2.3.weight": (n_expression + NUM_REGRESSION_OUTPUTS, hidden),
        "emo_fc_2.3.bias": (n_expression + NUM_REGRESSION_OUTPUTS,),
    }
    return encoder_shapes, head_shapes


def _named(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else "")


def split_and_check(pth_path: Path, state_dict: dict, encoder_shapes: dict, head_shapes: dict):
    """Check the checkpoint against EmoNet's layout key for key; return (encoder weights, head weights, filled keys)."""
    import torch

    from .errors import InputFileError

    expected = {**encoder_shapes, **head_shapes}
    counters = [key for key in expected if key.endswith("num_batches_tracked")]
    filled = [key for key in counters if key not in state_dict]
    missing = [key for key in expected if key not in state_dict and key not in filled]
    if missing:
        hint = " (is this EmoNet's emonet_8.pth / emonet_5.pth?)" if len(missing) > len(expected) // 2 else ""
        raise InputFileError(pth_path, f"missing {len(missing)} EmoNet keys: {_named(missing)}{hint}")
    unexpected = [key for key in state_dict if key not in expected]
    if unexpected:
        raise InputFileError(pth_path, f"{len(unexpected)} keys EmoNet does not have: {_named(unexpected)}")
    misshaped = [
        f"{key} {list(state_dict[key].shape)} (expected {list(shape)})"
        for key, shape in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != shape
    ]
    if misshaped:
        hint = " (check --n-expression: 8 for emonet_8.pth, 5 for emonet_5.pth)" if any(
            key.startswith("emo_fc_2.3.") for key in misshaped
        ) else ""
        raise InputFileError(pth_path, f"{len(misshaped)} tensors have the wrong shape: {_named(misshaped)}{hint}")
    non_finite = [key for key, value in state_dict.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if non_finite:
        raise InputFileError(pth_path, f"non-finite values (NaN/inf) in {_named(non_finite)}")
    encoder_weights = {key: state_dict[key] for key in encoder_shapes if key in state_dict}
    for key in filled:
        if key in encoder_shapes:
            encoder_weights[key] = torch.zeros((), dtype=torch.long)
    head_weights = {key: state_dict[key] for key in head_shapes if key in state_dict}
    return encoder_weights, head_weights, filled


# ------------------------------------------------------------------------------------------------ converting
def convert_emonet_checkpoint(
    pth_path, out_dir, n_expression: int = 8, *, seed: int = 0, overwrite: bool = False, verbose: bool = True
) -> Path:
    """Convert an EmoNet checkpoint into a saved `MTCLARModel` (EmoFAN encoder) + image processor in `out_dir`."""
    import torch

    from . import MTCLARConfig, MTCLARImageProcessor, MTCLARModel
    from .errors import InputFileError
    from .io_utils import atomic_directory
    from .modeling_emofan import EmoFANEncoder

    pth_path, out_dir = Path(pth_path), Path(out_dir)
    if pth_path.is_file() and out_dir.exists() and not overwrite:  # fail before the slow part
        raise InputFileError(out_dir, "already exists (pass --overwrite to replace it)")
    state_dict = load_emonet_state_dict(pth_path)

    config = MTCLARConfig(encoder="emofan", image_size=256, resize_size=256, freeze_encoder_trunk=True, embedding_size=256)
    with torch.device("meta"):  # shapes only: check the file before paying for a real model
        layout = EmoFANEncoder(config)
    encoder_shapes, head_shapes = expected_emonet_shapes(layout, n_expression)
    encoder_weights, head_weights, filled = split_and_check(pth_path, state_dict, encoder_shapes, head_shapes)

    with torch.random.fork_rng(devices=[]):  # seeded heads without touching the caller's global RNG
        torch.manual_seed(seed)
        model = MTCLARModel(config)
    model.encoder.load_state_dict(encoder_weights, strict=True)
    model.eval()

    processor = MTCLARImageProcessor(resize_size=256, crop_size=256)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)

    if verbose:
        print_summary(pth_path, out_dir, model, len(state_dict), encoder_weights, head_weights, filled)
    return out_dir


def print_summary(
    pth_path: Path, out_dir: Path, model, num_read: int, encoder_weights: dict, head_weights: dict, filled: list
) -> None:
    encoder_params = list(model.encoder.parameters())
    frozen = sum(p.numel() for p in encoder_params if not p.requires_grad)
    trainable = sum(p.numel() for p in encoder_params if p.requires_grad)
    head_params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("encoder."))
    print(f"read      {pth_path}: {num_read} tensors")
    print(f"mapped    {len(encoder_weights)} keys <key> -> encoder.<key> (EmoFAN encoder)")
    print(f"dropped   {len(head_weights)} keys of EmoNet's head emo_fc_2.* (MT-CLAR replaces it by the identity)")
    if filled:
        print(f"filled    {len(filled)} absent num_batches_tracked counters with 0 (not used at inference)")
    print(f"encoder   {frozen:,} frozen parameters (FAN landmark trunk), {trainable:,} trainable (emotion branch)")
    print(f"heads     {head_params:,} new MT-CLAR parameters (similarity, valence and arousal difference projectors)")
    print(f"saved     {out_dir}: {', '.join(sorted(p.name for p in out_dir.iterdir()))}")


def main(argv: list[str] | None = None) -> int:
    """`python -m mtclar_hf.convert_emonet_checkpoint PTH OUT_DIR`: the same as `mtclar convert-emonet`."""
    from .cli import main as cli_main

    return cli_main(["convert-emonet", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

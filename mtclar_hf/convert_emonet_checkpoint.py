"""Convert EmoNet's pretrained `emonet_8.pth` (or `emonet_5.pth`) into an MT-CLAR model folder.

    mtclar convert-emonet emonet_8.pth models/mtclar-emofan
    python -m mtclar_hf.convert_emonet_checkpoint emonet_8.pth models/mtclar-emofan

The result is `MTCLARModel(MTCLARConfig(encoder="emofan", affect_head=True))`, saved with `save_pretrained` as
safetensors next to an `MTCLARImageProcessor` that crops faces the way EmoNet was evaluated:

* the encoder holds EmoNet's weights (the FAN landmark trunk, frozen, and the emotion branch);
* the SL head computes exactly EmoNet's own head `emo_fc_2` (Linear 256->128 with bias, BatchNorm1d, ReLU,
  Linear 128->n_expression+2, no squashing): `affect_mlp` holds the first three layers, `expression_head` rows
  0..n_expression-1 of the last one and `va_head` its last two rows (valence, arousal). So a converted folder
  labels real faces without any training, with the `offset` anchor mode (`label(s) + SL(q) - SL(s)`);
* MT-CLAR's pair heads are freshly initialised (seeded) and marked untrained (`pair_heads_trained=False`), so
  labelling offers only the modes that do not use them. The folder is also the starting point of MT-CLAR
  training, as in the paper.

Weights: EmoNet's weights come from github.com/face-analysis/emonet (`pretrained/emonet_8.pth`), released under
Creative Commons BY-NC-ND 4.0 (non-commercial, no derivatives). They are not shipped with this package and nothing
here downloads them: download them yourself and check that your use is allowed by that licence. A converted folder
is a derivative of those weights: its config records that (`provenance`), and `mtclar push` refuses it.

Safety and strictness: the file is read with `torch.load(weights_only=True)`, so no pickled code runs. EmoNet's
own loaders strip every `module.` substring (DataParallel) and then call `load_state_dict(strict=False)`, which
silently loads nothing when the names do not match; here the names must match EmoNet's layout exactly, or the
conversion stops with a one-line error naming the first missing, unexpected or mis-shaped keys (docs/EMONET.md
describes EmoNet's layout). The only tolerated
difference is absent `*.num_batches_tracked` counters (checkpoints written by PyTorch < 0.4.1 have none; inference
never reads them), which are filled with 0 and reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EMONET_HEAD_PREFIX = "emo_fc_2."
EMONET_HEAD_HIDDEN = 128
NUM_REGRESSION_OUTPUTS = 2  # valence, arousal
SHOWN_KEYS = 3  # how many offending keys an error message names
EMONET_LICENSE = "CC BY-NC-ND 4.0"
EMONET_INPUT_SIZE = 256  # EmoNet resizes face crops straight to 256 px: no centre crop
# EmoNet's evaluation crop is a square about 200 * (w + h) / 220 px wide around the 68-landmark box (w, h): for a
# square landmark box that is the box grown by (400 / 220 - 1) / 2 of its side on each side.
EMONET_FACE_MARGIN = round((400 / 220 - 1) / 2, 3)
# emo_fc_2 index -> our SL head module: Linear (0) and BatchNorm (1); ReLU (2) has no weights; 3 is split below.
EMONET_HEAD_MODULES = {"emo_fc_2.0.": "affect_mlp.0.", "emo_fc_2.1.": "affect_mlp.1."}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert-emonet",
        help="convert EmoNet's emonet_8.pth into an MT-CLAR model folder that labels real faces (anchor mode offset)",
        description=(
            "Convert EmoNet's pretrained weights (download them yourself from github.com/face-analysis/emonet; "
            "licence CC BY-NC-ND 4.0) into an MT-CLAR model folder (safetensors + config + image processor): the "
            "EmoFAN encoder and EmoNet's own valence/arousal/expression head, ready for `mtclar label --anchor offset`."
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
    """EmoNet's key -> shape: the encoder's own keys, and those of its head `emo_fc_2`."""
    encoder_shapes = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    hidden = EMONET_HEAD_HIDDEN
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
    for key in filled:
        if key in head_shapes:
            head_weights[key] = torch.zeros((), dtype=torch.long)
    return encoder_weights, head_weights, filled


def affect_head_state_dict(head_weights: dict, n_expression: int) -> dict:
    """EmoNet's `emo_fc_2.*` tensors under our SL head's names; its output layer split into expression rows and
    the valence/arousal rows."""
    renamed = {}
    for key, value in head_weights.items():
        for emonet_prefix, our_prefix in EMONET_HEAD_MODULES.items():
            if key.startswith(emonet_prefix):
                renamed[our_prefix + key[len(emonet_prefix) :]] = value
    for name in ("weight", "bias"):
        output_layer = head_weights[f"emo_fc_2.3.{name}"]
        renamed[f"expression_head.{name}"] = output_layer[:n_expression]
        renamed[f"va_head.{name}"] = output_layer[n_expression:]
    return renamed


def emonet_config(n_expression: int, pth_path: Path):
    """The MT-CLAR config of a converted folder: EmoFAN encoder, EmoNet's head as the SL head, untrained pair heads."""
    from . import MTCLARConfig

    return MTCLARConfig(
        encoder="emofan",
        image_size=EMONET_INPUT_SIZE,
        resize_size=EMONET_INPUT_SIZE,
        freeze_encoder_trunk=True,
        embedding_size=256,
        affect_head=True,
        sl_hidden_widths=[EMONET_HEAD_HIDDEN],
        sl_hidden_bias=True,
        sl_output_activation="identity",
        num_expression_classes=n_expression,  # EmoNet's order is AffectNet's: the class names follow from it
        pair_heads_trained=False,
        provenance={
            "dataset": "AffectNet (EmoNet's training)",
            "synthetic": False,
            "source": pth_path.name,
            "license": EMONET_LICENSE,
            "redistributable": False,
        },
    )


# ------------------------------------------------------------------------------------------------ converting
def convert_emonet_checkpoint(
    pth_path, out_dir, n_expression: int = 8, *, seed: int = 0, overwrite: bool = False, verbose: bool = True
) -> Path:
    """Convert an EmoNet checkpoint into a saved `MTCLARModel` (EmoFAN encoder) + image processor in `out_dir`."""
    import torch

    from . import MTCLARImageProcessor, MTCLARModel
    from .errors import InputFileError
    from .image_processing_mtclar import LANDMARK_BOX
    from .io_utils import atomic_directory
    from .modeling_emofan import EmoFANEncoder

    pth_path, out_dir = Path(pth_path), Path(out_dir)
    if pth_path.is_file() and out_dir.exists() and not overwrite:  # fail before the slow part
        raise InputFileError(out_dir, "already exists (pass --overwrite to replace it)")
    state_dict = load_emonet_state_dict(pth_path)

    config = emonet_config(n_expression, pth_path)
    with torch.device("meta"):  # shapes only: check the file before paying for a real model
        layout = EmoFANEncoder(config)
    encoder_shapes, head_shapes = expected_emonet_shapes(layout, n_expression)
    encoder_weights, head_weights, filled = split_and_check(pth_path, state_dict, encoder_shapes, head_shapes)

    with torch.random.fork_rng(devices=[]):  # seeded heads without touching the caller's global RNG
        torch.manual_seed(seed)
        model = MTCLARModel(config)
    model.encoder.load_state_dict(encoder_weights, strict=True)
    head_state = affect_head_state_dict(head_weights, n_expression)
    missing, unexpected = model.load_state_dict(head_state, strict=False)
    if unexpected or any(key.startswith(("affect_mlp.", "expression_head.", "va_head.")) for key in missing):
        raise RuntimeError(f"EmoNet's head does not map onto the SL head: {unexpected or missing}")
    model.eval()

    processor = MTCLARImageProcessor(
        resize_size=EMONET_INPUT_SIZE, crop_size=EMONET_INPUT_SIZE, face_margin=EMONET_FACE_MARGIN, face_box_source=LANDMARK_BOX
    )
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
    pair_heads = ("similarity_head.", "valence_head.", "arousal_head.", "embedding_projection.")
    head_params = sum(p.numel() for name, p in model.named_parameters() if name.startswith(pair_heads))
    print(f"read      {pth_path}: {num_read} tensors")
    print(f"mapped    {len(encoder_weights)} keys <key> -> encoder.<key> (EmoFAN encoder)")
    print(f"kept      {len(head_weights)} keys of EmoNet's head emo_fc_2.* as the SL head (anchor mode offset)")
    if filled:
        print(f"filled    {len(filled)} absent num_batches_tracked counters with 0 (not used at inference)")
    print(f"encoder   {frozen:,} frozen parameters (FAN landmark trunk), {trainable:,} trainable (emotion branch)")
    print(f"heads     {head_params:,} new, untrained MT-CLAR pair-head parameters (train them with `mtclar train`)")
    print(f"licence   EmoNet's weights are {EMONET_LICENSE}: this folder is a derivative, not for redistribution")
    print(f"saved     {out_dir}: {', '.join(sorted(p.name for p in out_dir.iterdir()))}")


def main(argv: list[str] | None = None) -> int:
    """`python -m mtclar_hf.convert_emonet_checkpoint PTH OUT_DIR`: the same as `mtclar convert-emonet`."""
    from .cli import main as cli_main

    return cli_main(["convert-emonet", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

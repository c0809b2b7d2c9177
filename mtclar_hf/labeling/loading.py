"""Loading a saved MT-CLAR model and its image processor, and building the labeller that runs them.

Labelling, the demo, the quickstart, the benchmarks and the ONNX export load models here. A model is a saved
folder or a cached Hub id. It loads with the class its config names (`MTCLARModel`, possibly
with an SL head, or `MTCLARForAffectPrediction`), never through `trust_remote_code`, and from safetensors only
(`MTCLARPreTrainedModel.from_pretrained` checks the weights against config.json first).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import ConfigError, InputFileError, MTCLARError
from .faces import DEFAULT_DETECT_EVERY, DEFAULT_DETECTOR

logger = logging.getLogger(__name__)


def looks_like_a_path(name: str) -> bool:
    """A local path rather than a Hub id (`name` or `namespace/name`)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def model_architecture(model_path) -> str:
    """The class name a saved folder's (or a cached Hub id's) config names; one-line errors for anything else."""
    from transformers import AutoConfig

    from ..hub.push import folder_architecture

    path = Path(model_path)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise InputFileError(path, "not a saved model folder (no config.json)")
        return folder_architecture(path)
    if looks_like_a_path(str(model_path)):
        raise InputFileError(model_path, "model folder not found")
    config = AutoConfig.from_pretrained(str(model_path))
    if config.model_type != "mtclar":
        raise ConfigError(f"{model_path}: a {config.model_type!r} model, not an MT-CLAR model")
    return (config.architectures or ["MTCLARModel"])[0]


def load_model_and_processor(model_path, device=None):
    """An MT-CLAR model (eval mode) and its image processor from a saved folder or a cached Hub id."""
    import torch
    from transformers.utils import logging as transformers_logging

    from .. import MTCLARForAffectPrediction, MTCLARImageProcessor, MTCLARModel

    transformers_logging.disable_progress_bar()  # our own bars say what is happening; weight loading is instant
    try:
        architecture = model_architecture(model_path)
        model_class = MTCLARForAffectPrediction if architecture == MTCLARForAffectPrediction.__name__ else MTCLARModel
        model = model_class.from_pretrained(str(model_path))
    except MTCLARError:
        raise
    except (OSError, ValueError, RuntimeError) as err:
        raise InputFileError(model_path, f"cannot load the model: {str(err).splitlines()[0]}") from None
    try:
        processor = MTCLARImageProcessor.from_pretrained(str(model_path))
    except OSError:
        # A folder saved without its processor: the model config knows its input size.
        config = model.config
        processor = MTCLARImageProcessor(resize_size=config.resize_size, crop_size=config.image_size)
        logger.warning(
            "%s: no preprocessor_config.json; using resize %d, crop %d", model_path, config.resize_size, config.image_size
        )
    if device is not None:
        model.to(torch.device(device))
    return model.eval(), processor


def backend_encoder(backend: str, model_path, device=None, compile: bool = False):
    """The encoder of a backend: None for "torch" (the labeller's own), onnxruntime on the model's ONNX export
    (exported into the model folder first when missing) for "onnx"."""
    if backend == "torch":
        return None
    if backend != "onnx":
        raise ConfigError(f"unknown encoder backend {backend!r} (use torch or onnx)")
    if compile:
        raise ConfigError("--compile applies to the torch backend, not to --backend onnx")
    from ..export.onnx_export import onnx_encoder_for

    return onnx_encoder_for(model_path, device=device)


def make_labeler(
    model,
    processor,
    *,
    detector=DEFAULT_DETECTOR,
    follow="largest",
    batch_size: int = 64,
    detector_scale: float | None = None,
    box_smoothing: float = 0.5,
    detect_every: int = DEFAULT_DETECT_EVERY,
    face_workers: int | None = None,
    compile: bool = False,
    backend: str = "torch",
    model_path=None,
    device=None,
):
    """A `FewShotVideoLabeler` on a loaded model, with `follow` checked ("largest" or a face index, also as text)
    and the encoder of `backend`; `model_path` and `device` locate and place the ONNX export for "onnx"."""
    from .faces import parse_follow
    from .labeler import FewShotVideoLabeler

    return FewShotVideoLabeler(
        model,
        processor,
        detector=detector,
        batch_size=batch_size,
        follow=parse_follow(follow),
        detector_scale=detector_scale,
        box_smoothing=box_smoothing,
        detect_every=detect_every,
        face_workers=face_workers,
        compile=compile,
        encoder=backend_encoder(backend, model_path, device=device, compile=compile),
    )

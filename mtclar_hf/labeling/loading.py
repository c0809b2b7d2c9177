"""Loading a saved MT-CLAR model and its image processor, as labelling, the demo and the ONNX export need them.

A model is a saved folder or a cached Hub id. It loads with the class its config names (`MTCLARModel`, possibly
with an SL head, or `MTCLARForAffectPrediction`), never through `trust_remote_code`, and from safetensors only
(`MTCLARPreTrainedModel.from_pretrained` checks the weights against config.json first).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import ConfigError, InputFileError, MTCLARError

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

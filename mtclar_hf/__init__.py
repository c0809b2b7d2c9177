"""mtclar_hf: MT-CLAR, few-shot multi-task contrastive valence/arousal labelling, the Hugging Face way.

Importing the package registers the MT-CLAR config, models and image processor with transformers'
Auto classes, and marks them for `save_pretrained` to write `auto_map` and copy the code files, so a
saved folder also loads with `trust_remote_code=True` where this package is not installed.
"""

__version__ = "0.1.0"

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification

from .configuration_mtclar import AFFECTNET_CLASS_NAMES, MTCLARConfig
from .image_processing_mtclar import MTCLARImageProcessor
from .modeling_mtclar import (
    MTCLARAffectOutput,
    MTCLARForAffectPrediction,
    MTCLARModel,
    MTCLAROutput,
    MTCLARPreTrainedModel,
)

AutoConfig.register(MTCLARConfig.model_type, MTCLARConfig, exist_ok=True)
AutoModel.register(MTCLARConfig, MTCLARModel, exist_ok=True)
AutoModelForImageClassification.register(MTCLARConfig, MTCLARForAffectPrediction, exist_ok=True)
MTCLARConfig.register_for_auto_class()
MTCLARModel.register_for_auto_class("AutoModel")
MTCLARForAffectPrediction.register_for_auto_class("AutoModelForImageClassification")

AutoImageProcessor.register(MTCLARConfig, slow_image_processor_class=MTCLARImageProcessor, exist_ok=True)
MTCLARImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "AFFECTNET_CLASS_NAMES",
    "MTCLARAffectOutput",
    "MTCLARConfig",
    "MTCLARForAffectPrediction",
    "MTCLARImageProcessor",
    "MTCLARModel",
    "MTCLAROutput",
    "MTCLARPreTrainedModel",
    "__version__",
]

"""Few-shot video labelling with MT-CLAR: video IO, face finding, support strategies, the labeller, evaluation.

Heavy libraries (torch, av, cv2, pandas) are imported by the submodules, so `import mtclar_hf.labeling`
only pays for them when the labeller itself is used.
"""

from .labeler import ALL_MODES, ANCHOR_MODES, BASELINES, EncodedVideo, FewShotVideoLabeler, predict_from_anchors
from .loading import load_model_and_processor
from .support import STRATEGIES, read_support_csv, select_support

__all__ = [
    "ALL_MODES",
    "ANCHOR_MODES",
    "BASELINES",
    "STRATEGIES",
    "EncodedVideo",
    "FewShotVideoLabeler",
    "load_model_and_processor",
    "predict_from_anchors",
    "read_support_csv",
    "select_support",
]

"""Datasets for MT-CLAR: AffectNet and AFEW-VA loaders, group k-fold splits, pair sampling, augmentation.

Names are imported lazily (PEP 562) so that ``mtclar --help``, which imports ``mtclar_hf.data.cli``,
does not pay for datasets, torch or OpenCV.
"""

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "AFFECTNET_NAMES": "affectnet",
    "affectnet_features": "affectnet",
    "build_affectnet": "affectnet",
    "detect_layout": "affectnet",
    "prepare_affectnet": "affectnet",
    "AfewVaClip": "afew_va",
    "afew_va_features": "afew_va",
    "build_afew_va": "afew_va",
    "iter_prepared_clips": "afew_va",
    "load_afew_va_clips": "afew_va",
    "prepare_afew_va": "afew_va",
    "assign_group_folds": "splits",
    "fold_column_name": "splits",
    "kfold_splits": "splits",
    "PairDataset": "pairs",
    "wheel_similarity": "pairs",
    "EvalTransform": "transforms",
    "TrainAugment": "transforms",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""A saved tiny MT-CLAR folder (weights, config, processor, code files) shared by the hub tests of a module."""

import pytest
import torch

from mtclar_hf import MTCLARImageProcessor, MTCLARModel
from mtclar_hf.testing_utils import tiny_config

# The shape of `mtclar evaluate --out metrics.json` (mtclar_hf.labeling.evaluation.evaluate_afew_va),
# trimmed to what the card reads: pooled metrics per anchor mode, the support fraction, the protocol.
EVALUATE_REPORT = {
    "model": "outputs/mtclar/final",
    "data": "/data/synth/afew_va",
    "protocol": {"strategy": "every-k", "k": 20, "anchor_modes": ["latest", "fused"], "baselines": ["hold", "interpolate"]},
    "same_video": {
        "num_videos": 6,
        "support_fraction": 0.0561,
        "pooled": {
            "latest": {"valence_rmse": 0.21, "valence_pcc": 0.71, "valence_ccc": 0.683, "valence_sagr": 0.8,
                       "arousal_rmse": 0.25, "arousal_pcc": 0.61, "arousal_ccc": 0.552, "arousal_sagr": 0.74},
            "fused": {"valence_rmse": 0.19, "valence_pcc": 0.74, "valence_ccc": 0.702, "valence_sagr": 0.82,
                      "arousal_rmse": 0.24, "arousal_pcc": None, "arousal_ccc": 0.571, "arousal_sagr": 0.75},
            "hold": {"valence_rmse": 0.3, "valence_pcc": 0.5, "valence_ccc": 0.45, "valence_sagr": 0.7,
                     "arousal_rmse": 0.31, "arousal_pcc": 0.4, "arousal_ccc": 0.39, "arousal_sagr": 0.66},
        },
        "video_mean": {},
        "per_video": {},
    },
    "cross_actor": {
        "num_videos": 6,
        "support_fraction": 0.0561,
        "pooled": {"latest": {"valence_rmse": 0.35, "valence_pcc": 0.41, "valence_ccc": 0.333, "valence_sagr": 0.6,
                              "arousal_rmse": 0.36, "arousal_pcc": 0.3, "arousal_ccc": 0.28, "arousal_sagr": 0.55}},
    },
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """What `mtclar train` leaves in outputs/.../final: save_pretrained + processor + training records."""
    import json

    folder = tmp_path_factory.mktemp("trained") / "final"
    torch.manual_seed(0)
    MTCLARModel(tiny_config()).eval().save_pretrained(folder)
    MTCLARImageProcessor(resize_size=72, crop_size=64).save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({
        "eval": {"loss": 0.9, "num_pairs": 64, "similarity_accuracy": 0.625, "valence_diff_ccc": 0.41,
                 "valence_diff_rmse": 0.52, "arousal_diff_ccc": 0.33, "arousal_diff_rmse": 0.6,
                 "same_identity_similarity_accuracy": 0.5, "same_identity_valence_diff_ccc": 0.52},
        "global_step": 20,
        "epoch": 2,
    }))
    (folder / "training_config.json").write_text(json.dumps({
        "stage": "mtclar", "seed": 5,
        "data": {"dataset": None, "synth": {"seed": 0, "identities": 24, "train_images": 2000}, "pair_mode": "category",
                 "identity": "any", "augment": True},
        "training": {"batch_size": 32, "epochs": 2, "max_steps": None, "mixed_precision": "no"},
        "optim": {"lr": 0.0001, "weight_decay": 0.0001}, "schedule": {"name": "plateau"},
    }))
    return folder


@pytest.fixture
def evaluate_report():
    import copy

    return copy.deepcopy(EVALUATE_REPORT)

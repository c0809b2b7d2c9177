"""Helpers for the training tests: a tiny prepared dataset built in the test (no renderer needed) and
config files for a tiny model."""

import json

import numpy as np
import yaml

from mtclar_hf.testing_utils import TINY_RESNET

TINY_MODEL = {
    "encoder": "backbone",
    "backbone_config": {"model_type": "resnet", **TINY_RESNET},
    "embedding_size": 32,
    "projector_widths": [32, 16],
    "sl_hidden_widths": [32, 16],
    "image_size": 32,
    "resize_size": 36,
    "dropout": 0.2,
}


def build_tiny_dataset(out_dir, num_train: int = 64, num_val: int = 32, size: int = 40, seed: int = 0):
    """A prepared AffectNet-like DatasetDict (train/validation) of random-texture images, 4 categories,
    4 identities per split, written with save_to_disk like `mtclar prepare affectnet`."""
    import datasets

    from mtclar_hf.data.affectnet import affectnet_features

    rng = np.random.default_rng(seed)
    splits = {}
    for split, count in (("train", num_train), ("validation", num_val)):
        expression = np.arange(count) % 4
        base = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60]], dtype=np.float32)[expression]
        images = [
            np.clip(base[i] + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8) for i in range(count)
        ]
        valence = np.clip(np.array([0.6, 0.2, -0.5, -0.1])[expression] + rng.normal(0, 0.1, count), -1, 1)
        arousal = np.clip(np.array([0.3, -0.4, 0.1, 0.7])[expression] + rng.normal(0, 0.1, count), -1, 1)
        splits[split] = datasets.Dataset.from_dict(
            {
                "image": images,
                "expression": expression.tolist(),
                "valence": valence.astype(np.float32).tolist(),
                "arousal": arousal.astype(np.float32).tolist(),
                "face_box": [[4.0, 4.0, size - 8.0, size - 8.0]] * count,
                "landmarks": [[0.0] * 136] * count,
                "image_id": [f"{split}/{i}.jpg" for i in range(count)],
                "identity": [f"{split}_person{(i // 4) % 4}" for i in range(count)],
            },
            features=affectnet_features(),
        )
    datasets.DatasetDict(splits).save_to_disk(str(out_dir))
    return out_dir


def write_config(path, dataset_dir, output_dir, **sections):
    """A YAML config for the tiny model on `dataset_dir`; `sections` update the defaults section by section."""
    config = {
        "stage": "mtclar",
        "seed": 3,
        "output_dir": str(output_dir),
        "model": {"config": dict(TINY_MODEL)},
        "data": {"dataset": str(dataset_dir), "same_identity_fraction": 0.25, "train_pairs": 48, "validation_pairs": 32},
        "training": {"batch_size": 8, "epochs": 2},
        "optim": {"lr": 1e-3},
        "schedule": {"name": "plateau", "patience": 0, "factor": 0.5, "warmup_steps": 2},
        "checkpointing": {"every_n_steps": 4, "keep_last": 2},
        "logging": {"every_n_steps": 2, "tensorboard": False, "progress_bar": False},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    path.write_text(json.dumps(config) if str(path).endswith(".json") else yaml.safe_dump(config))
    return path

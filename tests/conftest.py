"""Test-wide settings: everything offline, tiny models, shared media located once."""

import os
from pathlib import Path

import pytest

# Set before any Hugging Face library is imported by a test module.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_FACES = REPO_ROOT.parent / "shared" / "data" / "real_faces"


@pytest.fixture(scope="session")
def real_faces_dir() -> Path:
    """The shared folder of real face clips; tests that need it skip when it is absent."""
    if not (REAL_FACES / "single_face.mp4").exists():
        pytest.skip(f"shared real-face media not found at {REAL_FACES}")
    return REAL_FACES


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random MT-CLAR model and its processor, saved like a real one."""
    import torch

    from mtclar_hf import MTCLARImageProcessor, MTCLARModel
    from mtclar_hf.testing_utils import tiny_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_model")
    MTCLARModel(tiny_config()).save_pretrained(path)
    MTCLARImageProcessor(resize_size=72, crop_size=64).save_pretrained(path)
    return path


# The learning test (a whole quickstart, about 8 minutes) is collected first, so pytest-xdist starts it
# at once on one worker instead of two minutes in, when it used to run on alone at the end. (Grouping it
# with `--dist loadgroup` was measured slower: the other modules' fixtures then ran on both workers.)
LONGEST_FIRST = ("tests/training/test_learning.py",)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))

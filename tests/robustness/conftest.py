"""Fixtures for the robustness tests: a tiny saved model and a short good video; every bad input is made
from these in the test's own tmp_path (see bad_inputs.py)."""

import sys
from pathlib import Path

import pytest

# The training helpers (tiny dataset and config) live beside the training tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

GOOD_FRAMES = 12
FRAME_SIZE = 64


@pytest.fixture(scope="session")
def good_frames():
    """12 SynthAffect face frames, 64 px (already face crops: label them with --no-detect)."""
    from mtclar_hf.data.synth import render_clip

    return render_clip(3, GOOD_FRAMES, image_size=FRAME_SIZE).frames


@pytest.fixture(scope="session")
def good_video(tmp_path_factory, good_frames):
    from mtclar_hf.labeling.video import write_video

    return write_video(good_frames, tmp_path_factory.mktemp("videos") / "good.mp4", fps=25)


@pytest.fixture
def workspace(tmp_path, tiny_model_dir, good_video, good_frames):
    from bad_inputs import Workspace

    return Workspace(tmp_path, tiny_model_dir, good_video, good_frames)

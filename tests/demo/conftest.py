"""Fixtures for the demo tests: a tiny saved model, the app (handlers only), short clips to upload."""

import contextlib
import os
import warnings

import pandas as pd
import pytest

# gradio 6.31's queue code trips a pandas 3 deprecation warning; it is not ours to fix.
with contextlib.suppress(AttributeError):
    warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)

UPLOAD_FRAMES = 48
UPLOAD_SIZE = 80


@pytest.fixture(scope="session", autouse=True)
def gradio_cache(tmp_path_factory):
    """Gradio's upload/output cache in this test session's temp folder, not the machine-wide /tmp/gradio."""
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio-cache"))
    yield


@pytest.fixture(scope="session")
def app_module():
    from mtclar_hf.demo_loading import load_demo_module

    return load_demo_module()


@pytest.fixture(scope="module")
def demo(app_module, tiny_model_dir, tmp_path_factory):
    """The app's handlers with one example clip; its temp folder is checked to be removed on close."""
    app = app_module.LabellingDemo(default_model=str(tiny_model_dir), workdir=tmp_path_factory.mktemp("demo"), example_seeds=(3,))
    yield app
    app.close()
    assert not app.workdir.exists()


@pytest.fixture(scope="session")
def server(app_module, tiny_model_dir, tmp_path_factory):
    """The app served on 127.0.0.1 (one per test process); its temp folder must be gone after close."""
    model = os.environ.get("MTCLAR_DEMO_TEST_MODEL") or str(tiny_model_dir)  # a trained model for the README shot
    app = app_module.LabellingDemo(default_model=model, workdir=tmp_path_factory.mktemp("served"), example_seeds=(3,))
    app.build()
    app.launch(host="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield app
    app.close()
    assert not app.workdir.exists()


@pytest.fixture(scope="session")
def upload_clip(tmp_path_factory):
    """A short SynthAffect clip that is NOT one of the app's examples (so no true labels are known)."""
    from mtclar_hf.data.synth import render_clip
    from mtclar_hf.labeling.video import write_video

    clip = render_clip(101, UPLOAD_FRAMES, image_size=UPLOAD_SIZE, seed=5)
    return write_video(clip.frames, tmp_path_factory.mktemp("uploads") / "my clip.mp4", fps=clip.fps)


class RecordingProgress:
    """Stands in for gr.Progress when handlers are called directly; remembers what was reported."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))


@pytest.fixture
def progress():
    return RecordingProgress()

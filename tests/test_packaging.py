"""A regular (non-editable) install carries what the commands read beside the code: recipes, card templates and
the demo app. The last test is the wheel job: build the wheel, install it into a fresh venv, and use the three
commands that read shipped files from a folder outside the checkout."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from mtclar_hf import resources

REPO_ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCES = (".git", ".venv", "outputs", "build", "*.egg-info", "__pycache__", ".pytest_cache")
TINY_TRAINING = [
    "data.synth.identities=6", "data.synth.train_images=48", "data.synth.val_images=16", "data.synth.size=48",
    "data.synth.clips=1", "data.synth.frames=10", "data.synth.val_clips=0", "data.train_pairs=32",
    "data.validation_pairs=16",
    "model.config.backbone_config={model_type: resnet, embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: basic}",
    "model.config.embedding_size=16", "model.config.projector_widths=[16]", "model.config.image_size=32",
    "model.config.resize_size=36", "training.batch_size=8", "training.epochs=1", "checkpointing.every_n_steps=100",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Offline: the venv's own setuptools builds it, nothing is fetched. It builds from a copy of the sources:
    # setuptools' build/ folder keeps files a checkout has since deleted, and they would ride into the wheel.
    folder = tmp_path_factory.mktemp("wheel")
    sources = shutil.copytree(REPO_ROOT, folder / "sources", ignore=shutil.ignore_patterns(*NOT_SOURCES))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         str(folder), str(sources)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    return next(folder.glob("mtclar_hf-*.whl"))


def test_the_wheel_ships_recipes_card_templates_and_the_demo_app(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind, (source, pattern) in resources.SHIPPED.items():
        expected = {f"mtclar_hf/{kind}/{path.name}" for path in (REPO_ROOT / source).glob(pattern)}
        assert expected and expected <= names, (kind, sorted(expected - names))


def test_shipped_files_prefer_the_installed_copy(tmp_path, monkeypatch):
    package = tmp_path / "site" / "mtclar_hf"
    (package / "recipes").mkdir(parents=True)
    (package / "recipes" / "synth_quick.yaml").write_text("stage: mtclar\n")
    monkeypatch.setattr(resources, "package_folder", lambda: package)
    assert resources.shipped_file("recipes", "synth_quick.yaml") == package / "recipes" / "synth_quick.yaml"


def test_a_checkout_finds_its_own_folders():
    assert resources.shipped_file("recipes", "synth_quick.yaml") == REPO_ROOT / "configs" / "synth_quick.yaml"
    assert resources.shipped_file("demo_app", "app.py") == REPO_ROOT / "demo" / "app.py"


def fresh_venv_with_the_wheel(folder: Path, wheel: Path) -> Path:
    """A new venv holding the wheel as a regular install. Its dependencies are the test venv's packages, reached
    through a path line: CI is offline, and a .pth line adds a folder without running that folder's own .pth files,
    so the checkout's editable install stays out of it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    site_packages = next((folder / "lib").glob("python3*/site-packages"))
    (site_packages / "test_dependencies.pth").write_text(
        "\n".join(path for path in sys.path if path.endswith("site-packages")) + "\n"
    )
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    str(wheel)], check=True, timeout=300, capture_output=True)
    return folder / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_page(url: str, server: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1][-3000:]
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(1)
    raise AssertionError(f"no page at {url} within {timeout} s")


def test_a_regular_install_trains_pushes_and_serves_the_demo_outside_the_checkout(wheel, tmp_path):
    bin_dir = fresh_venv_with_the_wheel(tmp_path / "venv", wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}

    def mtclar(*args, timeout=300):
        result = subprocess.run([str(bin_dir / "mtclar"), *args], cwd=work, env=env, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, (args[0], result.stderr[-3000:])
        return result

    located = subprocess.run([str(bin_dir / "python"), "-c", "import mtclar_hf; print(mtclar_hf.__file__)"],
                             cwd=work, env=env, capture_output=True, text=True, check=True)
    assert Path(located.stdout.strip()).is_relative_to(tmp_path / "venv"), located.stdout

    training = ["train", "--config", "synth_quick", "--output-dir", "run", "--set", "data.synth.cache_dir=cache"]
    for assignment in TINY_TRAINING:
        training += ["--set", assignment]
    mtclar(*training)
    model = work / "run" / "final"
    assert (model / "model.safetensors").is_file()

    mtclar("push", str(model), "--out", "card")
    assert "SynthAffect" in (work / "card" / "README.md").read_text()

    port = free_port()
    server = subprocess.Popen([str(bin_dir / "mtclar"), "demo", "--model", str(model), "--port", str(port)],
                              cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = wait_for_page(f"http://127.0.0.1:{port}/", server, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "<html" in page.lower() and "gradio" in page.lower()

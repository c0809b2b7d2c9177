"""A regular (non-editable) install carries what the commands read beside the code: recipes, card
templates and the demo app, and the package finds them there."""

import subprocess
import sys
import zipfile
from pathlib import Path

from mtclar_hf import resources

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_recipes_card_templates_and_the_demo_app(tmp_path):
    # Offline: the venv's own setuptools builds it, nothing is fetched.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         str(tmp_path), str(REPO_ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    for kind, (source, pattern) in resources.SHIPPED.items():
        expected = {f"mtclar_hf/{kind}/{path.name}" for path in (REPO_ROOT / source).glob(pattern)}
        assert expected and expected <= names, (kind, sorted(expected - names))


def test_shipped_files_prefer_the_installed_copy(tmp_path, monkeypatch):
    package = tmp_path / "site" / "mtclar_hf"
    (package / "recipes").mkdir(parents=True)
    (package / "recipes" / "synth_quick.yaml").write_text("stage: mtclar\n")
    monkeypatch.setattr(resources, "__file__", str(package / "resources.py"))
    assert resources.shipped_file("recipes", "synth_quick.yaml") == package / "recipes" / "synth_quick.yaml"


def test_a_checkout_finds_its_own_folders():
    assert resources.shipped_file("recipes", "synth_quick.yaml") == REPO_ROOT / "configs" / "synth_quick.yaml"
    assert resources.shipped_file("demo_app", "app.py") == REPO_ROOT / "demo" / "app.py"

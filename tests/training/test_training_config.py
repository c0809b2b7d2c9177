"""Training configs: shipped examples parse; unknown keys, wrong types and bad values are one-line errors."""

import json
from pathlib import Path

import pytest
from training_helpers import write_config

from mtclar_hf.errors import ConfigError
from mtclar_hf.training.config import TrainConfig, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["synth_quick.yaml", "synth_quick_same_identity.yaml", "affectnet_paper.yaml", "sl.yaml"])
def test_shipped_configs_parse(name):
    config = load_config(CONFIGS / name)
    assert isinstance(config, TrainConfig)


def test_paper_recipe_values():
    paper = load_config(CONFIGS / "affectnet_paper.yaml")
    assert (paper.optim.lr, paper.optim.weight_decay, paper.training.batch_size, paper.training.epochs, paper.seed) == (
        1e-4, 1e-4, 256, 40, 5)
    assert (paper.schedule.name, paper.schedule.factor, paper.schedule.patience) == ("plateau", 0.1, 5)
    assert paper.data.categories == [0, 1, 2, 3, 4, 5, 6] and paper.data.pair_mode == "category"
    assert paper.model.config["image_size"] == 256 and paper.model.config["encoder"] == "emofan"
    sl = load_config(CONFIGS / "sl.yaml")
    assert (sl.stage, sl.optim.lr, sl.training.batch_size, sl.training.epochs) == ("sl", 1e-3, 512, 60)
    assert (sl.schedule.name, sl.schedule.step_size, sl.schedule.gamma, sl.data.weighted_sampling) == ("step", 15, 0.1, True)


def test_overrides_are_parsed_as_yaml(tmp_path):
    path = write_config(tmp_path / "c.yaml", tmp_path, tmp_path / "out")
    config = load_config(path, ["optim.lr=3e-4", "training.epochs=7", "data.categories=[0, 1]", "model.config.dropout=0.3"])
    assert config.optim.lr == 3e-4 and config.training.epochs == 7 and config.data.categories == [0, 1]
    assert config.model.config["dropout"] == 0.3


def test_json_configs_work_too(tmp_path):
    path = write_config(tmp_path / "c.json", tmp_path, tmp_path / "out")
    assert load_config(path).training.batch_size == json.loads(path.read_text())["training"]["batch_size"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["optim.lrr=1"], "unknown key optim.'lrr'"),
        (["trainig.epochs=1"], "unknown key 'trainig'"),
        (["training.epochs=two"], "training.epochs must be an integer"),
        (["training.epochs=1.5"], "training.epochs must be an integer"),
        (["logging.tensorboard=3"], "logging.tensorboard must be true or false"),
        (["optim.lr=fast"], "optim.lr must be a number"),
        (["optim.lr=-1"], "optim.lr must be > 0"),
        (["schedule.name=linear"], "schedule.name must be one of"),
        (["stage=pretrain"], "stage must be one of"),
        (["model.config.fusion=sum"], "model.config: fusion must be one of"),
        (["model.config.hidden=3"], "unknown key model.config.hidden"),
        (["data.synth={seed: 0}"], "exactly one of data.dataset"),
        (["optim"], "expected KEY=VALUE"),
        (["data.clip_pairs_fraction=0.5"], "data.clip_pairs_fraction needs clips"),
        (["data.box_jitter=0.7"], "data.box_jitter must be in [0, 0.5)"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, overrides, expected):
    path = write_config(tmp_path / "c.yaml", tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    if not overrides[0].startswith("optim="):
        assert message.startswith(str(path)) or message.startswith("--set")


def test_bad_config_is_one_line_from_both_commands(tmp_path, capsys):
    import subprocess
    import sys

    from mtclar_hf.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: mtclar\noptim:\n  learning_rate: 0.1\n")
    assert main(["train", "--config", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"mtclar train: error: {bad}: unknown key optim.'learning_rate' (known in optim: lr, weight_decay, betas, max_grad_norm)"

    missing = tmp_path / "missing.yaml"
    result = subprocess.run([sys.executable, "-m", "mtclar_hf.train", "--config", str(missing)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"mtclar train: error: {missing}: config file not found"]

    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("optim: [unclosed\n")
    assert main(["train", "--config", str(not_yaml)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mtclar train: error: {not_yaml}: not valid YAML") and "\n" not in err


def test_missing_dataset_folder_is_one_line(tmp_path, capsys):
    from mtclar_hf.cli import main

    path = write_config(tmp_path / "c.yaml", tmp_path / "nowhere", tmp_path / "out")
    assert main(["train", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "nowhere" in err and "not a prepared dataset folder" in err and "\n" not in err


def test_training_provenance_carries_the_data_and_the_terms_of_the_starting_weights():
    from types import SimpleNamespace

    from mtclar_hf.training.data import training_provenance

    synth_config = SimpleNamespace(data=SimpleNamespace(synth=object()))
    unprepared = SimpleNamespace(info=SimpleNamespace(description=""))
    assert training_provenance(synth_config, unprepared, None) == {"dataset": "SynthAffect", "synthetic": True}
    real = SimpleNamespace(info=SimpleNamespace(description="x\nface_box_source: landmarks68\ndataset: AffectNet\nsynthetic: false"))
    emonet = {"dataset": "AffectNet (EmoNet's training)", "synthetic": False, "source": "emonet_8.pth",
              "license": "CC BY-NC-ND 4.0", "redistributable": False}
    prepared_config = SimpleNamespace(data=SimpleNamespace(synth=None))
    fine_tuned = training_provenance(prepared_config, real, emonet)
    assert fine_tuned["dataset"] == "AffectNet" and fine_tuned["started_from"] == emonet["dataset"]
    assert fine_tuned["redistributable"] is False and fine_tuned["license"] == "CC BY-NC-ND 4.0"
    # Synthetic-only only when every part of the training was: SynthAffect on top of EmoNet saw real faces.
    assert training_provenance(synth_config, unprepared, emonet)["synthetic"] is False
    assert training_provenance(prepared_config, unprepared, None) is None
    # A recipe rendering SynthAffect is synthetic even if an older cache's splits say otherwise.
    assert training_provenance(synth_config, real, None) == {"dataset": "SynthAffect", "synthetic": True}


def test_a_shipped_recipe_loads_by_name_from_anywhere(tmp_path, monkeypatch):
    from mtclar_hf.training.config import load_config, resolve_recipe

    monkeypatch.chdir(tmp_path)  # outside the checkout: only the package can resolve the name
    assert resolve_recipe("synth_quick").name == "synth_quick.yaml"
    assert load_config("synth_quick").data.synth.val_clips == 16
    recipe = resolve_recipe("synth_quick").read_text()
    (tmp_path / "synth_quick").write_text(recipe.replace("\nseed: 5\n", "\nseed: 3\n"))  # a file of that name wins
    assert load_config("synth_quick").seed == 3


def test_an_unknown_recipe_name_lists_the_shipped_ones(tmp_path, monkeypatch, capsys):
    from mtclar_hf.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "synth_quik"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mtclar train: error: synth_quik: neither a config file nor a shipped recipe") and "\n" not in err
    assert "synth_quick" in err and "affectnet_paper" in err

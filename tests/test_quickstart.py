"""`mtclar quickstart` end to end, as a user runs it, on a tiny version of the quick recipe."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from mtclar_hf import quickstart
from mtclar_hf.cli import main
from mtclar_hf.errors import InputFileError
from mtclar_hf.training.config import load_config


@pytest.fixture
def tiny_recipe(tmp_path):
    """The shipped quick recipe, shrunk: same sections and switches, a few seconds of rendering and training."""
    recipe = yaml.safe_load(quickstart.QUICK_RECIPE.read_text())
    recipe["model"]["config"].update(
        backbone_config={"model_type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "layer_type": "basic"},
        embedding_size=16, projector_widths=[16], image_size=32, resize_size=36,
    )
    recipe["data"]["synth"].update(
        identities=12, train_images=48, val_images=16, clips=2, frames=60, size=48, cache_dir=str(tmp_path / "cache"),
        train_clips=3, train_clip_frames=8,
    )
    recipe["data"].update(train_pairs=64, validation_pairs=32)
    recipe["training"].update(batch_size=16, epochs=1)
    recipe["schedule"]["warmup_steps"] = 1
    recipe["checkpointing"]["every_n_steps"] = 2
    path = tmp_path / "tiny_quick.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_the_shipped_recipe_is_the_quick_recipe_with_held_out_clips():
    config = load_config(quickstart.QUICK_RECIPE)
    assert config.data.synth.clips >= 8 and config.data.synth.frames >= 300
    assert config.model.config["fusion"] == "diff" and config.model.config["difference_head_widths"] == []
    # What real AffectNet allows: no identities; two frames of one person come from clips instead.
    assert config.data.identity == "any" and config.data.same_identity_fraction == 0.0
    assert config.data.clip_pairs_fraction > 0 and config.data.synth.train_clips > 0


def test_quickstart_trains_labels_and_reports(tiny_recipe, tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--config", str(tiny_recipe), "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    assert quickstart.is_model_folder(out / "model")
    for name, _ in quickstart.SUPPORT_SETTINGS:
        assert name in printed
    assert "detector path: a face (and its 68 landmarks) found in" in printed
    paths = json.loads((out / "report.json").read_text())["paths"]
    assert set(paths) == {"landmarks (the clips' own)", "detector -> predicted landmarks", "landmarks, detector's frames only"}
    report = paths["landmarks (the clips' own)"]
    assert set(report) == {name for name, _ in quickstart.SUPPORT_SETTINGS}
    fractions = [report[name]["support_fraction"] for name, _ in quickstart.SUPPORT_SETTINGS]
    assert fractions == sorted(fractions) and fractions[0] < 0.05 <= fractions[-1] < 0.1
    for section in report.values():
        assert {"latest", "fused", "hold", "interpolate"} <= set(section["pooled"])
        assert all(np.isfinite(section["pooled"][m]["valence_ccc"]) for m in section["pooled"])
    # With only the first frame labelled, the two baselines are the same prediction.
    first = report["first frame only"]["pooled"]
    assert first["hold"]["valence_ccc"] == pytest.approx(first["interpolate"]["valence_ccc"])
    # The model records the crop it was trained on: SynthAffect prepared around its landmarks.
    assert json.loads((out / "model" / "preprocessor_config.json").read_text())["face_box_source"] == "landmarks68"

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["same_video"]["support_fraction"] == pytest.approx(fractions[-1])
    # The model's modes, `auto` first, are what a model card reports as the model; only the two are baselines.
    assert metrics["protocol"]["anchor_modes"][0] == "auto" and metrics["protocol"]["baselines"] == ["hold", "interpolate"]
    from mtclar_hf.hub.cards import result_groups

    baselines = {group.name for group in result_groups(metrics) if group.is_baseline}
    assert baselines == {"same-video anchors, hold (baseline)", "same-video anchors, interpolate (baseline)"}
    table = pd.read_csv(out / "labels.csv")
    assert {"frame", "timestamp", "valence", "arousal", "is_support", "true_valence"} <= set(table.columns)
    support = table[table["is_support"]]
    np.testing.assert_allclose(support["valence"], support["true_valence"])  # support keeps the user's labels
    assert (out / "labels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A second run reuses the trained model instead of training again.
    before = (out / "model" / "model.safetensors").stat().st_mtime_ns
    assert main(["quickstart", "--config", str(tiny_recipe), "--out", str(out)]) == 0
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns == before


def test_quickstart_needs_held_out_clips(tiny_recipe, tmp_path):
    recipe = yaml.safe_load(tiny_recipe.read_text())
    recipe["data"]["synth"]["clips"] = 0
    tiny_recipe.write_text(yaml.safe_dump(recipe))
    with pytest.raises(InputFileError, match="clips >= 1"):
        quickstart.quick_config(tiny_recipe, tmp_path)

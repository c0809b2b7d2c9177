"""Checkpoints and --resume: an interrupted run ends with exactly the weights of an uninterrupted one."""

import json

import pytest
from safetensors.torch import load_file
from training_helpers import write_config

from mtclar_hf.training.checkpoints import complete_checkpoints
from mtclar_hf.training.config import load_config
from mtclar_hf.training.loop import train


def run(config_path, output_dir, resume=False, overrides=()):
    config = load_config(config_path, [f"output_dir={output_dir}", *overrides])
    return train(config, resume=resume)


def test_resume_equals_uninterrupted(tmp_path, tiny_dataset):
    # 2 epochs of 6 optimizer steps with gradient accumulation 2 (12 micro-batches per epoch), random task
    # weights, dropout, augmentation and a plateau schedule: everything that could drift on resume.
    config_path = write_config(tmp_path / "config.yaml", tiny_dataset, tmp_path / "unused",
                               training={"batch_size": 4, "epochs": 2, "gradient_accumulation_steps": 2})
    whole = run(config_path, tmp_path / "whole")
    assert whole["global_step"] == 12

    # "Interrupted" at step 9, in the second epoch; the step-9 checkpoint is made to look half-written (its
    # temporary name), so --resume must take step 8 and skip the 4 micro-batches of epoch 2 already seen.
    first = run(config_path, tmp_path / "split", overrides=["training.max_steps=9"])
    assert first["global_step"] == 9
    checkpoints = tmp_path / "split" / "checkpoints"
    (checkpoints / "step-00000009").rename(checkpoints / ".step-00000009.tmp")
    assert [p.name for p in complete_checkpoints(tmp_path / "split")] == ["step-00000008"]
    resumed = run(config_path, tmp_path / "split", resume=True)
    assert resumed["global_step"] == 12

    whole_weights = load_file(tmp_path / "whole" / "final" / "model.safetensors")
    resumed_weights = load_file(tmp_path / "split" / "final" / "model.safetensors")
    assert whole_weights.keys() == resumed_weights.keys()
    different = [name for name in whole_weights if not (whole_weights[name] == resumed_weights[name]).all()]
    assert not different, f"weights differ after resume: {different[:5]}"
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    assert resumed["eval"] == pytest.approx(whole["eval"], nan_ok=True)

    # metrics.jsonl: what the interrupted run logged after the step-8 checkpoint is dropped, so the resumed
    # log equals the uninterrupted one record for record.
    def records(run_dir):
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert [(r["type"], r["step"]) for r in records(tmp_path / "split")] == [(r["type"], r["step"]) for r in records(tmp_path / "whole")]
    assert records(tmp_path / "split")[-1]["loss"] == pytest.approx(records(tmp_path / "whole")[-1]["loss"])


def test_checkpoint_retention_and_output_folders(tmp_path, tiny_dataset):
    config_path = write_config(tmp_path / "config.json", tiny_dataset, tmp_path / "run",
                               checkpointing={"every_n_steps": 2, "keep_last": 2})
    summary = run(config_path, tmp_path / "run")
    names = [p.name for p in complete_checkpoints(tmp_path / "run")]
    assert names == ["step-00000010", "step-00000012"]  # 6 steps per epoch; older ones pruned
    assert not list((tmp_path / "run" / "checkpoints").glob(".*"))  # no temporary folder left behind
    for folder in ("best", "final"):
        files = {p.name for p in (tmp_path / "run" / folder).iterdir()}
        assert {"model.safetensors", "config.json", "preprocessor_config.json", "metrics.json"} <= files
    best = json.loads((tmp_path / "run" / "best" / "metrics.json").read_text())
    assert best["eval"]["loss"] == pytest.approx(summary["best_val_loss"])
    # Resuming a finished run trains nothing more and keeps the weights.
    again = run(config_path, tmp_path / "run", resume=True)
    assert again["global_step"] == 12 and again["weights_sha256"] == summary["weights_sha256"]


def test_existing_run_needs_resume_or_overwrite(tmp_path, tiny_dataset):
    from mtclar_hf.cli import main

    config_path = write_config(tmp_path / "config.yaml", tiny_dataset, tmp_path / "run", training={"max_steps": 1})
    assert main(["train", "--config", str(config_path)]) == 0
    assert main(["train", "--config", str(config_path)]) == 1
    assert main(["train", "--config", str(config_path), "--overwrite"]) == 0

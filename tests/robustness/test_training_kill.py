"""`mtclar train` killed with SIGKILL (no clean-up of any kind) resumes from its last complete checkpoint and
ends with the weights of a run that was never interrupted (CPU, tiny model, deterministic)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from training_helpers import build_tiny_dataset, write_config

from mtclar_hf.cli import main
from mtclar_hf.training.checkpoints import complete_checkpoints

MTCLAR = Path(sys.executable).with_name("mtclar")


def config_for(tmp_path, dataset, output_dir):
    # 48 pairs / batch 4 = 12 optimizer steps per epoch, 2 epochs, a checkpoint every 2 steps: the kill lands
    # inside the first epoch, while a checkpoint is being written.
    return write_config(
        tmp_path / f"{output_dir.name}.yaml", dataset, output_dir,
        training={"batch_size": 4, "epochs": 2},
        checkpointing={"every_n_steps": 2, "keep_last": 2},
    )


def kill_during_a_checkpoint(process: subprocess.Popen, output_dir: Path, seen: dict) -> None:
    """SIGKILL `process` once a checkpoint is complete and the next one is being written (its .tmp folder)."""
    folder = output_dir / "checkpoints"
    deadline = time.monotonic() + 100
    while process.poll() is None and time.monotonic() < deadline:
        if complete_checkpoints(output_dir) and list(folder.glob(".step-*.tmp")):
            process.send_signal(signal.SIGKILL)
            seen["writing"] = sorted(p.name for p in folder.glob(".step-*.tmp"))
            return
        time.sleep(0.001)


def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    dataset = build_tiny_dataset(tmp_path / "dataset")
    killed_dir, whole_dir = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same arithmetic as this process (tests/conftest.py)
    process = subprocess.Popen(
        [str(MTCLAR), "train", "--config", str(config_for(tmp_path, dataset, killed_dir))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seen = {}
    watcher = threading.Thread(target=kill_during_a_checkpoint, args=(process, killed_dir, seen))
    watcher.start()
    try:
        # The uninterrupted reference run, in this process, while the other one starts up and gets killed.
        assert main(["train", "--config", str(config_for(tmp_path, dataset, whole_dir))]) == 0
        watcher.join(timeout=120)
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, output
    assert seen["writing"], "the kill did not come while a checkpoint was being written"
    survivors = complete_checkpoints(killed_dir)
    last = json.loads((survivors[-1] / "training_state.json").read_text())
    assert 0 < last["batches_done"] < 12 and last["epoch"] == 0  # mid-epoch
    assert not (killed_dir / "final").exists()

    assert main(["train", "--config", str(config_for(tmp_path, dataset, killed_dir)), "--resume"]) == 0
    assert not list((killed_dir / "checkpoints").glob(".step-*"))  # the half-written one was replaced
    whole = load_file(whole_dir / "final" / "model.safetensors")
    resumed = load_file(killed_dir / "final" / "model.safetensors")
    assert whole.keys() == resumed.keys()
    assert all((whole[name] == resumed[name]).all() for name in whole), "weights differ after SIGKILL + --resume"
    summaries = [json.loads((d / "train_summary.json").read_text()) for d in (whole_dir, killed_dir)]
    assert summaries[0]["weights_sha256"] == summaries[1]["weights_sha256"]
    assert summaries[0]["global_step"] == summaries[1]["global_step"] == 24


@pytest.mark.parametrize("damage", ["temporary_name", "no_marker", "being_deleted"])
def test_incomplete_checkpoints_are_never_resumed_from(damage, tmp_path):
    """What a kill can leave behind: a folder still under its temporary name, a step folder without its
    completion marker, an old one half-way through deletion. None of them counts."""
    checkpoints = tmp_path / "checkpoints"
    good = checkpoints / "step-00000002"
    good.mkdir(parents=True)
    (good / "training_state.json").write_text("{}")
    bad = {
        "temporary_name": checkpoints / ".step-00000004.tmp",
        "no_marker": checkpoints / "step-00000004",
        "being_deleted": checkpoints / ".step-00000006.old",
    }[damage]
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"partial")
    if damage == "being_deleted":
        (bad / "training_state.json").write_text("{}")
    assert complete_checkpoints(tmp_path) == [good]

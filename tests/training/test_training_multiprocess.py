"""The same command runs data-parallel: 2 CPU processes (gloo) through `accelerate launch`."""

import json
import os
import re
import subprocess
import sys

from safetensors.torch import load_file
from training_helpers import write_config

from mtclar_hf.training.loop import state_dict_digest


def test_two_process_cpu_run(tmp_path, tiny_dataset):
    config_path = write_config(tmp_path / "config.yaml", tiny_dataset, tmp_path / "run",
                               training={"batch_size": 4, "epochs": 1}, checkpointing={"every_n_steps": 3})
    # ENVIRONMENT.md: `--cpu --num_processes 2` silently runs ONE process; `--multi_gpu` with
    # ACCELERATE_USE_CPU=true really gives two gloo ranks.
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
               "-m", "mtclar_hf.train", "--config", str(config_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    reports = re.findall(r"\[rank (\d)/(\d)\] trained on (\d+) samples this session; step (\d+); weights sha256 (\w+)", result.stdout)
    assert sorted(r[0] for r in reports) == ["0", "1"], result.stdout
    assert all(r[1] == "2" for r in reports)
    # 48 pairs, 4 per batch per rank: each rank saw its own 24 samples in 6 steps.
    assert [int(r[2]) for r in reports] == [24, 24]
    assert {r[3] for r in reports} == {"6"}
    digests = {r[4] for r in reports}
    assert len(digests) == 1, "data-parallel ranks ended with different weights"

    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["weights_sha256"] in digests
    # The saved model is exactly the weights the ranks report.
    from mtclar_hf import MTCLARModel

    saved = MTCLARModel.from_pretrained(tmp_path / "run" / "final")
    assert state_dict_digest(saved) in digests
    assert load_file(tmp_path / "run" / "final" / "model.safetensors").keys() == saved.state_dict().keys()
    # Both ranks wrote their RNG state into the checkpoints.
    newest = sorted((tmp_path / "run" / "checkpoints").iterdir())[-1]
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in newest.iterdir()}

"""End to end the way a user runs it: `accelerate launch -m mtclar_hf.train --config configs/synth_quick.yaml`
(SynthAffect rendered into a cache, trained, evaluated, checkpointed, saved), then MT-CLAR+SL on its encoder
through `mtclar train`."""

import json
import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoImageProcessor, AutoModel

REPO = Path(__file__).resolve().parents[2]

TINY_OVERRIDES = [
    "data.synth.identities=6", "data.synth.train_images=48", "data.synth.val_images=16", "data.synth.size=48",
    "data.synth.clips=1", "data.synth.frames=10",
    "data.train_pairs=32", "data.validation_pairs=16",
    "model.config.backbone_config={model_type: resnet, embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: basic}",
    "model.config.embedding_size=16", "model.config.projector_widths=[16]", "model.config.image_size=32",
    "model.config.resize_size=36", "training.batch_size=8", "training.epochs=1", "logging.every_n_steps=1",
    "schedule.warmup_steps=1", "checkpointing.every_n_steps=2",
]


def test_accelerate_launch_synth_quick_then_sl(tmp_path):
    from mtclar_hf.cli import main

    overrides = [*TINY_OVERRIDES, f"data.synth.cache_dir={tmp_path / 'cache'}"]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "-m", "mtclar_hf.train", "--config", str(REPO / "configs" / "synth_quick.yaml"),
               "--output-dir", str(tmp_path / "run")]
    for assignment in overrides:
        command += ["--set", assignment]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained 4 steps" in result.stdout

    run = tmp_path / "run"
    assert list((tmp_path / "cache").glob("synthaffect-*/prepared/dataset_dict.json"))
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["step-00000002", "step-00000004"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2, 3, 4]
    evaluation = [r for r in records if r["type"] == "eval"]
    assert len(evaluation) == 1 and 0.0 <= evaluation[0]["similarity_accuracy"] <= 1.0
    assert {"valence_diff_ccc", "valence_diff_rmse", "valence_diff_pcc", "valence_diff_sagr", "arousal_diff_ccc"} <= set(evaluation[0])
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))

    model = AutoModel.from_pretrained(run / "final")
    processor = AutoImageProcessor.from_pretrained(run / "final")
    assert type(model).__name__ == "MTCLARModel" and model.config.image_size == 32 and processor.crop_size == 32
    assert model.config.provenance == {"dataset": "SynthAffect", "synthetic": True}
    metrics = json.loads((run / "best" / "metrics.json").read_text())
    assert metrics["eval"]["loss"] == evaluation[0]["loss"]

    # MT-CLAR+SL: singleton heads on the frozen encoder just trained, inverse-frequency sampling.
    sl_overrides = [a for a in overrides if not a.startswith(("model.", "data.train_pairs", "data.validation_pairs"))]
    sl_args = ["train", "--config", str(REPO / "configs" / "sl.yaml"), "--output-dir", str(tmp_path / "sl"),
               "--set", f"model.pretrained={run / 'final'}", "--set", "data.dataset=null",
               "--set", "data.synth={seed: 0}", "--set", "training.max_steps=3", "--set", "training.batch_size=8",
               "--set", "data.num_workers=0"]
    for assignment in sl_overrides:
        if assignment.startswith("training.batch_size"):
            continue
        sl_args += ["--set", assignment]
    assert main(sl_args) == 0
    sl_metrics = json.loads((tmp_path / "sl" / "final" / "metrics.json").read_text())["eval"]
    assert 0.0 <= sl_metrics["expression_accuracy"] <= 1.0 and "valence_ccc" in sl_metrics
    from mtclar_hf import MTCLARForAffectPrediction

    sl_model = MTCLARForAffectPrediction.from_pretrained(tmp_path / "sl" / "final")
    # The frozen encoder kept the MT-CLAR weights exactly.
    assert all((a == b).all() for a, b in zip(sl_model.encoder.state_dict().values(), model.encoder.state_dict().values()))

"""A saved folder loads through transformers' trust_remote_code path where mtclar_hf is not installed."""

import json

import numpy as np
import torch

from mtclar_hf import MTCLARImageProcessor, MTCLARModel
from mtclar_hf.testing_utils import run_without_mtclar_hf, tiny_config

LOAD_AND_RUN = """
import json, numpy as np, torch
from transformers import AutoImageProcessor, AutoModel
model = AutoModel.from_pretrained({folder!r}, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained({folder!r}, trust_remote_code=True)
frames = list(np.load({frames!r}))
pixels = processor(frames, face_boxes=[(8, 8, 40, 40)] * len(frames), return_tensors="pt")["pixel_values"]
with torch.no_grad():
    out = model(pixels[:2], pixels[2:])
print(json.dumps({{"model": type(model).__module__ + "." + type(model).__name__,
                  "processor": type(processor).__module__,
                  "pixels": pixels.numpy().tolist(), "valence_diff": out.valence_diff.tolist()}}))
"""


def test_trust_remote_code_load_in_a_process_without_the_package(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "model"
    model = MTCLARModel(tiny_config()).eval()
    processor = MTCLARImageProcessor(resize_size=72, crop_size=64)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_mtclar.MTCLARModel"
    assert json.loads((folder / "preprocessor_config.json").read_text())["auto_map"]["AutoImageProcessor"]

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(4, 60, 70, 3), dtype=np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = run_without_mtclar_hf(LOAD_AND_RUN.format(folder=str(folder), frames=str(tmp_path / "frames.npy")), cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    remote = json.loads(proc.stdout.strip().splitlines()[-1])
    assert remote["model"].startswith("transformers_modules.") and remote["model"].endswith("MTCLARModel")
    assert remote["processor"].startswith("transformers_modules.")

    local_pixels = processor(list(frames), face_boxes=[(8, 8, 40, 40)] * 4, return_tensors="pt")["pixel_values"]
    np.testing.assert_array_equal(np.asarray(remote["pixels"], dtype=np.float32), local_pixels.numpy())
    with torch.no_grad():
        local = model(local_pixels[:2], local_pixels[2:]).valence_diff
    np.testing.assert_allclose(remote["valence_diff"], local.numpy(), rtol=1e-5, atol=1e-6)


def test_remote_code_refuses_weights_that_do_not_match_the_config(tmp_path):
    """The weight checks are part of the copied code: without the package, a folder with a missing tensor is
    refused instead of being silently re-initialised."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "model"
    MTCLARModel(tiny_config()).save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("valence_head.")}, folder / "model.safetensors")
    code = f"""
from transformers import AutoModel
try:
    AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True)
except Exception as err:
    print(type(err).__module__, type(err).__name__, err)
"""
    proc = run_without_mtclar_hf(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("transformers_modules.") and "UnsafeModelError" in proc.stdout
    assert "weights do not match config.json" in proc.stdout and "missing (e.g. valence_head." in proc.stdout

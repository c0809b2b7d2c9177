"""`mtclar export-onnx`: the files and manifest it writes, the verification that refuses a file that
disagrees with PyTorch, the on-the-fly export of `--backend onnx`, and the error without onnxruntime."""

import json
import shutil
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mtclar_hf import MTCLARForAffectPrediction, MTCLARImageProcessor, MTCLARModel
from mtclar_hf.cli import main
from mtclar_hf.errors import ConfigError
from mtclar_hf.export import onnx_export
from mtclar_hf.export.onnx_export import ensure_onnx_export, export_onnx
from mtclar_hf.testing_utils import tiny_config


def cli(*args) -> int:
    return main([str(arg) for arg in args])


def run(path, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: value.numpy() for name, value in feeds.items()})


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    """A private copy: the on-the-fly export writes into the model folder."""
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def test_export_onnx_cli_writes_verified_files_with_a_manifest(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    assert cli("export-onnx", tiny_model_dir, out) == 0
    assert "encoder.onnx: encoder, largest difference from PyTorch" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "encoder.onnx", "manifest.json", "pair_heads.onnx", "preprocessor_config.json"
    ]
    assert (out / "preprocessor_config.json").read_bytes() == (tiny_model_dir / "preprocessor_config.json").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["opset"] == 17 and "dynamo=False" in manifest["exporter"]
    assert manifest["architecture"] == "MTCLARModel" and manifest["image_size"] == 64
    assert manifest["crop"]["crop_size"] == 64 and manifest["crop"]["face_margin"] == 0.25
    assert manifest["files"]["encoder"]["inputs"] == {"pixel_values": ["batch", 3, 64, 64]}
    assert manifest["files"]["pair_heads"]["outputs"] == {
        "similarity_logits": ["batch", 2], "valence_diff": ["batch"], "arousal_diff": ["batch"]
    }
    assert manifest["verification"] == {"rtol": 1e-4, "atol": 1e-5, "inputs": ["random", "rendered SynthAffect face"]}
    assert set(manifest["versions"]) == {"mtclar_hf", "torch", "onnx", "onnxruntime"}
    assert all(entry["max_abs_diff_vs_torch"] < 1e-5 for entry in manifest["files"].values())

    # Any batch size (the batch axis is dynamic), the same numbers as PyTorch.
    model = MTCLARModel.from_pretrained(tiny_model_dir).eval()
    pixels = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    (embeddings,) = run(out / "encoder.onnx", {"pixel_values": pixels})
    with torch.no_grad():
        expected = model.embed(pixels)
        heads = model.compare(expected[:4], expected[1:])
    np.testing.assert_allclose(embeddings, expected.numpy(), rtol=1e-4, atol=1e-5)
    logits, valence_diff, arousal_diff = run(out / "pair_heads.onnx", {"embeddings_a": expected[:4], "embeddings_b": expected[1:]})
    np.testing.assert_allclose(valence_diff, heads.valence_diff.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(arousal_diff, heads.arousal_diff.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits, heads.similarity_logits.numpy(), rtol=1e-4, atol=1e-5)

    # An existing export is replaced only when asked, and a check image can be given.
    assert cli("export-onnx", tiny_model_dir, out) == 1
    assert "already exists and is not empty (pass --overwrite" in capsys.readouterr().err
    face = tmp_path / "face.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(face)
    assert cli("export-onnx", tiny_model_dir, out, "--overwrite", "--check-image", face) == 0
    assert json.loads((out / "manifest.json").read_text())["verification"]["inputs"] == ["random", str(face)]
    assert cli("export-onnx", tiny_model_dir, out, "--overwrite", "--check-image", tmp_path / "missing.png") == 1
    assert "missing.png: cannot read it as an image" in capsys.readouterr().err


def test_an_mt_clar_sl_folder_exports_its_affect_heads(tiny_model_dir, tmp_path):
    folder = tmp_path / "sl"
    torch.manual_seed(2)
    sl_model = MTCLARForAffectPrediction(tiny_config()).eval()
    sl_model.save_pretrained(folder)
    MTCLARImageProcessor.from_pretrained(tiny_model_dir).save_pretrained(folder)
    manifest = export_onnx(folder, tmp_path / "sl_onnx")
    assert manifest["architecture"] == "MTCLARForAffectPrediction"
    assert sorted(manifest["files"]) == ["affect_heads", "encoder"]
    pixels = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    (embeddings,) = run(tmp_path / "sl_onnx" / "encoder.onnx", {"pixel_values": pixels})
    logits, valence, arousal = run(tmp_path / "sl_onnx" / "affect_heads.onnx", {"embeddings": torch.from_numpy(embeddings)})
    with torch.no_grad():
        expected = sl_model(pixels)
    np.testing.assert_allclose(valence, expected.valence.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(arousal, expected.arousal.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits, expected.logits.numpy(), rtol=1e-4, atol=1e-5)


def tamper_largest_initializer(path) -> None:
    """Change one weight of an exported file, as a broken exporter or a corrupted copy would."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    initializer = max(graph.graph.initializer, key=lambda tensor: np.prod(tensor.dims))
    values = numpy_helper.to_array(initializer).copy()
    values.flat[0] += 0.5
    initializer.CopyFrom(numpy_helper.from_array(values, initializer.name))
    onnx.save(graph, str(path))


def test_a_file_that_disagrees_with_pytorch_is_refused_and_not_written(tiny_model_dir, tmp_path, monkeypatch, capsys):
    real_export = onnx_export.export_graph

    def export_then_tamper(graph, path, opset=17):
        real_export(graph, path, opset)
        if graph.name == "encoder":
            tamper_largest_initializer(path)

    monkeypatch.setattr(onnx_export, "export_graph", export_then_tamper)
    out = tmp_path / "out" / "exported"
    assert cli("export-onnx", tiny_model_dir, out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mtclar export-onnx: error: {out / 'encoder.onnx'}: ")
    assert "onnxruntime disagrees with PyTorch on embeddings" in err[0] and "not written" in err[0]
    assert list((tmp_path / "out").iterdir()) == []  # no folder, no temporary leftovers


def test_backend_export_is_made_once_and_redone_when_the_weights_change(model_copy, capsys):
    assert ensure_onnx_export(model_copy) == model_copy / "onnx"
    assert "no ONNX export matching these weights; exporting to" in capsys.readouterr().err
    first = (model_copy / "onnx" / "encoder.onnx").read_bytes()
    assert ensure_onnx_export(model_copy) == model_copy / "onnx"
    assert capsys.readouterr().err == ""  # reused, not exported again

    torch.manual_seed(9)
    MTCLARModel(tiny_config()).save_pretrained(model_copy)  # retrained in place: the export is stale
    ensure_onnx_export(model_copy)
    assert "exporting to" in capsys.readouterr().err
    assert (model_copy / "onnx" / "encoder.onnx").read_bytes() != first


def test_without_onnxruntime_the_error_is_one_line(model_copy, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    hint = "pip install 'mtclar_hf[onnx]'"
    with pytest.raises(ConfigError, match="onnxruntime is not installed"):
        ensure_onnx_export(model_copy)
    assert cli("export-onnx", model_copy, tmp_path / "out") == 1
    video = tmp_path / "video.mp4"
    video.write_bytes(b"not decoded: the backend is set up first")
    assert cli("label", video, "--model", model_copy, "--support", tmp_path / "s.csv", "--out", tmp_path / "o.csv",
               "--backend", "onnx", "--quiet") == 1
    assert cli("demo", "--model", model_copy, "--backend", "onnx") == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(hint in line and "onnxruntime is not installed" in line for line in errors)
    assert not (model_copy / "onnx").exists() and not (tmp_path / "out").exists()

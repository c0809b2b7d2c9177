"""`--backend onnx`: the encoder stage in onnxruntime gives the torch backend's labels, suggestions and
metrics on the same inputs; the labeller takes any encoder through one small interface."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from mtclar_hf.cli import main
from mtclar_hf.errors import ConfigError
from mtclar_hf.labeling import FewShotVideoLabeler
from mtclar_hf.labeling.encoders import OnnxEncoder, TorchEncoder

LABEL_TOLERANCE = 1e-3  # the target; measured differences are below 1e-6


def cli(*args) -> int:
    return main([str(arg) for arg in args])


@pytest.fixture(scope="module")
def model_copy(tiny_model_dir, tmp_path_factory):
    """A private copy: `--backend onnx` writes the export into MODEL/onnx."""
    return shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("onnx_backend") / "model")


def test_label_suggest_and_evaluate_agree_between_backends(model_copy, face_video, afew_raw, tmp_path, capsys):
    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.5,-0.25\n30,-0.5,0.75\n")
    tables = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.csv"
        common = ("--model", model_copy, "--no-detect", "--quiet", "--backend", backend)
        assert cli("label", face_video, *common, "--support", support, "--out", out, "--anchor", "fused") == 0
        tables[backend] = pd.read_csv(out)
        assert cli("suggest", face_video, *common, "--count", 4, "--out", tmp_path / f"suggest_{backend}.csv") == 0
        assert cli("evaluate", "--model", model_copy, "--backend", backend, "--afew-va", afew_raw, "--quiet",
                   "--out", tmp_path / f"metrics_{backend}.json") == 0
    assert "exporting to" in capsys.readouterr().err  # the first onnx run exported MODEL/onnx, with a notice
    assert (model_copy / "onnx" / "manifest.json").is_file()

    torch_table, onnx_table = tables["torch"], tables["onnx"]
    assert torch_table[["frame", "face_found", "is_support"]].equals(onnx_table[["frame", "face_found", "is_support"]])
    for column in ("valence", "arousal"):
        assert np.abs(torch_table[column] - onnx_table[column]).max() < LABEL_TOLERANCE
    assert torch_table["valence"].std() > 0.01  # labels that vary, so the comparison means something

    suggested = [pd.read_csv(tmp_path / f"suggest_{backend}.csv")["frame"].tolist() for backend in ("torch", "onnx")]
    assert suggested[0] == suggested[1]
    metrics = [json.loads((tmp_path / f"metrics_{backend}.json").read_text()) for backend in ("torch", "onnx")]
    for mode, values in metrics[0]["same_video"]["pooled"].items():
        for key, value in values.items():
            if value is not None:
                assert metrics[1]["same_video"]["pooled"][mode][key] == pytest.approx(value, abs=LABEL_TOLERANCE), (mode, key)


def test_the_labeller_takes_any_encoder(model_copy, tiny_labeler_parts, face_like_frames):
    from mtclar_hf.export.onnx_export import ensure_onnx_export

    model, processor = tiny_labeler_parts
    frames = list(face_like_frames(10))
    default = FewShotVideoLabeler(model, processor, detector=None)
    assert isinstance(default.encoder, TorchEncoder)
    onnx = FewShotVideoLabeler(model, processor, detector=None, encoder=OnnxEncoder(ensure_onnx_export(model_copy) / "encoder.onnx"))
    assert onnx.encoder.providers[-1] == "CPUExecutionProvider"
    np.testing.assert_allclose(onnx.encode(frames).embeddings, default.encode(frames).embeddings, rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="cannot compile a given encoder"):
        FewShotVideoLabeler(model, processor, detector=None, encoder=onnx.encoder, compile=True)


def test_compile_is_a_torch_backend_option(model_copy, face_video, tmp_path, capsys):
    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.5,-0.25\n")
    code = cli("label", face_video, "--model", model_copy, "--support", support, "--out", tmp_path / "o.csv",
               "--backend", "onnx", "--compile", "--no-detect", "--quiet")
    assert code == 1 and "--compile applies to the torch backend" in capsys.readouterr().err

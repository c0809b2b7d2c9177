"""`mtclar demo --backend onnx`: the app encodes uploads with onnxruntime, with the torch backend's numbers."""

import shutil

import numpy as np

from mtclar_hf.labeling.encoders import OnnxEncoder


def test_the_onnx_backend_encodes_like_torch(app_module, tiny_model_dir, upload_clip, tmp_path, progress, monkeypatch):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")  # the export is written into MODEL/onnx
    encoded = {}
    for backend in ("torch", "onnx"):
        app = app_module.LabellingDemo(default_model=str(model), workdir=tmp_path, example_seeds=(3,), backend=backend)
        try:
            state, *_ = app.load_video(str(upload_clip), True, "", progress)
            encoded[backend] = state.encoded
            if backend == "onnx":
                assert isinstance(app.models.encoder(""), OnnxEncoder) and (model / "onnx" / "encoder.onnx").is_file()
        finally:
            app.close()
    np.testing.assert_allclose(encoded["onnx"].embeddings, encoded["torch"].embeddings, rtol=1e-4, atol=1e-5)

    from mtclar_hf.cli import main

    calls = []
    monkeypatch.setattr(app_module, "main", lambda **kwargs: calls.append(kwargs) or 0)
    assert main(["demo", "--model", "m", "--backend", "onnx"]) == 0
    assert calls == [{"model": "m", "host": "127.0.0.1", "port": None, "backend": "onnx", "workdir": None}]

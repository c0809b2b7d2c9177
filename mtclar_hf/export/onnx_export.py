"""Export a saved MT-CLAR folder to ONNX files that onnxruntime runs, each verified against PyTorch.

One folder (`mtclar export-onnx MODEL_DIR OUT_DIR`) holds:

* ``encoder.onnx``: pixel_values (batch, 3, S, S) -> embeddings (batch, D), dynamic batch;
* ``pair_heads.onnx`` (an `MTCLARModel`): embeddings_a, embeddings_b -> similarity_logits, valence_diff,
  arousal_diff, i.e. `MTCLARModel.compare`;
* ``affect_heads.onnx`` (a model with an SL head: `MTCLARForAffectPrediction`, or an `MTCLARModel` with
  `affect_head`): embeddings -> expression_logits, valence, arousal;
* ``preprocessor_config.json``: the crop convention (face box -> square crop with margin, resize, centre crop,
  RGB in [0, 1]) that produced the pixels the encoder expects, readable by `MTCLARImageProcessor`;
* ``manifest.json``: names and shapes of every input and output, opset, exporter, versions, the SHA-256 of
  the weights it was exported from, and the verification's tolerance and largest differences.

An export is verified, not trusted: every file is run by onnxruntime on random inputs and on a rendered
SynthAffect face (or a given image) and compared with PyTorch (`numpy.allclose` with `RTOL` and `ATOL`).
A file that disagrees is refused with one line, and the folder is written only when every file passed.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, InputFileError
from ..hub.push import weights_digest
from ..io_utils import atomic_directory, read_json_object
from ..labeling.encoders import ONNX_INSTALL_HINT, OnnxEncoder, import_onnxruntime, onnx_session

OPSET = 17
# The TorchScript-based exporter: measured to give the same numbers as eager PyTorch on these models.
EXPORTER = "torch.onnx.export (TorchScript-based, dynamo=False)"
RTOL, ATOL = 1e-4, 1e-5
MANIFEST = "manifest.json"
PROCESSOR_FILE = "preprocessor_config.json"
FORMAT = "mtclar-onnx"
FORMAT_VERSION = 1
ONNX_SUBFOLDER = "onnx"  # where `--backend onnx` and `mtclar push --onnx` keep a model folder's export
TRACE_BATCH, CHECK_BATCH = 2, 3  # verifying on another batch size than the traced one checks the dynamic axis


# ----------------------------------------------------------------------------------------------- graphs


class _EncoderGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.embed(pixel_values)


class _PairHeadsGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, embeddings_a, embeddings_b):
        out = self.model.compare(embeddings_a, embeddings_b)
        return out.similarity_logits, out.valence_diff, out.arousal_diff


class _AffectHeadsGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, embeddings):
        return self.model.predict_affect(embeddings)


@dataclass
class Graph:
    """One ONNX file: the module to export, its input and output names and shapes (symbolic "batch")."""

    name: str
    module: nn.Module
    inputs: dict[str, list]
    outputs: dict[str, list]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    def random_inputs(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        # Pixels are in [0, 1] (or normalised near it); embeddings are unbounded, so a normal draw.
        draw = {True: torch.rand, False: torch.randn}
        return {
            name: draw[name == "pixel_values"](batch, *shape[1:], generator=generator) for name, shape in self.inputs.items()
        }


def model_graphs(model) -> list[Graph]:
    """The graphs to export for this model: the encoder, and the pair heads or the affect (SL) heads."""
    config = model.config
    size, width = config.image_size, config.embedding_size
    graphs = [Graph("encoder", _EncoderGraph(model), {"pixel_values": ["batch", 3, size, size]}, {"embeddings": ["batch", width]})]
    if hasattr(model, "compare"):
        pair_inputs = {"embeddings_a": ["batch", width], "embeddings_b": ["batch", width]}
        pair_outputs = {
            "similarity_logits": ["batch", config.num_similarity_classes],
            "valence_diff": ["batch"],
            "arousal_diff": ["batch"],
        }
        graphs.append(Graph("pair_heads", _PairHeadsGraph(model), pair_inputs, pair_outputs))
    if model.has_affect_head:
        affect_outputs = {
            "expression_logits": ["batch", config.num_expression_classes],
            "valence": ["batch"],
            "arousal": ["batch"],
        }
        graphs.append(Graph("affect_heads", _AffectHeadsGraph(model), {"embeddings": ["batch", width]}, affect_outputs))
    for graph in graphs:
        # Eval mode is what makes batch norm use its running statistics: an export traced in training mode
        # bakes in batch statistics (measured: outputs off by 2.6).
        graph.module.eval()
    return graphs


def export_graph(graph: Graph, path: Path, opset: int = OPSET) -> None:
    """Trace `graph` to `path` with a dynamic batch axis on every input and output."""
    example = tuple(graph.random_inputs(TRACE_BATCH, torch.Generator().manual_seed(0)).values())
    dynamic_axes = {name: {0: "batch"} for name in (*graph.inputs, *graph.outputs)}
    # The tracer warns about Python-level shape checks (e.g. transformers' channel check); the traced graph is
    # verified against PyTorch afterwards, which is the check that matters.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            graph.module,
            example,
            str(path),
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
        )


# ----------------------------------------------------------------------------------------------- verification


def face_pixels(processor, check_image=None) -> torch.Tensor:
    """(1, 3, S, S) pixels of a real-looking face: `check_image` (a face crop), or a rendered SynthAffect face."""
    if check_image is not None:
        path = Path(check_image)
        try:
            return processor.preprocess(str(path), return_tensors="pt")["pixel_values"]
        except (OSError, ValueError) as err:
            raise InputFileError(path, f"cannot read it as an image: {str(err).splitlines()[0]}") from None
    from ..data.synth import render_still

    face = render_still(identity_seed=7, image_index=0, image_size=max(128, processor.crop_size))
    return torch.from_numpy(processor.preprocess_arrays([face["image"]], [face["face_box"]]))


def check_inputs(graphs: list[Graph], face: torch.Tensor) -> dict[str, list[tuple[str, dict[str, torch.Tensor]]]]:
    """Per graph: (what, inputs) pairs to compare on, random draws and the face (through the encoder first)."""
    generator = torch.Generator().manual_seed(1)
    encoder = graphs[0].module
    with torch.no_grad():
        face_embedding = encoder(face)
        random_embedding = encoder(torch.rand(face.shape, generator=generator))
    sets = {}
    for graph in graphs:
        random_inputs = graph.random_inputs(CHECK_BATCH, generator)
        if graph.name == "encoder":
            face_inputs = {"pixel_values": face}
        elif graph.name == "pair_heads":
            face_inputs = {"embeddings_a": face_embedding, "embeddings_b": random_embedding}
        else:
            face_inputs = {"embeddings": face_embedding}
        sets[graph.name] = [("random", random_inputs), ("face", face_inputs)]
    return sets


def verify_graph(graph: Graph, path: Path, inputs: list[tuple[str, dict]], shown_path: Path) -> float:
    """Largest absolute difference between onnxruntime on `path` and PyTorch; a one-line error past tolerance."""
    session = onnx_session(path, device="cpu")
    largest = 0.0
    for what, feeds in inputs:
        with torch.no_grad():
            expected = graph.module(*feeds.values())
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(list(graph.outputs), {name: value.numpy() for name, value in feeds.items()})
        for name, want, have in zip(graph.outputs, expected, got):
            want = want.numpy()
            if want.shape != have.shape:
                raise InputFileError(shown_path, f"output {name} has shape {have.shape} in onnxruntime, {want.shape} in PyTorch; not written")
            difference = float(np.max(np.abs(want - have))) if want.size else 0.0
            if not np.allclose(have, want, rtol=RTOL, atol=ATOL):
                raise InputFileError(
                    shown_path,
                    f"onnxruntime disagrees with PyTorch on {name} for the {what} input (largest difference "
                    f"{difference:.3g}; tolerance rtol {RTOL:g} + atol {ATOL:g}); the export is refused and not written",
                )
            largest = max(largest, difference)
    return largest


# ----------------------------------------------------------------------------------------------- the folder


def load_model_for_export(model_dir: Path):
    """The saved model (either architecture) in float32 eval mode, its image processor and its class name."""
    from ..labeling.loading import load_model_and_processor

    if not Path(model_dir).is_dir():
        raise InputFileError(model_dir, "not a saved model folder (no config.json)")
    model, processor = load_model_and_processor(model_dir)
    return model.float(), processor, type(model).__name__


def _versions() -> dict:
    import onnx

    from .. import __version__

    return {
        "mtclar_hf": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": import_onnxruntime().__version__,
    }


def _require_onnx() -> None:
    import_onnxruntime()
    try:
        import onnx  # noqa: F401  the exporter writes the graph through it
    except ImportError:
        raise ConfigError(f"the onnx package is not installed; ONNX export needs it: {ONNX_INSTALL_HINT}") from None


def _write_processor(model_dir: Path, processor, out: Path) -> None:
    source = model_dir / PROCESSOR_FILE
    if source.is_file():
        (out / PROCESSOR_FILE).write_bytes(source.read_bytes())
    else:
        processor.to_json_file(str(out / PROCESSOR_FILE))


def export_onnx(model_dir, out_dir, check_image=None, overwrite: bool = True, opset: int = OPSET) -> dict:
    """Export, verify and write the ONNX folder of a saved model; returns its manifest.

    Nothing is written to `out_dir` unless every file passed verification (it is built in a temporary
    folder beside it and swapped in). An existing non-empty `out_dir` is replaced only with `overwrite`.
    """
    from ..image_processing_mtclar import MTCLARImageProcessorKwargs

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    _require_onnx()
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InputFileError(out_dir, "already exists and is not empty (pass --overwrite to replace it)")
    model, processor, architecture = load_model_for_export(model_dir)
    graphs = model_graphs(model)
    face = face_pixels(processor, check_image)
    files = {}
    with atomic_directory(out_dir) as tmp:
        for graph in graphs:
            export_graph(graph, tmp / graph.file, opset)
        for graph, inputs in zip(graphs, check_inputs(graphs, face).values()):
            largest = verify_graph(graph, tmp / graph.file, inputs, shown_path=out_dir / graph.file)
            files[graph.name] = {
                "file": graph.file,
                "inputs": graph.inputs,
                "outputs": graph.outputs,
                "max_abs_diff_vs_torch": largest,
            }
        _write_processor(model_dir, processor, tmp)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "architecture": architecture,
            "source_weights_sha256": weights_digest(model_dir),
            "image_size": model.config.image_size,
            "embedding_size": model.config.embedding_size,
            "input": "RGB face crops from MTCLARImageProcessor (preprocessor_config.json beside this file), float32 NCHW",
            "crop": {name: getattr(processor, name) for name in MTCLARImageProcessorKwargs.__annotations__},
            "files": files,
            "opset": opset,
            "exporter": EXPORTER,
            "verification": {
                "rtol": RTOL,
                "atol": ATOL,
                "inputs": ["random", str(check_image) if check_image else "rendered SynthAffect face"],
            },
            "versions": _versions(),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(onnx_dir) -> dict | None:
    """The manifest of an export folder, or None when there is none or it is of another format."""
    manifest = read_json_object(Path(onnx_dir) / MANIFEST, missing=None)
    if manifest is None or manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        return None
    return manifest


def export_matches(onnx_dir, digest: str) -> bool:
    """Whether `onnx_dir` holds an export of the weights whose `weights_digest` is `digest`."""
    manifest = read_manifest(onnx_dir)
    return manifest is not None and manifest.get("source_weights_sha256") == digest


# ----------------------------------------------------------------------------------------------- the onnx backend


def local_model_folder(model_path) -> tuple[Path, bool]:
    """(the folder holding the model's files, whether it is the user's own folder rather than a Hub cache)."""
    if Path(model_path).is_dir():
        return Path(model_path), True
    from transformers.utils import cached_file

    try:
        return Path(cached_file(str(model_path), "config.json")).parent, False
    except OSError as err:
        raise InputFileError(model_path, f"cannot find the model: {str(err).splitlines()[0]}") from None


def user_cache_dir(snapshot: Path) -> Path:
    """Where exports of Hub models go: never inside the Hub cache, which belongs to huggingface_hub."""
    root = Path(os.environ.get("MTCLAR_HF_CACHE") or Path.home() / ".cache" / "mtclar_hf")
    # A snapshot folder is .../models--user--name/snapshots/<commit>: both parts name this export.
    return root / "onnx" / f"{snapshot.parent.parent.name}-{snapshot.name}"


def ensure_onnx_export(model_path, notice=None) -> Path:
    """The export folder for `model_path`, exported on the fly when it is missing or older than the weights.

    A local model folder keeps its export in MODEL_DIR/onnx/ (what `mtclar export-onnx MODEL_DIR
    MODEL_DIR/onnx` writes, and `mtclar push --onnx` uploads); a Hub model uses the repo's own onnx/ when it
    matches the weights, else an export in the user's cache folder (`MTCLAR_HF_CACHE`, default ~/.cache/mtclar_hf).
    """
    import_onnxruntime()  # a missing onnxruntime is the first thing to say, before any export work
    folder, own = local_model_folder(model_path)
    digest = weights_digest(folder)
    candidates = [folder / ONNX_SUBFOLDER] + ([] if own else [user_cache_dir(folder)])
    for candidate in candidates:
        if export_matches(candidate, digest):
            return candidate
    target = candidates[-1]
    message = f"{model_path}: no ONNX export matching these weights; exporting to {target} (once)"
    (notice or (lambda text: print(text, file=sys.stderr)))(message)
    export_onnx(folder, target, overwrite=True)
    return target


def onnx_encoder_for(model_path, device: str | None = None, notice=None) -> OnnxEncoder:
    """The onnx backend's encoder for a model folder or Hub id (exported first when needed)."""
    onnx_dir = ensure_onnx_export(model_path, notice)
    manifest = read_manifest(onnx_dir)
    return OnnxEncoder(onnx_dir / manifest["files"]["encoder"]["file"], device=device)

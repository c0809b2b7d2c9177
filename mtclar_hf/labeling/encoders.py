"""The labeller's encoder stage behind one small interface: face crops in, embeddings out.

`FewShotVideoLabeler` calls an `Encoder` on each batch of crops and never asks which backend runs it:

* `TorchEncoder`: the model's own `embed` in PyTorch (eager or `torch.compile`, bf16 autocast and
  channels-last on a GPU);
* `OnnxEncoder`: an `encoder.onnx` written by `mtclar export-onnx`, run by onnxruntime. It uses the CUDA
  execution provider when the installed onnxruntime has it (the `onnxruntime-gpu` package), else the CPU.

Everything after the encoder (the pair heads on cached embeddings, anchors, smoothing) stays in PyTorch:
those heads are a few small matrix products per frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..errors import ConfigError, InputFileError

BACKENDS = ("torch", "onnx")
ONNX_INSTALL_HINT = "pip install 'mtclar_hf[onnx]'"


class Encoder(Protocol):
    """Embeddings (B, D) float32 on the CPU of preprocessed crops (B, 3, S, S) float32."""

    def __call__(self, pixels: np.ndarray) -> torch.Tensor: ...


class TorchEncoder:
    """`model.embed` in PyTorch, on the model's device and dtype."""

    def __init__(self, model, autocast: bool = False, compile: bool = False):
        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.autocast = autocast
        self.channels_last = self.device.type == "cuda"
        if self.channels_last:  # cuDNN's fastest convolutions on recent GPUs take NHWC
            model.to(memory_format=torch.channels_last)
        self.embed = torch.compile(model.embed) if compile else model.embed

    @torch.inference_mode()
    def __call__(self, pixels: np.ndarray) -> torch.Tensor:
        batch = torch.from_numpy(pixels)
        if self.channels_last:
            batch = batch.pin_memory().to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        batch = batch.to(self.device, self.dtype)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return self.embed(batch).float().cpu()


def import_onnxruntime():
    """The onnxruntime module, or a one-line ConfigError that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            f"onnxruntime is not installed; ONNX export and --backend onnx need it: {ONNX_INSTALL_HINT}"
        ) from None
    return onnxruntime


def execution_providers(ort, device: str | None = None) -> list[str]:
    """CUDA first when this onnxruntime build has it and the device allows it, the CPU always last."""
    available = ort.get_available_providers()
    wants_cpu = device is not None and torch.device(device).type == "cpu"
    if "CUDAExecutionProvider" in available and not wants_cpu:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def onnx_session(path, device: str | None = None, threads: int | None = None):
    """An onnxruntime InferenceSession on `path`; `threads` intra-op threads (default: torch's thread count)."""
    ort = import_onnxruntime()
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "ONNX file not found (write it with `mtclar export-onnx`)")
    options = ort.SessionOptions()
    # The same thread budget as PyTorch, so that the two backends compare on equal terms.
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3  # warnings about unused initialisers etc. are not the user's business
    try:
        return ort.InferenceSession(str(path), options, providers=execution_providers(ort, device))
    except Exception as err:  # onnxruntime raises its own exception types for a malformed graph
        raise InputFileError(path, f"onnxruntime cannot load it: {str(err).splitlines()[0]}") from None


class OnnxEncoder:
    """An exported encoder (`encoder.onnx`: pixel_values -> embeddings) run by onnxruntime."""

    def __init__(self, path, device: str | None = None, threads: int | None = None):
        self.path = Path(path)
        self.session = onnx_session(self.path, device, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.providers = self.session.get_providers()

    def __call__(self, pixels: np.ndarray) -> torch.Tensor:
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        (embeddings,) = self.session.run([self.output_name], {self.input_name: pixels})
        return torch.from_numpy(embeddings)

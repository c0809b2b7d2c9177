"""Exports of a saved MT-CLAR model to other runtimes (ONNX, run by onnxruntime)."""

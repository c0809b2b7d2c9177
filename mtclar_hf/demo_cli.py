"""`mtclar demo`: serve the Gradio labelling demo (`demo/app.py`) on this machine.

    mtclar demo                                   # the quickstart model, http://127.0.0.1:7860
    mtclar demo --model path/to/model --port 8080
    mtclar demo --host 0.0.0.0                    # reachable from other machines (no share link, ever)
    mtclar demo --backend onnx                    # the encoder in onnxruntime (MODEL/onnx, exported when missing)
    mtclar demo --workdir ~/labels-work            # support labels kept per video there, across restarts

The app is `demo/app.py` (`mtclar_hf.demo_loading` imports it); gradio is imported only when the command runs.
"""

from __future__ import annotations

import argparse

from .demo_loading import load_demo_module
from .errors import ConfigError
from .labeling.session import DEFAULT_MODEL


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="serve the few-shot video labelling demo in the browser (Gradio)",
        description="Serve the few-shot video labelling demo (Gradio). Offline: no analytics, no share link.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="model folder or cached Hub id shown by default (default: the quickstart's model)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 serves other machines)")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                        help="encoder runtime: PyTorch, or onnxruntime on MODEL/onnx (exported there first when missing)")
    parser.add_argument("--workdir", default=None,
                        help="folder where the support labels of each video are kept, keyed by the video's hash "
                        "(default: inside the demo's temporary folder, kept across page reloads until the server stops)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1-65535, got {args.port}")
    if args.backend == "onnx":
        from .labeling.encoders import import_onnxruntime

        import_onnxruntime()  # say so before the server starts, not at the first upload
    return load_demo_module().main(
        model=args.model, host=args.host, port=args.port, backend=args.backend, workdir=args.workdir
    )

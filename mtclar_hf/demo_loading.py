"""Importing the Gradio demo app (`demo/app.py`, shipped in the wheel too) as a module.

The app lives in `demo/app.py` at the repository root (the layout Hugging Face Spaces expect), not in the
package, so it is loaded by path; gradio is imported only then.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .resources import shipped_file

MODULE_NAME = "mtclar_demo_app"


def load_demo_module(path: Path | None = None):
    """The demo app as a module, imported once per process."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    path = path or shipped_file("demo_app", "app.py")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(MODULE_NAME, None)
        raise
    return module

"""Lazy package exports (PEP 562): a package names what it exports and from which submodule, and the submodule is
imported on first use. `mtclar --help` imports the CLI modules of every area; this keeps it from paying for torch,
PyAV, OpenCV or pandas."""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, str]):
    """The module-level `__getattr__` and `__dir__` of `package`, serving each name of `exports` (name -> submodule)."""

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__

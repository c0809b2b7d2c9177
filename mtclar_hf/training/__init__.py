"""Training MT-CLAR and MT-CLAR+SL with Accelerate: config files (`config`), the two stages (`stages`), their
data (`data`), the loop (`loop`) with its checkpoints, schedule, evaluation and logs, the `mtclar train` command.

Names are imported lazily so that `mtclar --help` (which imports `training.cli`) does not load torch.
"""

import importlib

_EXPORTS = {
    "TrainConfig": "config",
    "load_config": "config",
    "train": "loop",
    "evaluate": "evaluation",
    "complete_checkpoints": "checkpoints",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value

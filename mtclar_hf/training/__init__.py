"""Training MT-CLAR and MT-CLAR+SL with Accelerate: config files (`config`), the two stages (`stages`), their
data (`data`), the loop (`loop`) with its checkpoints, schedule, evaluation and logs, the `mtclar train` command.

Names are imported lazily so that `mtclar --help` (which imports `training.cli`) does not load torch.
"""

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "TrainConfig": "config",
    "load_config": "config",
    "train": "loop",
    "evaluate": "evaluation",
    "complete_checkpoints": "checkpoints",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

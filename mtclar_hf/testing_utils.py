"""Helpers for tests, examples and smoke benchmarks: tiny configs (seconds on a CPU), isolated loading."""

from .configuration_mtclar import MTCLARConfig

TINY_RESNET = {"embedding_size": 16, "hidden_sizes": [16, 32], "depths": [1, 1], "layer_type": "basic"}


def tiny_config(**overrides) -> MTCLARConfig:
    """A ResNet-shaped MT-CLAR with 64 px inputs, a 32-d embedding and a small projector."""
    settings = dict(
        backbone_config={"model_type": "resnet", **TINY_RESNET},
        embedding_size=32,
        projector_widths=[64, 32],
        sl_hidden_widths=[64, 32],
        image_size=64,
        resize_size=72,
    )
    settings.update(overrides)
    return MTCLARConfig(**settings)


# Python source to prepend to a `python -c` program so that `mtclar_hf` is NOT importable in that process
# (the editable install's import hook is removed). Used to prove a saved folder loads through
# transformers' trust_remote_code path alone, as on a machine without this package.
HIDE_MTCLAR_HF = """
import sys, importlib.util
sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]
sys.path_hooks[:] = [h for h in sys.path_hooks if '__editable__' not in getattr(h, '__module__', '')]
sys.path_importer_cache.clear()
assert importlib.util.find_spec('mtclar_hf') is None, 'mtclar_hf is still importable'
"""


def run_without_mtclar_hf(code: str, cwd, timeout: float = 300):
    """Run `code` in a fresh interpreter (same venv) where `mtclar_hf` cannot be imported."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", HF_MODULES_CACHE=os.path.join(str(cwd), "hf_modules"))
    return subprocess.run(
        [sys.executable, "-c", HIDE_MTCLAR_HF + code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )

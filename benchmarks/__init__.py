"""Benchmarks anyone can run on a fresh clone (CPU) or a GPU machine:

    python -m benchmarks.labeling [--quick] [--tiny] [--out results.json]
    python -m benchmarks.training [--quick] [--tiny] [--out results.json]

Each prints a table and writes the same figures as JSON. The figures and what bounds them are in
docs/PERFORMANCE.md. This module holds what both share: the machine's description, peak memory,
timing, the table and the JSON output.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path


def machine() -> dict:
    """What the figures were measured on (they mean little without it)."""
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_average_1min": os.getloadavg()[0],  # other work on a shared machine slows every figure
        "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM, the high-water mark of this process's own memory. `ru_maxrss` is no good for a child
    process: Linux carries it over fork + exec, so a child reports its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Resident memory now, in MiB (from /proc; falls back to the peak where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def gpu_peak_mb(device) -> float | None:
    """Peak GPU memory allocated by torch on `device` since the last reset, in MiB; None off CUDA."""
    import torch

    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / (1024 * 1024)


def synchronize(device) -> None:
    """Wait for queued GPU work, so wall-clock times cover it."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started


def resolve_device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def print_table(title: str, rows: list[tuple[str, object, str]]) -> None:
    """Rows of (figure, value, note) as an aligned text table."""
    print(f"\n{title}")
    width = max(len(name) for name, _, _ in rows)
    for name, value, note in rows:
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"  {name:<{width}}  {shown:>12}  {note}")


def write_json(result: dict, path) -> Path:
    """The result as indented JSON, written atomically (a reader never sees half a file)."""
    from mtclar_hf.io_utils import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2, default=float) + "\n")
    return path


def finite_positive(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0

"""The shared helpers every area relies on: one-line errors, atomic output, metrics."""

import math

import numpy as np
import pytest
from scipy import stats

from mtclar_hf import metrics
from mtclar_hf.errors import InputFileError, MTCLARError
from mtclar_hf.io_utils import atomic_directory, atomic_path, atomic_write_text


def test_error_messages_are_one_line_and_name_the_file():
    err = InputFileError("clips/a.mp4", "no video stream\n(found 0 streams)")
    assert str(err) == "clips/a.mp4: no video stream (found 0 streams)"
    assert isinstance(err, MTCLARError) and err.path == "clips/a.mp4"


def test_atomic_path_leaves_old_content_when_writer_fails(tmp_path):
    target = tmp_path / "out.csv"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_directory_swaps_whole_folder(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "b.txt").write_text("2")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with pytest.raises(InputFileError, match="already exists"):
        with atomic_directory(target, overwrite=False):
            pass


def test_atomic_path_rejects_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not (locked / "x").parent.stat().st_mode & 0o200 and not __import__("os").access(locked, 2):
            with pytest.raises(InputFileError, match="not writable"):
                with atomic_path(locked / "out.csv"):
                    pass
        else:  # root ignores permission bits; the check is then meaningless here
            pytest.skip("running as root: permission bits are not enforced")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_outputs_get_the_normal_umask_mode(tmp_path, umask):
    """mkstemp/mkdtemp make private 0600/0700 temporaries; the finished output gets 0666/0777 less the umask,
    the mode open()/mkdir() would give it."""
    import os
    import stat

    previous = os.umask(umask)
    try:
        with atomic_path(tmp_path / "table.csv") as tmp:
            assert stat.S_IMODE(tmp.stat().st_mode) == 0o600  # private while half-written
            tmp.write_text("a,b\n")
        with atomic_directory(tmp_path / "model") as tmp:
            assert stat.S_IMODE(tmp.stat().st_mode) == 0o700
            (tmp / "config.json").write_text("{}")
        atomic_write_text(tmp_path / "notes.txt", "hello")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "notes.txt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o777 & ~umask


def _reference_ccc(y, p):
    # Independent formulation: Lin (1989) via sample moments with ddof=0.
    sxy = np.cov(y, p, bias=True)[0, 1]
    return 2 * sxy / (np.var(y) + np.var(p) + (np.mean(y) - np.mean(p)) ** 2)


def test_metrics_match_independent_implementations():
    rng = np.random.default_rng(0)
    y = rng.uniform(-1, 1, 500)
    p = 0.7 * y + rng.normal(0, 0.3, 500) + 0.1
    assert metrics.pcc(y, p) == pytest.approx(stats.pearsonr(y, p)[0], abs=1e-12)
    assert metrics.ccc(y, p) == pytest.approx(_reference_ccc(y, p), abs=1e-12)
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt(np.mean((y - p) ** 2)), abs=1e-12)
    assert metrics.sagr(y, p) == pytest.approx(np.mean(np.sign(y) == np.sign(p)))
    assert metrics.ccc(y, y) == pytest.approx(1.0)
    yc = y - y.mean()
    assert metrics.ccc(yc, -yc) == pytest.approx(-1.0)


def test_metrics_drop_nan_frames_and_flag_constant_input():
    y = np.array([0.1, 0.5, np.nan, -0.2])
    p = np.array([0.0, 0.4, 0.3, np.nan])
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt((0.01 + 0.01) / 2))
    assert math.isnan(metrics.pcc([0.2, 0.2, 0.2], [0.1, 0.3, 0.5]))
    assert metrics.sagr([0.0, 0.5], [0.0, -0.5]) == 0.5
    flat = metrics.affect_metrics(y, p, y, p)
    assert set(flat) == {f"{s}_{m}" for s in ("valence", "arousal") for m in metrics.METRIC_NAMES}

"""The metric maths (mtclar_hf.metrics) and its `evaluate` modules, checked against independent implementations."""

import math

import numpy as np
import pytest
from scipy import stats

from mtclar_hf import metrics
from mtclar_hf.evaluate_metrics import METRIC_MODULES, metric_path


def independent_ccc(y, p):
    """Lin's CCC from scipy's Pearson r and population standard deviations."""
    r = stats.pearsonr(y, p).statistic
    sy, sp = np.std(y), np.std(p)
    return 2 * r * sy * sp / (sy**2 + sp**2 + (np.mean(y) - np.mean(p)) ** 2)


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(7)
    y = np.clip(rng.normal(0.1, 0.4, 500), -1, 1)
    p = np.clip(0.7 * y + rng.normal(0.05, 0.2, 500), -1, 1)
    return y, p


def test_metrics_match_independent_implementations(signals):
    y, p = signals
    assert metrics.ccc(y, p) == pytest.approx(independent_ccc(y, p), abs=1e-12)
    assert metrics.pcc(y, p) == pytest.approx(stats.pearsonr(y, p).statistic, abs=1e-12)
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt(sum((a - b) ** 2 for a, b in zip(y, p)) / len(y)), abs=1e-12)
    assert metrics.sagr(y, p) == pytest.approx(
        sum((a > 0) == (b > 0) and (a < 0) == (b < 0) for a, b in zip(y, p)) / len(y)
    )


def test_metrics_drop_nan_pairs_and_handle_constants(signals):
    y, p = signals
    p_nan = p.copy()
    p_nan[::10] = np.nan
    keep = np.isfinite(p_nan)
    assert metrics.ccc(y, p_nan) == pytest.approx(independent_ccc(y[keep], p[keep]), abs=1e-12)
    assert math.isnan(metrics.pcc(y, np.zeros_like(y)))


@pytest.fixture(scope="module")
def loaded_modules(tmp_path_factory):
    import evaluate

    modules = str(tmp_path_factory.mktemp("hf_modules"))  # not the user's cache, not shared between test workers
    return {name: evaluate.load(metric_path(name), dynamic_modules_path=modules) for name in METRIC_MODULES}


def test_ccc_module_loads_offline_by_path(loaded_modules, signals):
    y, p = signals
    result = loaded_modules["ccc"].compute(predictions=p, references=y)
    assert result["ccc"] == pytest.approx(independent_ccc(y, p), abs=1e-12)  # float64 features: no float32 rounding


def test_va_metrics_module(loaded_modules, signals):
    y, p = signals
    arousal_y, arousal_p = y[::-1].copy(), p[::-1].copy() * 0.5
    result = loaded_modules["va_metrics"].compute(
        predictions=np.stack([p, arousal_p], axis=1), references=np.stack([y, arousal_y], axis=1)
    )
    assert result["valence_ccc"] == pytest.approx(independent_ccc(y, p), abs=1e-12)
    assert result["arousal_pcc"] == pytest.approx(stats.pearsonr(arousal_y, arousal_p).statistic, abs=1e-12)
    assert set(result) == {f"{s}_{m}" for s in ("valence", "arousal") for m in ("rmse", "pcc", "ccc", "sagr")}


def test_unknown_metric_module():
    with pytest.raises(ValueError, match="unknown metric module"):
        metric_path("f1")

"""Valence/arousal metrics, as defined by EmoNet and the MT-CLAR code.

One implementation serves training, ``mtclar evaluate``, the demo and the evaluate
modules. For ground truth ``y`` and prediction ``p``:

* RMSE = sqrt(mean((y - p)^2))
* PCC  = cov(y, p) / (std(y) std(p))
* CCC  = 2 cov(y, p) / (var(y) + var(p) + (mean(y) - mean(p))^2), population variances
* SAGR = mean(sign(y) == sign(p)), numpy's sign (0 is its own sign)

Inputs are computed in float64; NaN pairs (frames with no face) are dropped first.
A constant input has no defined PCC: it is reported as NaN rather than a made-up 0.
"""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("rmse", "pcc", "ccc", "sagr")


def _clean(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"ground truth has {y.size} values but prediction has {p.size}")
    keep = np.isfinite(y) & np.isfinite(p)
    return y[keep], p[keep]


def rmse(y_true, y_pred) -> float:
    y, p = _clean(y_true, y_pred)
    return float(np.sqrt(np.mean((y - p) ** 2))) if y.size else math.nan


def pcc(y_true, y_pred) -> float:
    y, p = _clean(y_true, y_pred)
    if y.size < 2 or np.ptp(y) == 0 or np.ptp(p) == 0:
        return math.nan
    dy, dp = y - y.mean(), p - p.mean()
    denom = math.sqrt(float(np.sum(dy * dy)) * float(np.sum(dp * dp)))
    return float(np.sum(dy * dp) / denom) if denom > 0 else math.nan


def ccc(y_true, y_pred) -> float:
    y, p = _clean(y_true, y_pred)
    if y.size < 2:
        return math.nan
    cov = float(np.mean((y - y.mean()) * (p - p.mean())))
    denom = float(y.var() + p.var() + (y.mean() - p.mean()) ** 2)
    return 2.0 * cov / denom if denom > 0 else math.nan


def sagr(y_true, y_pred) -> float:
    y, p = _clean(y_true, y_pred)
    return float(np.mean(np.sign(y) == np.sign(p))) if y.size else math.nan


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation: the PCC of the ranks (ties averaged); NaN pairs dropped."""
    a, b = _clean(x, y)
    return pcc(_ranks(a), _ranks(b))


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """All four metrics for one signal (valence or arousal)."""
    return {"rmse": rmse(y_true, y_pred), "pcc": pcc(y_true, y_pred), "ccc": ccc(y_true, y_pred), "sagr": sagr(y_true, y_pred)}


def affect_metrics(valence_true, valence_pred, arousal_true, arousal_pred) -> dict[str, float]:
    """Flat dict ``valence_rmse, valence_pcc, ..., arousal_sagr``."""
    out = {}
    for name, (y, p) in {"valence": (valence_true, valence_pred), "arousal": (arousal_true, arousal_pred)}.items():
        out.update({f"{name}_{k}": v for k, v in regression_metrics(y, p).items()})
    return out

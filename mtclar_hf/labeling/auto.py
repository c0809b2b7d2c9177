"""The `auto` anchor mode: each video is labelled by the mode that its own anchors say works best on it.

The support set is the only ground truth a user has, so it is used to check the labels:

1. **Leave one anchor out.** With at least `MIN_ANCHORS_TO_CHECK` anchors, every anchor in turn is hidden and
   predicted from the others by every mode the model offers (the baselines included), each followed by the
   temporal smoother at every strength of `SMOOTHING_STRENGTHS`. The error at the hidden anchors estimates each
   candidate's error on this video.
2. **Correct for the spacing.** Hiding an anchor doubles the gap around it, which hurts `interpolate` far more
   than the model's modes. So each mode's leave-one-out RMSE is multiplied by a scale that was measured on
   validation clips (`calibrate`: true query RMSE / leave-one-out RMSE, pooled) and stored in the model's
   config (`auto_anchor`). Folders without one use 1.
3. **Choose**, for valence and arousal separately, the candidate of lowest estimated RMSE. That estimate is
   reported as the video's expected error.

With fewer anchors, `auto` uses the mode chosen on validation clips for sparse support (`sparse_mode` in
`auto_anchor`), else the model's `fallback_mode` (`latest` for a trained pair model).

The smoother (`smooth_with_anchors`) is a penalised least-squares fit, the maximum a posteriori estimate of a
random walk observed through noisy per-frame predictions: it passes exactly through every anchor's label and
pulls the neighbouring frames towards it, so the curve has no jump there. Strength 0 leaves the predictions as
they are; a large strength tends to linear interpolation between anchors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .labeler import Anchors, available_modes, fallback_mode, predict_from_anchors

MIN_ANCHORS_TO_CHECK = 3
# Seconds of "stiffness": the weight of a frame-to-frame change is strength / time step. At 25 fps, 0.04 ties
# a frame to its neighbours as strongly as to its own prediction.
SMOOTHING_STRENGTHS = (0.0, 0.04, 0.2, 1.0)
_ANCHOR_WEIGHT = 1e9  # how firmly the smoother holds an anchor's label: exactly, to float precision


@dataclass
class AutoSettings:
    """What `auto` learned on validation clips (a model config's `auto_anchor`)."""

    sparse_mode: str | None = None
    rmse_scale: dict[str, list[float]] = field(default_factory=dict)  # mode -> [valence, arousal] factor
    chosen_on: str = ""

    @classmethod
    def of(cls, model) -> AutoSettings:
        stored = getattr(getattr(model, "config", None), "auto_anchor", None) or {}
        return cls(**stored)

    def scale(self, mode: str) -> np.ndarray:
        return np.asarray(self.rmse_scale.get(mode, (1.0, 1.0)), dtype=np.float64)

    def to_dict(self) -> dict:
        return {"sparse_mode": self.sparse_mode, "rmse_scale": self.rmse_scale, "chosen_on": self.chosen_on}


@dataclass
class AutoChoice:
    """What `auto` chose for one video: a (mode, smoothing strength) per dimension, and the estimated RMSE of
    every candidate (None with too few anchors to check)."""

    valence: tuple[str, float]
    arousal: tuple[str, float]
    estimates: dict[tuple[str, float], np.ndarray] | None = None  # (mode, strength) -> [valence, arousal] RMSE

    @property
    def estimated_rmse(self) -> tuple[float, float] | None:
        if self.estimates is None:
            return None
        return float(self.estimates[self.valence][0]), float(self.estimates[self.arousal][1])

    def describe(self) -> str:
        return describe_auto(self.to_dict())

    def to_dict(self) -> dict:
        rmse = self.estimated_rmse
        return {
            "valence": {"mode": self.valence[0], "smoothing": self.valence[1]},
            "arousal": {"mode": self.arousal[0], "smoothing": self.arousal[1]},
            "estimated": None if rmse is None else {"valence_rmse": rmse[0], "arousal_rmse": rmse[1]},
        }


def describe_auto(auto: dict) -> str:
    """`AutoChoice.to_dict()` in words: "fused smoothed 0.2 s", or one mode per dimension."""

    def one(part):
        return part["mode"] if not part["smoothing"] else f"{part['mode']} smoothed {part['smoothing']:g} s"

    valence, arousal = one(auto["valence"]), one(auto["arousal"])
    return valence if valence == arousal else f"{valence} (valence), {arousal} (arousal)"


# ------------------------------------------------------------------------------------------------ smoothing


def solve_tridiagonal(lower: np.ndarray, diagonal: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a tridiagonal system (Thomas algorithm; the systems here are diagonally dominant)."""
    size = len(diagonal)
    c, d = np.empty(size), np.empty(size)
    c[0], d[0] = upper[0] / diagonal[0], rhs[0] / diagonal[0]
    for row in range(1, size):
        pivot = diagonal[row] - lower[row] * c[row - 1]
        c[row] = upper[row] / pivot
        d[row] = (rhs[row] - lower[row] * d[row - 1]) / pivot
    solution = np.empty(size)
    solution[-1] = d[-1]
    for row in range(size - 2, -1, -1):
        solution[row] = d[row] - c[row] * solution[row + 1]
    return solution


def smooth_with_anchors(
    query_times: np.ndarray, predictions: np.ndarray, anchor_times: np.ndarray, labels: np.ndarray, strength: float
) -> np.ndarray:
    """Smoothed predictions at `query_times`: the curve that stays close to the predictions, changes little from
    frame to frame (`strength` seconds of stiffness) and passes through every anchor's label."""
    if strength <= 0 or len(query_times) == 0:
        return predictions
    times = np.concatenate([query_times, anchor_times])
    values = np.concatenate([predictions, labels])
    weights = np.concatenate([np.ones(len(query_times)), np.full(len(anchor_times), _ANCHOR_WEIGHT)])
    order = np.argsort(times, kind="stable")
    times, values, weights = times[order], values[order], weights[order]
    stiffness = strength / np.maximum(np.diff(times), 1e-6)  # between point j and j + 1
    lower = np.concatenate([[0.0], -stiffness])
    upper = np.concatenate([-stiffness, [0.0]])
    diagonal = weights + np.concatenate([[0.0], stiffness]) + np.concatenate([stiffness, [0.0]])
    smoothed = np.empty(len(times))
    smoothed[order] = solve_tridiagonal(lower, diagonal, upper, weights * values)
    return smoothed[: len(query_times)]


# ------------------------------------------------------------------------------------------------ choosing


def _without(anchors: Anchors, hidden: int) -> Anchors:
    keep = np.arange(len(anchors)) != hidden
    return Anchors(anchors.embeddings[torch.as_tensor(keep)], anchors.timestamps[keep], anchors.valence[keep], anchors.arousal[keep])


def _window(query_times: np.ndarray, anchor_times: np.ndarray, hidden: int) -> np.ndarray:
    """Queries between the hidden anchor's neighbours: all that the smoother needs to predict it."""
    start = anchor_times[hidden - 1] if hidden > 0 else -np.inf
    stop = anchor_times[hidden + 1] if hidden + 1 < len(anchor_times) else np.inf
    return np.flatnonzero((query_times > start) & (query_times < stop))


def leave_one_out_errors(
    model, query_embeddings: torch.Tensor, query_times: np.ndarray, anchors: Anchors, modes, **anchor_kwargs
) -> dict[tuple[str, float], np.ndarray]:
    """(mode, strength) -> (K, 2) errors (valence, arousal) at each anchor when it is hidden and predicted."""
    errors = {(mode, strength): np.empty((len(anchors), 2)) for mode in modes for strength in SMOOTHING_STRENGTHS}
    for hidden in range(len(anchors)):
        rest = _without(anchors, hidden)
        window = _window(query_times, anchors.timestamps, hidden)
        # The hidden anchor is one more query, the last row.
        embeddings = torch.cat([query_embeddings[torch.as_tensor(window, dtype=torch.long)], anchors.embeddings[hidden : hidden + 1]])
        times = np.append(query_times[window], anchors.timestamps[hidden])
        truth = (anchors.valence[hidden], anchors.arousal[hidden])
        for mode in modes:
            predicted = predict_from_anchors(model, embeddings, times, rest, mode=mode, **anchor_kwargs)
            for strength in SMOOTHING_STRENGTHS:
                for dim in (0, 1):
                    labels = rest.valence if dim == 0 else rest.arousal
                    smoothed = smooth_with_anchors(times, predicted[dim], rest.timestamps, labels, strength)
                    errors[(mode, strength)][hidden, dim] = smoothed[-1] - truth[dim]
    return errors


def choose_auto(
    model, query_embeddings: torch.Tensor, query_times: np.ndarray, anchors: Anchors, settings: AutoSettings | None = None, **anchor_kwargs
) -> AutoChoice:
    """The (mode, smoothing) per dimension for this video, from its own anchors (see the module docstring)."""
    settings = settings or AutoSettings.of(model)
    modes = available_modes(model)
    if len(anchors) < MIN_ANCHORS_TO_CHECK:
        mode = settings.sparse_mode if settings.sparse_mode in modes else fallback_mode(model)
        return AutoChoice(valence=(mode, 0.0), arousal=(mode, 0.0))
    errors = leave_one_out_errors(model, query_embeddings, np.asarray(query_times, np.float64), anchors, modes, **anchor_kwargs)
    estimates = {
        candidate: np.sqrt(np.mean(values**2, axis=0)) * settings.scale(candidate[0]) for candidate, values in errors.items()
    }
    best = [min(estimates, key=lambda candidate: (estimates[candidate][dim], candidate[1])) for dim in (0, 1)]
    return AutoChoice(valence=best[0], arousal=best[1], estimates=estimates)


def predict_auto(
    model, query_embeddings: torch.Tensor, query_times: np.ndarray, anchors: Anchors, settings: AutoSettings | None = None, **anchor_kwargs
) -> tuple[np.ndarray, np.ndarray, AutoChoice]:
    """Valence and arousal of the queries by the `auto` choice for this video, and the choice."""
    query_times = np.asarray(query_times, np.float64)
    choice = choose_auto(model, query_embeddings, query_times, anchors, settings, **anchor_kwargs)
    predictions, results = {}, []
    for dim, (mode, strength) in enumerate((choice.valence, choice.arousal)):
        if mode not in predictions:
            predictions[mode] = predict_from_anchors(model, query_embeddings, query_times, anchors, mode=mode, **anchor_kwargs)
        labels = anchors.valence if dim == 0 else anchors.arousal
        results.append(smooth_with_anchors(query_times, predictions[mode][dim], anchors.timestamps, labels, strength))
    return results[0], results[1], choice

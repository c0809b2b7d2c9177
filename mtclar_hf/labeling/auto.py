"""The `auto` anchor mode: each video is labelled by the mode that its own anchors say works best on it.

The support set is the only ground truth a user has, so it is used to check the labels:

1. **Leave one anchor out.** With at least `MIN_ANCHORS_TO_CHECK` anchors, every anchor in turn is hidden and
   predicted from the others by every mode the model offers (the baselines included), each pinned to the
   anchors (`pinned_predictions`) and followed by the temporal smoother at every strength of
   `SMOOTHING_STRENGTHS`. The error at the hidden anchors estimates each
   candidate's error on this video.
2. **Correct for the spacing.** Hiding an anchor doubles the gap around it, which hurts `interpolate` far more
   than the model's modes. So each mode's leave-one-out RMSE is multiplied by a scale that was measured on
   validation clips (`calibration.calibrate_auto`: true query RMSE / leave-one-out RMSE, pooled) and stored in the
   model's config (`auto_anchor`). Folders without one use 1.
3. **Choose**, for valence and arousal separately, the candidate of lowest estimated RMSE. That estimate is
   reported as the video's expected error. A calibrated folder names the mode that was best on the validation
   clips (`preferred_mode`); a candidate of another mode wins only if its estimate is below `switch_margin`
   times the preferred mode's best. A handful of leave-one-out errors (6 at every 50th frame of 300) is a noisy
   estimate, and on validation clips a plain "lowest wins" swapped a good model mode for `interpolate` on
   videos where it was far worse.

With fewer anchors, `auto` uses the mode chosen on validation clips for sparse support (`sparse_mode` in
`auto_anchor`), else the model's `fallback_mode` (`latest` for a trained pair model). There every label is an
anchor's plus a difference across the video, and on faces it never saw a pair model's differences come out shrunk
toward 0, which CCC penalises: they are multiplied by the gain calibration measured (`sparse_gain`,
`calibration.fit_difference_gain`). With more anchors the pinning below corrects the level, and the gain made
the leave-one-out estimates rank videos worse on validation clips (docs/LABELLING.md).

The labels meet every anchor without a jump: a mode's predictions between two anchors are shifted by the
linear interpolation of the residuals at the two ends (`pinned_predictions`). The smoother
(`smooth_with_anchors`) then removes frame-to-frame noise: a penalised least-squares fit, the maximum a
posteriori estimate of a random walk observed through noisy per-frame predictions, held at every anchor's label.
Strength 0 leaves the predictions as they are; a large strength tends to linear interpolation between anchors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .anchors import (
    ANCHOR_MODES,
    BASELINES,
    Anchors,
    available_modes,
    fallback_mode,
    label_range,
    predict_from_anchors,
)

MIN_ANCHORS_TO_CHECK = 3
# Seconds of "stiffness": the weight of a frame-to-frame change is strength / time step. At 25 fps, 0.04 ties
# a frame to its neighbours as strongly as to its own prediction. On SynthAffect's validation clips, offering
# stronger smoothing too (0.2 s, 1 s) lost accuracy: from a handful of anchors, more candidates meant more
# wrong picks (docs/LABELLING.md, `python -m benchmarks.auto_mode`).
SMOOTHING_STRENGTHS = (0.0, 0.04)
# Residuals at the anchors fade over this many seconds (chosen on SynthAffect's validation clips: 0.5 s kept
# `weighted` as accurate pinned as unpinned at 2% support, where a linear correction lost 0.01 CCC).
PIN_DECAY = 0.5
# Another mode must beat the preferred mode's estimate by this factor (chosen on 64 SynthAffect validation clips:
# every margin from 0.6 down lost nothing against never switching, and larger ones lost up to 0.012 valence CCC at
# every 50th frame; docs/LABELLING.md, `python -m benchmarks.auto_mode`).
SWITCH_MARGIN = 0.6
_ANCHOR_WEIGHT = 1e9  # how firmly the smoother holds an anchor's label: exactly, to float precision


def is_usable_gain(gain) -> bool:
    """Two finite, positive factors (valence, arousal)."""
    values = np.asarray(gain, dtype=np.float64)
    return values.shape == (2,) and bool(np.all(np.isfinite(values) & (values > 0)))


@dataclass
class AutoSettings:
    """What `auto` learned on validation clips (a model config's `auto_anchor`)."""

    sparse_mode: str | None = None
    rmse_scale: dict[str, list[float]] = field(default_factory=dict)  # mode -> [valence, arousal] factor
    modes: list[str] | None = None  # the candidates; None: every mode the model offers
    smoothing: list[float] = field(default_factory=lambda: list(SMOOTHING_STRENGTHS))
    pin_decay: float | None = PIN_DECAY
    sparse_gain: list[float] | None = None  # [valence, arousal] difference gain with fewer than 3 anchors
    preferred_mode: str | None = None  # the candidate best on validation clips; None: no preference
    switch_margin: float = SWITCH_MARGIN  # another mode wins only below this times the preferred one's estimate
    chosen_on: str = ""

    @classmethod
    def of(cls, model) -> AutoSettings:
        """The model's stored settings; keys this version does not know (a folder calibrated by another version)
        are ignored; a `sparse_gain` that is not two finite positive numbers is not used, nor a preference whose
        `switch_margin` is not a number in [0, 1] or whose mode is not a candidate."""
        stored = getattr(getattr(model, "config", None), "auto_anchor", None) or {}
        settings = cls(**{key: value for key, value in stored.items() if key in cls.__dataclass_fields__})
        if settings.sparse_gain is not None and not is_usable_gain(settings.sparse_gain):
            settings.sparse_gain = None
        margin = settings.switch_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 1:
            settings.preferred_mode, settings.switch_margin = None, SWITCH_MARGIN
        if settings.modes is not None and settings.preferred_mode not in settings.modes:
            settings.preferred_mode = None
        return settings

    def scale(self, mode: str) -> np.ndarray:
        return np.asarray(self.rmse_scale.get(mode, (1.0, 1.0)), dtype=np.float64)

    def to_dict(self) -> dict:
        return {
            "sparse_mode": self.sparse_mode,
            "rmse_scale": self.rmse_scale,
            "modes": self.modes,
            "smoothing": self.smoothing,
            "pin_decay": self.pin_decay,
            "sparse_gain": self.sparse_gain,
            "preferred_mode": self.preferred_mode,
            "switch_margin": self.switch_margin,
            "chosen_on": self.chosen_on,
        }

    def candidates(self, model) -> tuple[str, ...]:
        offered = available_modes(model)
        return tuple(mode for mode in (self.modes or offered) if mode in offered)

    def choice_weight(self, mode: str) -> float:
        """What a candidate's estimate is multiplied by when choosing: the switch margin for the preferred mode (so
        another mode wins only below margin x its estimate; 0: never), 1 for the others and when none is preferred."""
        return self.switch_margin if self.preferred_mode is not None and mode == self.preferred_mode else 1.0


@dataclass
class AutoChoice:
    """What `auto` chose for one video: a (mode, smoothing strength) per dimension, and the estimated RMSE of
    every candidate (None with too few anchors to check)."""

    valence: tuple[str, float]
    arousal: tuple[str, float]
    estimates: dict[tuple[str, float], np.ndarray] | None = None  # (mode, strength) -> [valence, arousal] RMSE
    difference_gain: tuple[float, float] | None = None  # the pair heads' differences were multiplied by it

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
            "difference_gain": None if self.difference_gain is None else list(self.difference_gain),
        }


def describe_auto(auto: dict) -> str:
    """`AutoChoice.to_dict()` in words: "fused smoothed 0.2 s", or one mode per dimension, and the difference gain
    (valence / arousal) where one was used."""

    def one(part):
        return part["mode"] if not part["smoothing"] else f"{part['mode']} smoothed {part['smoothing']:g} s"

    valence, arousal = one(auto["valence"]), one(auto["arousal"])
    described = valence if valence == arousal else f"{valence} (valence), {arousal} (arousal)"
    gain = auto.get("difference_gain")
    return described if gain is None else f"{described}, differences x {gain[0]:.2f} / {gain[1]:.2f}"


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


_EDGE = 1e-6  # seconds: "just after" and "just before" an anchor


def _residual_weights(since_start: np.ndarray, until_stop: np.ndarray, decay: float | None):
    """Weights of the residuals at a stretch's two ends: 1 and 0 at its start, 0 and 1 at its end; linear in time,
    or fading over `decay` seconds (sinh profiles) so that a long stretch keeps the model's own predictions."""
    span = since_start + until_stop
    safe = np.where(span > 0, span, 1.0)
    if decay is None:
        weight_stop = np.where(span > 0, since_start / safe, 0.0)
        return 1.0 - weight_stop, weight_stop
    scale = np.sinh(np.minimum(safe / decay, 50.0))
    return (
        np.where(span > 0, np.sinh(np.minimum(until_stop / decay, 50.0)) / scale, 1.0),
        np.where(span > 0, np.sinh(np.minimum(since_start / decay, 50.0)) / scale, 0.0),
    )


def pinned_predictions(
    model,
    query_embeddings: torch.Tensor,
    query_times: np.ndarray,
    anchors: Anchors,
    mode: str,
    decay: float | None = PIN_DECAY,
    **anchor_kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """A mode's predictions made to meet every anchor's label: each stretch between two anchors is shifted by the
    residuals at its ends (label minus the prediction just after the first anchor and just before the second),
    each fading over `decay` seconds (None: interpolated linearly), so the curve has no jump at an anchor.
    Baselines need no pinning."""
    predicted = predict_from_anchors(model, query_embeddings, query_times, anchors, mode=mode, **anchor_kwargs)
    if mode in BASELINES or len(query_times) == 0:
        return predicted
    times = anchors.timestamps
    previous = np.searchsorted(times, query_times, side="right") - 1
    needed = np.unique(np.clip(np.concatenate([previous, previous + 1]), 0, len(anchors) - 1))
    # The model's prediction at each needed anchor's own face, as a query just after and just before it.
    edge_index = torch.as_tensor(np.concatenate([needed, needed]), dtype=torch.long)
    edge_times = np.concatenate([times[needed] + _EDGE, times[needed] - _EDGE])
    edges = predict_from_anchors(model, anchors.embeddings[edge_index], edge_times, anchors, mode=mode, **anchor_kwargs)
    low, high = label_range(model)
    start, stop = np.clip(previous, 0, len(anchors) - 1), np.clip(previous + 1, 0, len(anchors) - 1)
    weight_start, weight_stop = _residual_weights(query_times - times[start], times[stop] - query_times, decay)
    pinned = []
    for dim, labels in enumerate((anchors.valence, anchors.arousal)):
        after, before = np.zeros(len(anchors)), np.zeros(len(anchors))
        after[needed] = labels[needed] - edges[dim][: len(needed)]
        before[needed] = labels[needed] - edges[dim][len(needed) :]
        correction = weight_start * after[start] + weight_stop * before[stop]
        correction = np.where(previous < 0, before[0], correction)  # before the first anchor: its left residual
        correction = np.where(previous >= len(anchors) - 1, after[-1], correction)  # after the last: its right one
        pinned.append(np.clip(predicted[dim] + correction, low, high))
    return pinned[0], pinned[1]


def leave_one_out_errors(
    model,
    query_embeddings: torch.Tensor,
    query_times: np.ndarray,
    anchors: Anchors,
    modes,
    strengths=SMOOTHING_STRENGTHS,
    decay: float | None = PIN_DECAY,
    **anchor_kwargs,
) -> dict[tuple[str, float], np.ndarray]:
    """(mode, strength) -> (K, 2) errors (valence, arousal) at each anchor when it is hidden and predicted."""
    errors = {(mode, strength): np.empty((len(anchors), 2)) for mode in modes for strength in strengths}
    for hidden in range(len(anchors)):
        rest = _without(anchors, hidden)
        window = _window(query_times, anchors.timestamps, hidden)
        # The hidden anchor is one more query, the last row.
        embeddings = torch.cat([query_embeddings[torch.as_tensor(window, dtype=torch.long)], anchors.embeddings[hidden : hidden + 1]])
        times = np.append(query_times[window], anchors.timestamps[hidden])
        truth = (anchors.valence[hidden], anchors.arousal[hidden])
        for mode in modes:
            predicted = pinned_predictions(model, embeddings, times, rest, mode, decay, **anchor_kwargs)
            for strength in strengths:
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
    modes = settings.candidates(model)
    if len(anchors) < MIN_ANCHORS_TO_CHECK:
        mode = settings.sparse_mode if settings.sparse_mode in available_modes(model) else fallback_mode(model)
        # Only the pair modes label with the pair heads' differences; the gain means nothing to the others.
        gain = tuple(settings.sparse_gain) if settings.sparse_gain is not None and mode in ANCHOR_MODES else None
        return AutoChoice(valence=(mode, 0.0), arousal=(mode, 0.0), difference_gain=gain)
    errors = leave_one_out_errors(
        model, query_embeddings, np.asarray(query_times, np.float64), anchors, modes, settings.smoothing, settings.pin_decay,
        **anchor_kwargs,
    )
    estimates = {
        candidate: np.sqrt(np.mean(values**2, axis=0)) * settings.scale(candidate[0]) for candidate, values in errors.items()
    }
    # The raw estimate breaks ties, so that with margin 0 the preferred mode's smoothing strengths still compete.
    best = [
        min(
            estimates,
            key=lambda c: (estimates[c][dim] * settings.choice_weight(c[0]), estimates[c][dim], c[1]),
        )
        for dim in (0, 1)
    ]
    return AutoChoice(valence=best[0], arousal=best[1], estimates=estimates)


def predict_auto(
    model, query_embeddings: torch.Tensor, query_times: np.ndarray, anchors: Anchors, settings: AutoSettings | None = None, **anchor_kwargs
) -> tuple[np.ndarray, np.ndarray, AutoChoice]:
    """Valence and arousal of the queries by the `auto` choice for this video, and the choice."""
    query_times = np.asarray(query_times, np.float64)
    settings = settings or AutoSettings.of(model)
    choice = choose_auto(model, query_embeddings, query_times, anchors, settings, **anchor_kwargs)
    if choice.difference_gain is not None:
        anchor_kwargs = {**anchor_kwargs, "difference_gain": choice.difference_gain}
    predictions, results = {}, []
    for dim, (mode, strength) in enumerate((choice.valence, choice.arousal)):
        if mode not in predictions:
            predictions[mode] = pinned_predictions(
                model, query_embeddings, query_times, anchors, mode, settings.pin_decay, **anchor_kwargs
            )
        labels = anchors.valence if dim == 0 else anchors.arousal
        results.append(smooth_with_anchors(query_times, predictions[mode][dim], anchors.timestamps, labels, strength))
    return results[0], results[1], choice

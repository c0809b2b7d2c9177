"""Labelling query frames from anchors (labelled frames of the same video): the anchor modes' arithmetic.

Every function here works on embeddings already computed (`EncodedVideo.embeddings`): a query q is predicted
from an anchor s as `clip(label(s) + compare(emb_q, emb_s).valence_diff)` into the model's label range (the
model already applies 2*tanh), and the per-anchor predictions are combined with the weights of the mode.
`compare` runs only the fusion and the small heads, so K anchors cost K head passes per frame, not K encoder
passes.

Anchor modes (which anchors a query uses, with which weights):

* ``latest``    the latest support frame at or before the query (the reference); queries before the
                first support frame use the first one.
* ``nearest``   the support frame nearest in time (ties go to the earlier one).
* ``mean``      all support frames (or the `max_anchors` nearest in time), equal weights.
* ``weighted``  all support frames (or the `max_anchors` nearest in time), softmax weights from the
                embedding cosine similarity / `similarity_temperature` minus the time distance /
                `time_scale` seconds.
* ``fused``     the two support frames bracketing the query, weighted linearly by temporal distance:
                the interpolation of the MT-CLAR predictions of the previous and the next anchor.

Single-image mode, for models with an SL head (`MTCLARForAffectPrediction`, or an `MTCLARModel` with
`affect_head`, such as a converted EmoNet folder):

* ``offset``    ``clip(label(s) + SL(q) - SL(s))``: the SL head's prediction of the query, shifted by each
                anchor's residual (its label minus the SL head's prediction of it); the two bracketing anchors
                are weighted linearly in time as in ``fused``, so the residual is interpolated between them.

Baselines (no model): ``hold`` copies the latest anchor's label; ``interpolate`` interpolates the
labels of the bracketing anchors linearly in time.

A model offers the pair modes only if its pair heads were trained (`config.pair_heads_trained`), and
``offset`` only if it has an SL head (`available_modes`).

``auto`` (the default) picks, per video and per dimension, the mode and temporal smoothing whose
leave-one-anchor-out error on the user's own anchors is lowest, and estimates the labels' RMSE
(`mtclar_hf.labeling.auto`). With fewer than 3 anchors it uses the mode chosen on validation clips,
else `fallback_mode`: ``latest`` where the pair heads are trained, else ``offset``.

Every output row also carries an ``uncertainty``: how much the two anchors nearest in time disagree
about the frame (`anchor_disagreement`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import ConfigError, LabelError

if TYPE_CHECKING:
    from .labeler import EncodedVideo

ANCHOR_MODES = ("latest", "nearest", "mean", "weighted", "fused")
SINGLE_IMAGE_MODES = ("offset",)
BASELINES = ("hold", "interpolate")
AUTO_MODE = "auto"
ALL_MODES = (AUTO_MODE,) + ANCHOR_MODES + SINGLE_IMAGE_MODES + BASELINES

@dataclass
class Anchors:
    """Labelled reference frames: embeddings (K, D), timestamps (K,) and labels (K,), sorted by time."""

    embeddings: torch.Tensor
    timestamps: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamps)


def anchors_from_support(encoded: EncodedVideo, support: dict[int, tuple[float, float]]) -> Anchors:
    frames = sorted(support)
    return Anchors(
        embeddings=encoded.embeddings[frames] if frames else encoded.embeddings[:0],
        timestamps=encoded.timestamps[frames].astype(np.float64),
        valence=np.array([support[f][0] for f in frames], dtype=np.float64),
        arousal=np.array([support[f][1] for f in frames], dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------------------------
# Which modes a model offers.


def available_modes(model) -> tuple[str, ...]:
    """The modes `model` can label with: pair modes need trained pair heads, `offset` an SL head."""
    pair_heads = hasattr(model, "compare") and getattr(model.config, "pair_heads_trained", True)
    single_image = getattr(model, "has_affect_head", False)
    return (ANCHOR_MODES if pair_heads else ()) + (SINGLE_IMAGE_MODES if single_image else ()) + BASELINES


def fallback_mode(model) -> str:
    """The mode when nothing better is known: `latest` (the reference) where the pair heads are trained, else
    `offset`, else `interpolate`."""
    modes = available_modes(model)
    return next(mode for mode in ("latest", "offset", "interpolate") if mode in modes)


def check_mode(model, mode: str | None) -> str:
    """`mode` (None: `auto`, the default); a one-line error for a mode the model cannot use."""
    if mode is None or mode == AUTO_MODE:
        return AUTO_MODE
    if mode not in ALL_MODES:
        raise ConfigError(f"unknown anchor mode {mode!r} (choose from {', '.join(ALL_MODES)})")
    modes = available_modes(model)
    if mode not in modes:
        if mode in SINGLE_IMAGE_MODES:
            why = "has no SL head"
        elif hasattr(model, "compare"):
            why = "has untrained pair heads (e.g. a converted EmoNet)"
        else:
            why = "has no pair heads (an MT-CLAR+SL model)"
        name = getattr(model, "name_or_path", "") or type(model).__name__
        raise ConfigError(f"{name}: anchor mode {mode!r} is not available: the model {why}; use {', '.join(modes)}")
    return mode


def label_range(model) -> tuple[float, float]:
    """(label_min, label_max) of the model's config: what predictions are clipped to and plots span."""
    return float(model.config.label_min), float(model.config.label_max)


# ---------------------------------------------------------------------------------------------------------------
# Which anchors each query uses: dense (Q, M) anchor indices and weights (rows sum to 1).


def previous_anchor(anchor_times: np.ndarray, query_times: np.ndarray) -> np.ndarray:
    """Index of the latest anchor at or before each query; the first anchor for queries before it."""
    return np.clip(np.searchsorted(anchor_times, query_times, side="right") - 1, 0, len(anchor_times) - 1)


def nearest_anchor(anchor_times: np.ndarray, query_times: np.ndarray) -> np.ndarray:
    before = previous_anchor(anchor_times, query_times)
    after = np.minimum(before + 1, len(anchor_times) - 1)
    after_closer = np.abs(anchor_times[after] - query_times) < np.abs(anchor_times[before] - query_times)
    return np.where(after_closer, after, before)


def bracketing_anchors(anchor_times: np.ndarray, query_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q, 2) previous/next anchor indices and linear-in-time weights; one side only outside the anchors."""
    before = previous_anchor(anchor_times, query_times)
    after = np.minimum(before + 1, len(anchor_times) - 1)
    t0, t1 = anchor_times[before], anchor_times[after]
    span = t1 - t0
    inside = (span > 0) & (query_times >= t0) & (query_times <= t1)
    weight_after = np.where(inside, (query_times - t0) / np.where(span > 0, span, 1.0), 0.0)
    return np.stack([before, after], axis=1), np.stack([1.0 - weight_after, weight_after], axis=1)


def nearest_in_time(anchor_times: np.ndarray, query_times: np.ndarray, max_anchors: int | None) -> np.ndarray:
    """(Q, M) indices of all anchors, or of the `max_anchors` nearest in time to each query."""
    num = len(anchor_times)
    if max_anchors is None or max_anchors >= num:
        return np.broadcast_to(np.arange(num), (len(query_times), num)).copy()
    distance = np.abs(query_times[:, None] - anchor_times[None, :])
    return np.argpartition(distance, max_anchors - 1, axis=1)[:, :max_anchors]


def anchor_weights(
    mode: str,
    anchors: Anchors,
    query_times: np.ndarray,
    query_embeddings: torch.Tensor | None = None,
    max_anchors: int | None = None,
    time_scale: float = 2.0,
    similarity_temperature: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Anchor indices (Q, M) and weights (Q, M) for each query under an anchor mode or baseline."""
    times = anchors.timestamps
    if mode in ("latest", "hold"):
        index = previous_anchor(times, query_times)[:, None]
        return index, np.ones(index.shape)
    if mode == "nearest":
        index = nearest_anchor(times, query_times)[:, None]
        return index, np.ones(index.shape)
    if mode in ("fused", "offset", "interpolate"):
        return bracketing_anchors(times, query_times)
    if mode == "mean":
        index = nearest_in_time(times, query_times, max_anchors)
        return index, np.full(index.shape, 1.0 / index.shape[1])
    if mode == "weighted":
        if query_embeddings is None:
            raise ValueError("anchor mode 'weighted' needs the query embeddings")
        if time_scale <= 0 or similarity_temperature <= 0:
            raise ConfigError("weighted anchors need time_scale > 0 and similarity_temperature > 0")
        index = nearest_in_time(times, query_times, max_anchors)
        queries = torch.nn.functional.normalize(query_embeddings.float(), dim=-1)
        refs = torch.nn.functional.normalize(anchors.embeddings.float().to(queries.device), dim=-1)
        similarity = (queries @ refs.T).cpu().numpy().astype(np.float64)
        similarity = np.take_along_axis(similarity, index, axis=1)
        logits = similarity / similarity_temperature - np.abs(query_times[:, None] - times[index]) / time_scale
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return index, weights / weights.sum(axis=1, keepdims=True)
    raise ConfigError(f"unknown anchor mode {mode!r} (choose from {', '.join(ALL_MODES)})")


@torch.inference_mode()
def predicted_differences(
    model,
    query_embeddings: torch.Tensor,
    anchor_embeddings: torch.Tensor,
    index: np.ndarray,
    pair_batch_size: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """v(q) - v(s) and a(q) - a(s) for every (query, anchor) pair in `index` (Q, M), in chunks of pairs."""
    num_queries, per_query = index.shape
    query_rows = np.repeat(np.arange(num_queries), per_query)
    anchor_rows = index.reshape(-1)
    # Cached embeddings may live on the CPU (saved .npz, evaluation): move them to where the heads run.
    device = getattr(model, "device", query_embeddings.device)
    dtype = getattr(model, "dtype", query_embeddings.dtype)
    query_embeddings = query_embeddings.to(device, dtype)
    anchor_embeddings = anchor_embeddings.to(device, dtype)
    valence, arousal = np.empty(len(query_rows)), np.empty(len(query_rows))
    for start in range(0, len(query_rows), pair_batch_size):
        stop = start + pair_batch_size
        q = torch.as_tensor(query_rows[start:stop], device=device)
        s = torch.as_tensor(anchor_rows[start:stop], device=device)
        out = model.compare(query_embeddings[q], anchor_embeddings[s])
        valence[start:stop] = out.valence_diff.float().cpu().numpy()
        arousal[start:stop] = out.arousal_diff.float().cpu().numpy()
    return valence.reshape(index.shape), arousal.reshape(index.shape)


@torch.inference_mode()
def single_image_affect(model, embeddings: torch.Tensor, batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """The SL head's valence and arousal (N,) of cached embeddings, unclipped."""
    device = getattr(model, "device", embeddings.device)
    dtype = getattr(model, "dtype", embeddings.dtype)
    valence, arousal = np.empty(len(embeddings)), np.empty(len(embeddings))
    for start in range(0, len(embeddings), batch_size):
        _, v, a = model.predict_affect(embeddings[start : start + batch_size].to(device, dtype))
        valence[start : start + batch_size] = v.float().cpu().numpy()
        arousal[start : start + batch_size] = a.float().cpu().numpy()
    return valence, arousal


def offset_differences(
    model, query_embeddings: torch.Tensor, anchor_embeddings: torch.Tensor, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SL(q) - SL(s) for every (query, anchor) pair in `index` (Q, M): the `offset` mode's differences."""
    query_valence, query_arousal = single_image_affect(model, query_embeddings)
    anchor_valence, anchor_arousal = single_image_affect(model, anchor_embeddings)
    return query_valence[:, None] - anchor_valence[index], query_arousal[:, None] - anchor_arousal[index]


def predict_from_anchors(
    model,
    query_embeddings: torch.Tensor,
    query_times: np.ndarray,
    anchors: Anchors,
    mode: str = "latest",
    max_anchors: int | None = None,
    time_scale: float = 2.0,
    similarity_temperature: float = 0.1,
    pair_batch_size: int = 8192,
    difference_gain: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal (Q,) of query frames from labelled anchors, by an anchor mode or a baseline.

    `difference_gain` (valence, arousal) multiplies the pair heads' differences (`auto` uses the one calibration
    measured, with sparse support); None leaves them as they are."""
    if mode not in ALL_MODES:
        raise ConfigError(f"unknown anchor mode {mode!r} (choose from {', '.join(ALL_MODES)})")
    num_queries = len(query_times)
    if num_queries == 0:
        return np.empty(0), np.empty(0)
    if len(anchors) == 0:
        raise LabelError("no usable support frame: at least one labelled frame with a face is needed")
    query_times = np.asarray(query_times, dtype=np.float64)
    options = dict(max_anchors=max_anchors, time_scale=time_scale, similarity_temperature=similarity_temperature)
    if mode == AUTO_MODE:
        from .auto import predict_auto

        valence, arousal, _ = predict_auto(model, query_embeddings, query_times, anchors, **options)
        return valence, arousal
    index, weights = anchor_weights(
        mode, anchors, query_times, query_embeddings, max_anchors, time_scale, similarity_temperature
    )
    per_anchor_valence, per_anchor_arousal = per_anchor_predictions(
        model, query_embeddings, anchors, index, mode, pair_batch_size, difference_gain
    )
    return (weights * per_anchor_valence).sum(axis=1), (weights * per_anchor_arousal).sum(axis=1)


def per_anchor_predictions(
    model,
    query_embeddings: torch.Tensor,
    anchors: Anchors,
    index: np.ndarray,
    mode: str,
    pair_batch_size: int = 8192,
    difference_gain: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal (Q, M) of each query as predicted from each anchor in `index` by `mode`'s rule:
    the anchor's label (baselines), plus the pair heads' difference (pair modes, times `difference_gain`) or the
    SL heads' (offset), clipped to the label range."""
    per_anchor_valence, per_anchor_arousal = anchors.valence[index], anchors.arousal[index]
    if mode in BASELINES:
        return per_anchor_valence, per_anchor_arousal
    if mode in SINGLE_IMAGE_MODES:
        valence_diff, arousal_diff = offset_differences(model, query_embeddings, anchors.embeddings, index)
    else:
        valence_diff, arousal_diff = predicted_differences(
            model, query_embeddings, anchors.embeddings, index, pair_batch_size
        )
        if difference_gain is not None:
            valence_diff, arousal_diff = difference_gain[0] * valence_diff, difference_gain[1] * arousal_diff
    low, high = label_range(model)
    return np.clip(per_anchor_valence + valence_diff, low, high), np.clip(per_anchor_arousal + arousal_diff, low, high)


def anchor_disagreement(model, query_embeddings: torch.Tensor, query_times: np.ndarray, anchors: Anchors) -> np.ndarray:
    """How much the two anchors nearest in time disagree about each query (Q,): the mean over valence and arousal
    of |prediction from one - prediction from the other|, by the model's `fallback_mode` (a baseline's predictions
    are the anchors' labels themselves). NaN with fewer than two anchors."""
    query_times = np.asarray(query_times, dtype=np.float64)
    if len(anchors) < 2:
        return np.full(len(query_times), np.nan)
    index = nearest_in_time(anchors.timestamps, query_times, 2)
    valence, arousal = per_anchor_predictions(model, query_embeddings, anchors, index, fallback_mode(model))
    return 0.5 * (np.abs(valence[:, 0] - valence[:, 1]) + np.abs(arousal[:, 0] - arousal[:, 1]))

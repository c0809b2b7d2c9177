"""Calibrating labelling on validation clips (`mtclar calibrate`; the quickstart runs it on its validation people).

What is measured is stored in the model's config (`auto_anchor`, see `auto.AutoSettings`):

* what the `auto` mode needs (`auto`'s module docstring): for sparse support, its mode and the **difference gain**
  (on faces it never saw, a pair model's predicted differences come out shrunk toward 0, regression to the mean:
  `fit_difference_gain` measures the ratio of the spreads of true and predicted differences within the validation
  clips); for 3 anchors or more, the candidates and the factors that turn leave-one-anchor-out errors into the
  errors query frames see.

The clips must be ones nobody reports on.
"""

from __future__ import annotations

import numpy as np

from .anchors import ANCHOR_MODES, BASELINES, available_modes, fallback_mode, predicted_differences
from .auto import MIN_ANCHORS_TO_CHECK, AutoSettings, leave_one_out_errors, pinned_predictions

CALIBRATION_SPACINGS = (50, 20)  # support every k-th frame: the densities the RMSE scales are measured at
GAIN_PAIRS_PER_CLIP = 400


def fit_difference_gain(model, clips, pairs_per_clip: int = GAIN_PAIRS_PER_CLIP, seed: int = 0) -> list[float]:
    """Per dimension, the spread of true differences over the spread of the pair heads' differences, on random pairs
    of frames within each validation clip: the gain that makes the predicted changes as large as the real ones
    (the spread that maximises CCC for a given correlation)."""
    rng = np.random.default_rng(seed)
    predicted, true = [], []
    for clip in clips:
        frames = np.flatnonzero(clip.encoded.face_found & clip.labelled)
        if len(frames) < 2:
            continue
        query, anchor = rng.choice(frames, pairs_per_clip), rng.choice(frames, pairs_per_clip)
        index = np.arange(pairs_per_clip)[:, None]
        differences = predicted_differences(model, clip.encoded.embeddings[query], clip.encoded.embeddings[anchor], index)
        predicted.append(np.stack([d[:, 0] for d in differences], axis=1))
        true.append(np.stack([clip.valence[query] - clip.valence[anchor], clip.arousal[query] - clip.arousal[anchor]], axis=1))
    if not predicted:
        return [1.0, 1.0]
    predicted, true = np.concatenate(predicted), np.concatenate(true)
    # Labels that never change, or heads that predict no change, say nothing about the ratio: no gain there.
    return [
        round(float(true_spread / predicted_spread), 4) if true_spread > 0 and predicted_spread > 0 else 1.0
        for true_spread, predicted_spread in zip(true.std(axis=0), predicted.std(axis=0))
    ]


def _ccc_sum(truths: list, predictions: list) -> float:
    """Pooled valence CCC + arousal CCC of (N, 2) blocks of true and predicted labels."""
    from ..metrics import ccc

    truth, predicted = np.concatenate(truths), np.concatenate(predictions)
    return float(ccc(truth[:, 0], predicted[:, 0]) + ccc(truth[:, 1], predicted[:, 1]))


def _sparse_mode(model, clips, modes, decay, gain) -> tuple[str, dict]:
    """The mode of highest pooled valence + arousal CCC when the first frame is the only anchor (pinned and with the
    difference gain, as `auto` labels)."""
    from .evaluation import same_video_anchors
    from .support import select_support

    pooled = {mode: ([], []) for mode in modes}
    for clip in clips:
        video = clip.encoded
        support = clip.with_faces(select_support("first", clip.support_candidates))
        if not support:
            continue
        queries = clip.query_frames(support)
        anchors = same_video_anchors(clip, support)
        truth = np.stack([clip.valence[queries], clip.arousal[queries]], axis=1)
        for mode in modes:
            predicted = pinned_predictions(
                model, video.embeddings[queries], video.timestamps[queries], anchors, mode, decay, difference_gain=tuple(gain)
            )
            pooled[mode][0].append(truth)
            pooled[mode][1].append(np.stack(predicted, axis=1))
    scores = {mode: _ccc_sum(truths, predictions) for mode, (truths, predictions) in pooled.items() if truths}
    scored = {mode: score for mode, score in scores.items() if np.isfinite(score)}
    return (max(scored, key=scored.get) if scored else fallback_mode(model)), scores


def _spacing_errors(model, clips, modes, spacing: int, decay, **anchor_kwargs) -> tuple[dict, dict, dict]:
    """Per mode, with support every `spacing`-th frame: summed squared errors and counts, (valence, arousal),
    leave-one-out at the anchors and true at the queries; and the pooled valence + arousal CCC at the queries."""
    from .evaluation import same_video_anchors
    from .support import select_support

    loo = {mode: [np.zeros(2), 0] for mode in modes}
    true = {mode: [np.zeros(2), 0] for mode in modes}
    pooled = {mode: ([], []) for mode in modes}
    for clip in clips:
        video = clip.encoded
        support = clip.with_faces(select_support("every-k", clip.support_candidates, k=spacing))
        if len(support) < MIN_ANCHORS_TO_CHECK:
            continue
        queries = clip.query_frames(support)
        anchors = same_video_anchors(clip, support)
        embeddings, times = video.embeddings[queries], video.timestamps[queries]
        errors = leave_one_out_errors(model, embeddings, times, anchors, modes, (0.0,), decay, **anchor_kwargs)
        truth = np.stack([clip.valence[queries], clip.arousal[queries]], axis=1)
        for mode in modes:
            loo[mode][0] += np.sum(errors[(mode, 0.0)] ** 2, axis=0)
            loo[mode][1] += len(anchors)
            predicted = np.stack(pinned_predictions(model, embeddings, times, anchors, mode, decay, **anchor_kwargs), axis=1)
            true[mode][0] += np.sum((predicted - truth) ** 2, axis=0)
            true[mode][1] += len(queries)
            pooled[mode][0].append(truth)
            pooled[mode][1].append(predicted)
    scores = {mode: _ccc_sum(truths, predictions) for mode, (truths, predictions) in pooled.items() if truths}
    return loo, true, scores


def calibrate_auto(
    model, clips, spacings=CALIBRATION_SPACINGS, chosen_on: str = "", design: AutoSettings | None = None, **anchor_kwargs
) -> tuple[AutoSettings, dict]:
    """What labelling needs to know, measured on validation clips (`LabelledClip`s, never the reported ones):

    * the difference gain for sparse support (`fit_difference_gain`);
    * the mode for sparse support, measured with that gain (the best from the first frame alone);
    * the candidates: the model mode of highest pooled CCC over `spacings`, and `interpolate` (choosing among
      all modes from a handful of anchors picked worse modes more often than it found better ones), and of
      these the one of highest pooled CCC as the preferred mode (`AutoSettings.switch_margin`);
    * per mode, true query RMSE / leave-one-out RMSE over `spacings` pooled.

    `design` sets the smoothing strengths, the pinning decay and the switch margin to calibrate for, and, if it
    names `modes`, a `preferred_mode` or a `sparse_gain`, keeps them. `anchor_kwargs` go to every prediction at the spacings (the anchor options labelling
    will use; `benchmarks.auto_mode` passes a `difference_gain` there). Also returns the measurements (the gain, CCC per mode from the first frame and at
    each spacing, the scale at each)."""
    design = design or AutoSettings()
    modes = available_modes(model)
    has_pair_modes = any(mode in ANCHOR_MODES for mode in modes)  # not a converted EmoNet's untrained pair heads
    gain = design.sparse_gain or (fit_difference_gain(model, clips) if has_pair_modes else [1.0, 1.0])
    sparse_mode, sparse_scores = _sparse_mode(model, clips, modes, design.pin_decay, gain)
    totals = {mode: [np.zeros(4), 0] for mode in modes}  # loo sums (v, a), true sums (v, a)
    by_spacing, ccc_by_spacing = {}, {}
    for spacing in spacings:
        loo, true, ccc_by_spacing[spacing] = _spacing_errors(model, clips, modes, spacing, design.pin_decay, **anchor_kwargs)
        by_spacing[spacing] = {}
        for mode in modes:
            if loo[mode][1] and true[mode][1]:
                ratio = np.sqrt((true[mode][0] / true[mode][1]) / np.maximum(loo[mode][0] / loo[mode][1], 1e-12))
                by_spacing[spacing][mode] = [round(float(r), 4) for r in ratio]
                totals[mode][0] += np.concatenate([loo[mode][0] / loo[mode][1], true[mode][0] / true[mode][1]])
                totals[mode][1] += 1
    scale = {
        mode: [round(float(np.sqrt(sums[2 + dim] / max(sums[dim], 1e-12))), 4) for dim in (0, 1)]
        for mode, (sums, count) in totals.items()
        if count
    }
    summed = {mode: sum(scores.get(mode, -np.inf) for scores in ccc_by_spacing.values()) for mode in modes}
    learned = {mode: score for mode, score in summed.items() if mode not in BASELINES}
    candidates = [max(learned, key=learned.get), "interpolate"] if learned else None
    kept = design.modes if design.modes is not None else candidates
    preferred = design.preferred_mode or (max(kept, key=lambda mode: summed.get(mode, -np.inf)) if kept else None)
    settings = AutoSettings(
        sparse_mode=sparse_mode,
        rmse_scale=scale,
        modes=kept,
        smoothing=design.smoothing,
        pin_decay=design.pin_decay,
        sparse_gain=gain,
        preferred_mode=preferred,
        switch_margin=design.switch_margin,
        chosen_on=chosen_on,
    )
    report = {
        "sparse_gain": gain,
        "first_frame_ccc_sum": sparse_scores,
        "ccc_sum_by_spacing": ccc_by_spacing,
        "rmse_scale_by_spacing": by_spacing,
        "num_clips": len(clips),
    }
    return settings, report


def save_auto_settings(model_dir, settings: AutoSettings) -> None:
    """Store `settings` in a saved model folder's config.json (`auto_anchor`), atomically."""
    import json
    from pathlib import Path

    from ..io_utils import atomic_write_text

    config_path = Path(model_dir) / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_anchor"] = settings.to_dict()
    atomic_write_text(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def calibrate_model_folder(
    model_dir, model, processor, raw_clips, chosen_on: str, spacings=CALIBRATION_SPACINGS, progress: bool = False
) -> tuple[AutoSettings, dict]:
    """Encode validation clips (`AfewVaClip`s, cropped around their own landmarks), calibrate `auto` on them and
    store the result in `model_dir` (the folder `model` was loaded from)."""
    from .evaluation import encode_clips
    from .labeler import FewShotVideoLabeler

    clips = encode_clips(FewShotVideoLabeler(model, processor, detector=None), raw_clips, progress=progress)
    if not clips:
        raise ValueError("no validation clip with frames to calibrate on")
    settings, report = calibrate_auto(model, clips, spacings, chosen_on=chosen_on.format(num_clips=len(clips)))
    save_auto_settings(model_dir, settings)
    return settings, report

"""How the `auto` anchor mode was designed: its variants compared on SynthAffect's VALIDATION clips.

    python -m benchmarks.auto_mode [--model outputs/quickstart/model] [--config configs/synth_quick.yaml]
                                   [--val-clips 64] [--out results.json]

The validation clips are clips of the quick recipe's validation people: never trained on, and not the held-out
clips the quickstart and the README report. The benchmark renders `--val-clips` of them (64; the first 16 are the
ones the quickstart calibrates on: 16 clips were too few to tell designs apart). Each design is calibrated on them
(`calibrate_auto`) and scored on them, cropped around their own landmarks, at the quickstart's three support
densities (first frame only, every 50th, every 20th), beside every single mode, plain and pinned to the anchors:

* `every mode, smoothing to 1 s, linear`: every mode as a candidate, smoothing 0 / 0.04 / 0.2 / 1 s, residuals
  interpolated linearly between anchors (the first design);
* `every mode, smoothing to 0.04 s, fade 0.5 s`: fewer smoothing strengths, residuals fading over 0.5 s;
* `default, no difference gain`: the default design, its sparse-support differences as the pair heads give them;
* `default, difference gain at every density`: the default design with the gain applied with 3 anchors or more
  too, in its calibration as well;
* `default, lowest estimate wins` and `default, switch margin M`: the default design, where a candidate of
  another mode than the preferred one (the best on validation) wins when its estimate is lower (margin 1) or
  below M times the preferred mode's; `never switch mode` keeps the preferred mode (margin 0);
* `default`: the best model mode on validation + `interpolate`, smoothing 0 / 0.04 s, fade 0.5 s, switch margin
  0.6; with fewer than 3 anchors, the mode best from the first frame, its differences times the measured gain.

Figures: pooled CCC (valence, arousal) over query frames; for each design the Spearman correlation over videos
between its estimated RMSE (valence + arousal) and the true one, and on how many of the (video, dimension)
choices it left the preferred mode. docs/LABELLING.md quotes them.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import machine, print_table, write_json

DENSITIES = (("first frame only", {"strategy": "first"}), ("every 50th", {"strategy": "every-k", "k": 50}),
             ("every 20th", {"strategy": "every-k", "k": 20}))


GAIN_EVERYWHERE = "default, difference gain at every density"
VALIDATION_CLIPS = 64


def designs(model):
    """The designs compared; the default lets calibration choose the candidates (`modes=None`)."""
    from mtclar_hf.labeling.anchors import available_modes
    from mtclar_hf.labeling.auto import AutoSettings

    every_mode = list(available_modes(model))
    return {
        "every mode, smoothing to 1 s, linear": AutoSettings(
            modes=every_mode, smoothing=[0.0, 0.04, 0.2, 1.0], pin_decay=None, switch_margin=1.0
        ),
        "every mode, smoothing to 0.04 s, fade 0.5 s": AutoSettings(modes=every_mode, smoothing=[0.0, 0.04], switch_margin=1.0),
        "default, no difference gain": AutoSettings(sparse_gain=[1.0, 1.0]),
        GAIN_EVERYWHERE: AutoSettings(),
        "default": AutoSettings(),
    }


# The default design with another switch margin: its calibration is the default's.
MARGINS = {"default, lowest estimate wins": 1.0, "default, switch margin 0.8": 0.8, "default, switch margin 0.4": 0.4,
           "default, never switch mode": 0.0}


def calibrated(model, clips, name, design):
    """`design` calibrated on `clips`; the gain-everywhere design with the gain at the spacings too."""
    from mtclar_hf.labeling.calibration import calibrate_auto, fit_difference_gain

    if name != GAIN_EVERYWHERE:
        return calibrate_auto(model, clips, design=design)[0]
    gain = fit_difference_gain(model, clips)
    return calibrate_auto(model, clips, design=replace(design, sparse_gain=gain), difference_gain=tuple(gain))[0]


def score(model, clips, settings: dict, strategy: dict) -> dict:
    """Pooled CCC of every single mode (plain and pinned) and every design; estimate ranking per design."""
    from mtclar_hf.labeling.anchors import available_modes, predict_from_anchors
    from mtclar_hf.labeling.auto import PIN_DECAY, pinned_predictions, predict_auto
    from mtclar_hf.labeling.evaluation import same_video_anchors
    from mtclar_hf.labeling.support import select_support
    from mtclar_hf.metrics import ccc, spearman

    pooled, ranking = {}, {name: ([], []) for name in settings}
    left_preferred = {name: [0, 0] for name in settings}  # choices of another mode than the preferred one, choices
    for clip in clips:
        video = clip.encoded
        chosen = select_support(strategy["strategy"], clip.support_candidates, k=strategy.get("k", 20))
        support = clip.with_faces(chosen)
        queries = clip.query_frames(support)
        anchors = same_video_anchors(clip, support)
        embeddings, times = video.embeddings[queries], video.timestamps[queries]
        truth = (clip.valence[queries], clip.arousal[queries])
        predictions = {}
        for mode in available_modes(model):
            predictions[mode] = predict_from_anchors(model, embeddings, times, anchors, mode=mode)
            predictions[f"{mode}, pinned"] = pinned_predictions(model, embeddings, times, anchors, mode, PIN_DECAY)
        for name, design in settings.items():
            everywhere = {"difference_gain": tuple(design.sparse_gain)} if name == GAIN_EVERYWHERE else {}
            valence, arousal, choice = predict_auto(model, embeddings, times, anchors, design, **everywhere)
            predictions[f"auto: {name}"] = (valence, arousal)
            if choice.estimated_rmse is not None:
                left_preferred[name][0] += sum(mode != design.preferred_mode for mode, _ in (choice.valence, choice.arousal))
                left_preferred[name][1] += 2
                ranking[name][0].append(sum(choice.estimated_rmse))
                ranking[name][1].append(np.sqrt(np.mean((valence - truth[0]) ** 2)) + np.sqrt(np.mean((arousal - truth[1]) ** 2)))
        for name, (valence, arousal) in predictions.items():
            bucket = pooled.setdefault(name, ([], [], [], []))
            for values, new in zip(bucket, (truth[0], valence, truth[1], arousal)):
                values.append(new)
    result = {
        name: {"valence_ccc": ccc(np.concatenate(b[0]), np.concatenate(b[1])), "arousal_ccc": ccc(np.concatenate(b[2]), np.concatenate(b[3]))}
        for name, b in pooled.items()
    }
    for name, (estimated, true) in ranking.items():
        if len(estimated) >= 3:
            result[f"auto: {name}"]["estimate_spearman"] = spearman(estimated, true)
            result[f"auto: {name}"]["left_preferred_mode"] = left_preferred[name]
    return result


def validation_clips(model_path, config_path, count: int | None = None):
    """(model, its encoded validation clips, their folder): `count` clips (default: the recipe's
    `data.synth.val_clips`) of `config_path`'s validation people, rendered on demand, cropped around their own
    landmarks."""
    import torch

    from mtclar_hf.data.afew_va import load_afew_va_clips
    from mtclar_hf.labeling import load_model_and_processor, make_labeler
    from mtclar_hf.labeling.evaluation import encode_clips
    from mtclar_hf.quickstart import quick_config
    from mtclar_hf.training.data import validation_clips_dir

    torch.manual_seed(0)
    config = quick_config(config_path, Path("outputs/quickstart"))
    if count is not None:
        config.data.synth.val_clips = count
    clips_dir = validation_clips_dir(config)
    model, processor = load_model_and_processor(model_path)
    clips = encode_clips(make_labeler(model, processor, detector=None), load_afew_va_clips(clips_dir))
    return model, clips, clips_dir


def main(argv=None) -> int:
    from mtclar_hf.quickstart import QUICK_RECIPE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/quickstart/model", help="a model trained with --config")
    parser.add_argument("--config", default=str(QUICK_RECIPE), help="the recipe whose validation clips to use")
    parser.add_argument("--val-clips", type=int, default=VALIDATION_CLIPS, help="how many validation clips to render and use")
    parser.add_argument("--out", default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    model, clips, clips_dir = validation_clips(args.model, args.config, args.val_clips)
    settings = {name: calibrated(model, clips, name, design) for name, design in designs(model).items()}
    settings.update({name: replace(settings["default"], switch_margin=margin) for name, margin in MARGINS.items()})
    result = {"machine": machine(), "model": args.model, "validation_clips": str(clips_dir), "num_clips": len(clips),
              "designs": {name: design.to_dict() for name, design in settings.items()}, "densities": {}}
    for density, strategy in DENSITIES:
        figures = score(model, clips, settings, strategy)
        result["densities"][density] = figures
        rows = []
        for name, values in figures.items():
            rho, left = values.get("estimate_spearman"), values.get("left_preferred_mode")
            note = "" if rho is None else f"rho {rho:.2f}, another mode than the preferred in {left[0]} of {left[1]}"
            rows.append((name, f"{values['valence_ccc']:.3f} / {values['arousal_ccc']:.3f}", note))
        print_table(f"validation clips, support {density}: pooled CCC valence / arousal", rows)
    if args.out:
        print(f"wrote {write_json(result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

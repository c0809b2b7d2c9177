"""The quickstart (`mtclar quickstart`, `make quickstart`): the whole project in one run, offline, on SynthAffect.

1. Render SynthAffect (cached in `outputs/cache`) and train the quick recipe, `configs/synth_quick.yaml`
   (skipped when `OUT/model` already holds a trained model; `--retrain` forces it). Calibrate the `auto`
   anchor mode on the recipe's validation clips (people neither trained on nor reported) and store it in
   the model folder.
2. Label the held-out clips (people never seen in training or validation) from three support sets: the
   first frame alone, the first frame plus every 50th (2% of frames) and plus every 20th (5%), with `auto`,
   every anchor mode and the `hold` / `interpolate` baselines, through two face paths: cropped around the
   clips' own landmarks, and around landmarks predicted inside a face detector's box (what a user's
   video goes through). Print the pooled CCC table of the default mode, `auto`, and how well its
   per-video error estimates rank the videos (Spearman correlation with the true RMSE).
3. Write `OUT/report.json` (every setting and path), `OUT/metrics.json` (the landmark path at every 20th
   frame, in the format of `mtclar evaluate`, ready for `mtclar push --eval`), and label one clip as a user
   would: `OUT/labels.csv` and `OUT/labels.png`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from .labeling.anchors import ANCHOR_MODES, AUTO_MODE, BASELINES
from .resources import shipped_file

DEFAULT_OUT = Path("outputs/quickstart")
QUICK_RECIPE = shipped_file("recipes", "synth_quick.yaml")
# (name, support strategy settings): the densities the labelling targets are set at.
SUPPORT_SETTINGS = (
    ("first frame only", {"strategy": "first"}),
    ("every 50th frame", {"strategy": "every-k", "k": 50}),
    ("every 20th frame", {"strategy": "every-k", "k": 20}),
)
DEFAULT_MODE = AUTO_MODE
# Face paths: the clips' own landmarks, and the detector -> predicted landmarks path of a user's video.
FACE_PATHS = ("landmarks", "detector")


def quick_config(config_path=None, out: Path = DEFAULT_OUT):
    """The quick recipe, writing its training run into `out/train`."""
    from .errors import InputFileError
    from .training.config import load_config, resolve_recipe

    path = resolve_recipe(config_path) if config_path is not None else QUICK_RECIPE
    if not path.is_file():
        raise InputFileError(path, "training recipe not found (pass --config a recipe file or the name of a shipped one)")
    config = load_config(path)
    config.output_dir = str(out / "train")
    if config.data.synth is None or config.data.synth.clips < 1:
        raise InputFileError(path, "the quickstart needs a data.synth block with clips >= 1 (held-out clips to label)")
    return config


def is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def ensure_quickstart_model(out=DEFAULT_OUT, progress=None, config_path=None, retrain: bool = False) -> Path:
    """`out/model`, trained with the quick recipe first if it is not there yet (the demo's default model).

    `progress(fraction, desc=...)` (e.g. a `gradio.Progress`) hears when each stage starts. An interrupted
    run resumes from its last checkpoint.
    """
    from .io_utils import atomic_directory
    from .training.checkpoints import complete_checkpoints
    from .training.loop import train

    out = Path(out)
    model_dir = out / "model"
    config = quick_config(config_path, out)
    if is_model_folder(model_dir) and not retrain:
        ensure_calibrated(model_dir, config, progress)
        return model_dir
    if progress is not None:
        progress(0.05, desc="Rendering SynthAffect and training the quick recipe (a few minutes on a CPU)")
    run_dir = Path(config.output_dir)
    resume = bool(complete_checkpoints(run_dir)) and not retrain
    summary = train(config, resume=resume, overwrite=not resume)
    if progress is not None:
        progress(0.95, desc="Saving the trained model")
    with atomic_directory(model_dir) as tmp:
        # The best model by validation loss, with its processor, code, metrics and training config.
        shutil.copytree(summary["best"], tmp, dirs_exist_ok=True)
        ensure_calibrated(tmp, config, progress)
    return model_dir


def ensure_calibrated(model_dir: Path, config, progress=None) -> None:
    """Calibrate `auto` on the recipe's validation clips into `model_dir`, unless it already is."""
    from .data.afew_va import load_afew_va_clips
    from .labeling.calibration import calibrate_model_folder
    from .labeling.loading import load_model_and_processor
    from .training.data import validation_clips_dir

    if json.loads((Path(model_dir) / "config.json").read_text()).get("auto_anchor"):
        return
    clips_dir = validation_clips_dir(config)
    if clips_dir is None:
        return
    if progress is not None:
        progress(0.96, desc="Calibrating the auto anchor mode on the validation clips")
    model, processor = load_model_and_processor(model_dir)
    raw_clips = load_afew_va_clips(clips_dir)
    calibrate_model_folder(model_dir, model, processor, raw_clips, "{num_clips} SynthAffect validation clips")


def held_out_clips_dir(config) -> Path:
    from .training.data import synth_cache_dir

    return synth_cache_dir(config) / "raw" / "afew_va"


def evaluate_settings(model, clips) -> dict:
    """Pooled metrics of every mode and baseline for each support setting: {name: evaluate_encoded_clips(...)}."""
    from .labeling.evaluation import evaluate_encoded_clips

    return {name: evaluate_encoded_clips(model, clips, scored_protocol(settings)) for name, settings in SUPPORT_SETTINGS}


def scored_protocol(settings: dict):
    """The protocol of one support setting: `auto`, every anchor mode, and the baselines."""
    from .labeling.evaluation import Protocol

    return Protocol(modes=(DEFAULT_MODE, *ANCHOR_MODES), **settings)


def on_detected_frames(landmark_clips, detector_clips) -> list:
    """The landmark path's clips restricted to the frames the detector path found a face in, so that the two
    paths are scored on the same frames."""
    from dataclasses import replace

    return [
        replace(mine, encoded=replace(mine.encoded, face_found=mine.encoded.face_found & theirs.encoded.face_found))
        for mine, theirs in zip(landmark_clips, detector_clips)
    ]


def best_model_mode(section: dict) -> str:
    """The single mode (model or baseline) with the highest mean of valence and arousal CCC (an appendix figure:
    it is chosen on the clips it is reported on)."""
    pooled = section["pooled"]
    singles = [mode for mode in pooled if mode != DEFAULT_MODE]
    return max(singles, key=lambda mode: pooled[mode]["valence_ccc"] + pooled[mode]["arousal_ccc"])


def estimate_tracking(section: dict) -> float | None:
    """Spearman correlation over videos between `auto`'s estimated RMSE (valence + arousal) and the true one."""
    from .metrics import spearman

    pairs = [
        (entry["estimated"][DEFAULT_MODE], entry["modes"][DEFAULT_MODE])
        for entry in section["per_video"].values()
        if DEFAULT_MODE in entry.get("estimated", {})
    ]
    if len(pairs) < 3:
        return None
    estimated = [e["valence_rmse"] + e["arousal_rmse"] for e, _ in pairs]
    true = [t["valence_rmse"] + t["arousal_rmse"] for _, t in pairs]
    return spearman(estimated, true)


def _cell(pooled: dict, mode: str) -> str:
    return f"{pooled[mode]['valence_ccc']:.2f} / {pooled[mode]['arousal_ccc']:.2f}"


def results_table(results: dict) -> list[str]:
    """One line per face path and support setting: the default mode against both baselines (pooled CCC, V / A)."""
    lines = [
        f"{'faces':<30} {'support':<17} {'frames':>6}  {DEFAULT_MODE:<12} "
        + "".join(f"{baseline:<12} " for baseline in BASELINES)
        + f"{'estimates':<10} best single mode (appendix: picked on these clips)",
    ]
    for path, settings in results.items():
        for name, section in settings.items():
            if not section["pooled"]:
                lines.append(f"{path:<30} {name:<17} no face found in any support frame: nothing to score")
                continue
            pooled, best = section["pooled"], best_model_mode(section)
            tracking = estimate_tracking(section)
            rho = "-" if tracking is None else f"rho {tracking:.2f}"
            baselines = "".join(f"{_cell(pooled, baseline):<12} " for baseline in BASELINES)
            lines.append(
                f"{path:<30} {name:<17} {section['support_fraction']:>6.1%}  {_cell(pooled, DEFAULT_MODE):<12} "
                f"{baselines}{rho:<10} {_cell(pooled, best)} ({best})"
            )
    return lines


def faces_found_line(landmark_clips, detector_clips) -> str:
    found = sum(int(c.encoded.face_found.sum()) for c in detector_clips)
    total = sum(c.encoded.num_frames for c in landmark_clips)
    return f"detector path: a face (and its 68 landmarks) found in {found} of {total} frames ({found / total:.1%})"


def label_one_clip(labeler, clip, out: Path) -> tuple[Path, Path]:
    """Label the first held-out clip from every 20th frame, as `mtclar label` would: CSV + plot."""
    from .labeling.anchors import label_range
    from .labeling.support import select_support
    from .labeling.tables import plot_labels, write_table

    encoded = clip.encoded
    frames = select_support("every-k", encoded.face_found, k=20)
    support = {int(f): (float(clip.valence[f]), float(clip.arousal[f])) for f in frames}
    mode = DEFAULT_MODE
    table = labeler.label(encoded, support, anchor=mode)
    table["true_valence"], table["true_arousal"] = clip.valence, clip.arousal
    csv_path = write_table(table, out / "labels.csv")
    title = f"held-out clip {clip.clip_id}: {len(support)} labelled frames, anchor mode {mode}"
    plot_path = plot_labels(table, out / "labels.png", title=title, label_range=label_range(labeler.model))
    return csv_path, plot_path


def run_quickstart(out: Path = DEFAULT_OUT, config_path=None, retrain: bool = False) -> int:
    """The whole quickstart (the module docstring): trains when needed, labels, prints the table, writes the files."""
    import time

    import torch

    from .data.afew_va import load_afew_va_clips
    from .io_utils import atomic_write_text
    from .labeling.evaluation import encode_clips
    from .labeling.loading import load_model_and_processor, make_labeler

    out = Path(out)
    started = time.perf_counter()
    config = quick_config(config_path, out)
    print(f"[1/3] model: {out / 'model'} (training {Path(config_path or QUICK_RECIPE).name} unless it is there)", file=sys.stderr)
    model_dir = ensure_quickstart_model(out, config_path=config_path, retrain=retrain)
    trained = time.perf_counter()

    print("[2/3] labelling the held-out SynthAffect clips (people never seen in training)", file=sys.stderr)
    torch.manual_seed(0)
    model, processor = load_model_and_processor(model_dir)
    labeler = make_labeler(model, processor, detector=None)  # boxes come from the clips' landmarks
    raw_clips = list(load_afew_va_clips(held_out_clips_dir(config)))  # read twice: once per face path
    clips = encode_clips(labeler, raw_clips)
    detector_labeler = make_labeler(model, processor)  # the default detector, as `mtclar label`
    detected = encode_clips(detector_labeler, raw_clips, faces="detector")
    results = {
        "landmarks (the clips' own)": evaluate_settings(model, clips),
        "detector -> predicted landmarks": evaluate_settings(model, detected),
        "landmarks, detector's frames only": evaluate_settings(model, on_detected_frames(clips, detected)),
    }

    print(f"[3/3] results: pooled CCC over query frames, valence / arousal; {len(clips)} clips, "
          f"{sum(c.encoded.num_frames for c in clips)} frames")
    for line in results_table(results):
        print("  " + line)
    print("  " + faces_found_line(clips, detected))
    every_20th = results["landmarks (the clips' own)"][SUPPORT_SETTINGS[-1][0]]
    protocol = scored_protocol(SUPPORT_SETTINGS[-1][1]).describe(faces="landmarks")
    report = {"model": str(model_dir), "auto_anchor": model.config.auto_anchor, "paths": results}
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(
        out / "metrics.json",
        json.dumps(
            {"model": str(model_dir), "data": "SynthAffect held-out clips", "protocol": protocol, "same_video": every_20th},
            indent=2,
        )
        + "\n",
    )
    csv_path, plot_path = label_one_clip(labeler, clips[0], out)
    print(f"wrote  {out / 'report.json'}, {out / 'metrics.json'}, {csv_path}, {plot_path}")
    print(f"time   training {trained - started:.0f} s, labelling {time.perf_counter() - trained:.0f} s")
    print(f"next   mtclar label VIDEO --model {model_dir} --support SUPPORT.csv --out labels.csv   |   mtclar demo")
    return 0

"""The learning test: the shipped quick recipe, run as a user runs it, must really learn.

`mtclar quickstart` trains `configs/synth_quick.yaml` (the realistic recipe: pairs regardless of identity,
as real AffectNet allows, plus pairs within training clips; a few minutes of CPU) and labels clips of
people never seen in training, through the clips' own landmarks and through the detector path of a
user's video. Thresholds are set from measurement with a margin (2-core CPU: README "Results"); runs
differ by a few hundredths with the number of torch threads (a pytest worker vs the command line).
Labelling figures are pooled CCC of the default anchor mode, `auto`, calibrated on the recipe's validation
clips (people neither trained on nor reported).
"""

import json

import pytest

from mtclar_hf.cli import main
from mtclar_hf.quickstart import DEFAULT_MODE, QUICK_RECIPE

# A whole quickstart beside the other tests on 2 cores: about 9 minutes (the suite's default limit is 10).
pytestmark = pytest.mark.timeout(1200)

LANDMARKS, DETECTOR = "landmarks (the clips' own)", "detector -> predicted landmarks"
SAME_FRAMES = "landmarks, detector's frames only"


def ccc_pair(section, mode=DEFAULT_MODE):
    pooled = section["pooled"][mode]
    return pooled["valence_ccc"], pooled["arousal_ccc"]


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """One real quickstart (render + train + label) in a scratch folder, shared by the assertions."""
    root = tmp_path_factory.mktemp("quick")
    recipe = root / "synth_quick.yaml"
    # Half the recipe's validation clips and half its epochs: calibrating `auto` on 8 people, and 1,240 steps,
    # are enough to check that it learns and labels, within the suite's time.
    text = QUICK_RECIPE.read_text().replace("cache_dir: outputs/cache", f"cache_dir: {root / 'cache'}")
    recipe.write_text(text.replace("val_clips: 16 ", "val_clips: 8 ").replace("  epochs: 40\n", "  epochs: 20\n"))
    assert "val_clips: 8 " in recipe.read_text() and "  epochs: 20\n" in recipe.read_text()
    untrained_dir = root / "untrained"
    # One optimizer step at the warm-up's smallest learning rate: the untrained model, evaluated the same way.
    assert main(["train", "--config", str(recipe), "--max-steps", "1", "--output-dir", str(untrained_dir)]) == 0
    assert main(["quickstart", "--config", str(recipe), "--out", str(root / "qs")]) == 0
    return {
        "untrained": json.loads((untrained_dir / "final" / "metrics.json").read_text())["eval"],
        "trained": json.loads((root / "qs" / "model" / "metrics.json").read_text())["eval"],
        "paths": json.loads((root / "qs" / "report.json").read_text())["paths"],
        "processor": json.loads((root / "qs" / "model" / "preprocessor_config.json").read_text()),
        "report": json.loads((root / "qs" / "report.json").read_text()),
    }


def test_training_beats_the_untrained_model_on_held_out_identities(quickstart_run):
    untrained, trained = quickstart_run["untrained"], quickstart_run["trained"]
    assert untrained["similarity_accuracy"] < 0.55 and untrained["valence_diff_ccc"] < 0.2
    assert trained["similarity_accuracy"] >= untrained["similarity_accuracy"] + 0.04
    assert trained["valence_diff_ccc"] >= 0.4 and trained["arousal_diff_ccc"] >= 0.55
    assert quickstart_run["processor"]["face_box_source"] == "landmarks68"


def test_labelling_from_the_first_frame_beats_hold(quickstart_run):
    section = quickstart_run["paths"][LANDMARKS]["first frame only"]
    latest, hold = ccc_pair(section), ccc_pair(section, "hold")
    assert latest[0] >= 0.4 and latest[1] >= 0.65, latest
    assert all(m >= h + 0.3 for m, h in zip(latest, hold)), (latest, hold)


def test_labelling_from_sparse_support_beats_interpolation(quickstart_run):
    section = quickstart_run["paths"][LANDMARKS]["every 50th frame"]
    latest = ccc_pair(section)
    assert latest[0] >= 0.55 and latest[1] >= 0.75, latest
    assert all(m > i for m, i in zip(latest, ccc_pair(section, "interpolate"))), latest


def test_at_every_20th_frame_the_default_mode_is_not_below_interpolation(quickstart_run):
    section = quickstart_run["paths"][LANDMARKS]["every 20th frame"]
    assert 0.04 < section["support_fraction"] < 0.06
    latest, interpolate = ccc_pair(section), ccc_pair(section, "interpolate")
    # The target is 0.01 (README "Results"); runs differ by a few hundredths with the thread count.
    assert all(m >= i - 0.03 for m, i in zip(latest, interpolate)), (latest, interpolate)


def test_auto_is_calibrated_on_validation_clips_and_its_estimates_rank_the_videos(quickstart_run):
    from mtclar_hf.quickstart import estimate_tracking

    settings = quickstart_run["report"]["auto_anchor"]
    assert settings["chosen_on"].endswith("SynthAffect validation clips") and "interpolate" in settings["modes"]
    assert settings["preferred_mode"] in settings["modes"] and settings["switch_margin"] == 0.6
    # On people it never saw, the model predicts changes smaller than they are (1.44 / 1.39 for the recipe's model).
    assert all(gain > 1.05 for gain in settings["sparse_gain"]), settings["sparse_gain"]
    section = quickstart_run["paths"][LANDMARKS]["every 50th frame"]
    assert all("auto" in entry["estimated"] for entry in section["per_video"].values())
    # The full recipe measured 0.74 (README "Results"); the margin covers this shorter run and thread counts.
    assert estimate_tracking(section) >= 0.3


def test_the_detector_path_finds_faces_and_labels_them(quickstart_run):
    paths = quickstart_run["paths"]
    detected = paths[DETECTOR]["every 20th frame"]
    assert detected["num_faces_found"] >= 0.8 * detected["num_frames"]
    # On the frames where it finds a face, the detector path labels close to the annotation's landmarks.
    for setting in ("every 50th frame", "every 20th frame"):
        mine, landmarks = ccc_pair(paths[DETECTOR][setting]), ccc_pair(paths[SAME_FRAMES][setting])
        assert all(m >= ref - 0.12 for m, ref in zip(mine, landmarks)), (setting, mine, landmarks)

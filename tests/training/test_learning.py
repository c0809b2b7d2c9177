"""The learning test: the shipped quick recipe, run as a user runs it, must really learn.

`mtclar quickstart` trains `configs/synth_quick.yaml` (a few minutes of CPU) and labels clips of people
never seen in training. The labelling thresholds are issue 9's targets; the others are set from
measurement with a margin (2-core CPU: see the README "Results"). Runs differ by a few hundredths with
the number of torch threads (a pytest worker vs the command line), so the margins are wider than that:

| measured                                         | untrained | trained (README) | asserted   |
|--------------------------------------------------|-----------|------------------|------------|
| similarity accuracy, held-out identities         | ~0.50     | 0.73             | >= 0.62    |
| valence / arousal difference CCC, held-out ids   | ~0.0      | 0.78 / 0.87      | >= 0.65    |
| labelling CCC from the first frame alone         | hold 0.08 / 0.39 | 0.72 / 0.89 | >= 0.65 |
| labelling CCC, support every 50th frame (~2%)    | interp 0.60 / 0.63 | 0.87 / 0.93 | >= 0.80 |
| best mode vs interpolate at every 16th (~6%)     |           | 0.94 / 0.95 vs 0.86 / 0.87 | >= interp. |
"""

import json

import pytest

from mtclar_hf.cli import main
from mtclar_hf.quickstart import QUICK_RECIPE, best_model_mode


def ccc_pair(section, mode):
    pooled = section["pooled"][mode]
    return pooled["valence_ccc"], pooled["arousal_ccc"]


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """One real quickstart (render + train + label) in a scratch folder, shared by the assertions."""
    root = tmp_path_factory.mktemp("quick")
    recipe = root / "synth_quick.yaml"
    recipe.write_text(QUICK_RECIPE.read_text().replace("cache_dir: outputs/cache", f"cache_dir: {root / 'cache'}"))
    untrained_dir = root / "untrained"
    # One optimizer step at the warm-up's smallest learning rate: the untrained model, evaluated the same way.
    assert main(["train", "--config", str(recipe), "--max-steps", "1", "--output-dir", str(untrained_dir)]) == 0
    assert main(["quickstart", "--config", str(recipe), "--out", str(root / "qs")]) == 0
    return {
        "untrained": json.loads((untrained_dir / "final" / "metrics.json").read_text())["eval"],
        "trained": json.loads((root / "qs" / "model" / "metrics.json").read_text())["eval"],
        "labelling": json.loads((root / "qs" / "report.json").read_text())["settings"],
    }


def test_training_beats_the_untrained_model_on_held_out_identities(quickstart_run):
    untrained, trained = quickstart_run["untrained"], quickstart_run["trained"]
    assert untrained["similarity_accuracy"] < 0.55 and untrained["valence_diff_ccc"] < 0.2
    assert trained["similarity_accuracy"] >= 0.62
    assert trained["similarity_accuracy"] >= untrained["similarity_accuracy"] + 0.05
    assert trained["valence_diff_ccc"] >= 0.65 and trained["arousal_diff_ccc"] >= 0.65


def test_labelling_from_the_first_frame_beats_hold(quickstart_run):
    section = quickstart_run["labelling"]["first frame only"]
    best = ccc_pair(section, best_model_mode(section))
    hold = ccc_pair(section, "hold")
    assert min(best) >= 0.65, best
    assert all(b >= h + 0.2 for b, h in zip(best, hold)), (best, hold)


def test_labelling_from_sparse_support_beats_interpolation(quickstart_run):
    section = quickstart_run["labelling"]["every 50th frame"]
    best = ccc_pair(section, best_model_mode(section))
    assert min(best) >= 0.80, best
    assert all(b > i for b, i in zip(best, ccc_pair(section, "interpolate"))), best


def test_at_six_percent_support_the_best_mode_is_not_below_interpolation(quickstart_run):
    section = quickstart_run["labelling"]["every 16th frame"]
    assert 0.05 < section["support_fraction"] < 0.07
    best, interpolate = ccc_pair(section, best_model_mode(section)), ccc_pair(section, "interpolate")
    assert all(b >= i for b, i in zip(best, interpolate)), (best, interpolate)

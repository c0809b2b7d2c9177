"""The `auto` anchor mode: the anchor-pinned smoother, leave-one-anchor-out selection with fake models of known
error, the spacing correction measured by `calibrate_auto`, and the summary `mtclar label` writes."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from mtclar_hf.labeling.anchors import Anchors, predict_from_anchors
from mtclar_hf.labeling.auto import (
    AutoSettings,
    choose_auto,
    pinned_predictions,
    predict_auto,
    smooth_with_anchors,
)
from mtclar_hf.labeling.calibration import calibrate_auto, fit_difference_gain
from mtclar_hf.labeling.evaluation import LabelledClip
from mtclar_hf.labeling.labeler import EncodedVideo

FPS = 25.0
NUM_FRAMES = 200


def true_labels(num_frames=NUM_FRAMES, phase=0.0):
    """A smooth affect curve: what a video's valence and arousal might do over 8 seconds."""
    t = np.arange(num_frames) / FPS
    return 0.6 * np.sin(2 * np.pi * t / 3.0 + phase), 0.5 * np.cos(2 * np.pi * t / 4.0 + phase)


class KnownErrorModel(torch.nn.Module):
    """Embeddings carry the true (valence, arousal) and a per-frame error e; the pair heads return the true
    difference times `gain`, plus `bias`, plus `error` * (e(A) - e(B)): gain 1 with no bias or error is a perfect
    model, gain -1 a model that gets every change backwards, `error` one that misreads each face a little."""

    def __init__(self, gain=1.0, bias=0.0, error=0.0):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(embedding_size=3, label_min=-1.0, label_max=1.0, pair_heads_trained=True)
        self.gain, self.bias, self.error = gain, bias, error

    def compare(self, emb_a, emb_b):
        diff = self.gain * (emb_a - emb_b)[:, :2] + self.bias + self.error * (emb_a - emb_b)[:, 2:]
        return SimpleNamespace(valence_diff=diff[:, 0], arousal_diff=diff[:, 1])


def video_and_anchors(every=10, num_frames=NUM_FRAMES, phase=0.0):
    valence, arousal = true_labels(num_frames, phase)
    misread = np.random.default_rng(int(phase * 10)).standard_normal(num_frames)
    embeddings = torch.tensor(np.stack([valence, arousal, misread], axis=1), dtype=torch.float32)
    times = np.arange(num_frames) / FPS
    support = np.arange(0, num_frames, every)
    queries = np.setdiff1d(np.arange(num_frames), support)
    anchors = Anchors(embeddings[support], times[support], valence[support], arousal[support])
    return embeddings, times, valence, arousal, queries, anchors


# ------------------------------------------------------------------------------------------------ the smoother


def test_pinned_predictions_meet_every_anchor_label_without_a_jump():
    embeddings, times, valence, _, queries, anchors = video_and_anchors()
    biased = KnownErrorModel(gain=0.8, bias=0.3)  # `latest` drifts and starts 0.3 off at every anchor
    raw, _ = predict_from_anchors(biased, embeddings[queries], times[queries], anchors, mode="latest")
    pinned, _ = pinned_predictions(biased, embeddings[queries], times[queries], anchors, "latest")
    next_to_anchor = np.isin(queries - 1, np.arange(0, NUM_FRAMES, 10)) | np.isin(queries + 1, np.arange(0, NUM_FRAMES, 10))
    one_frame_change = np.abs(np.diff(valence)).max()
    assert np.abs(raw - valence[queries])[next_to_anchor].max() > 0.2
    assert np.abs(pinned - valence[queries])[next_to_anchor].max() < 2 * one_frame_change
    assert np.sqrt(np.mean((pinned - valence[queries]) ** 2)) < np.sqrt(np.mean((raw - valence[queries]) ** 2))
    hold, _ = pinned_predictions(biased, embeddings[queries], times[queries], anchors, "hold")
    np.testing.assert_array_equal(hold, predict_from_anchors(biased, embeddings[queries], times[queries], anchors, mode="hold")[0])


def test_smoother_is_held_at_the_anchors_and_removes_frame_to_frame_noise():
    times = np.arange(1, 40) / FPS
    anchor_times = np.array([0.0, 40 / FPS])
    curve = 0.3 + 0.4 * np.sin(np.pi * times / (40 / FPS))  # meets both anchors' label 0.3
    noisy = curve + 0.1 * np.random.default_rng(0).standard_normal(len(times))
    smoothed = smooth_with_anchors(times, noisy, anchor_times, np.array([0.3, 0.3]), strength=0.2)
    assert np.abs(smoothed - curve).mean() < np.abs(noisy - curve).mean() / 2
    assert abs(smoothed[0] - 0.3) < abs(noisy[0] - 0.3) + 0.05 and abs(smoothed[-1] - 0.3) < 0.1
    assert smooth_with_anchors(times, noisy, anchor_times, np.array([0.3, 0.3]), strength=0.0) is noisy
    # Very stiff: linear interpolation between the anchors' labels, whatever the predictions say.
    stiff = smooth_with_anchors(times, noisy, anchor_times, np.array([0.0, 1.0]), strength=1e6)
    np.testing.assert_allclose(stiff, times / (40 / FPS), atol=1e-3)


# ------------------------------------------------------------------------------------------------ choosing


def test_auto_picks_a_model_mode_for_a_perfect_model_and_estimates_no_error():
    embeddings, times, valence, arousal, queries, anchors = video_and_anchors()
    v, a, choice = predict_auto(KnownErrorModel(), embeddings[queries], times[queries], anchors)
    assert choice.valence[0] not in ("hold", "interpolate") and choice.arousal[0] not in ("hold", "interpolate")
    assert max(choice.estimated_rmse) < 0.01
    np.testing.assert_allclose(v, valence[queries], atol=0.02)
    np.testing.assert_allclose(a, arousal[queries], atol=0.02)


def test_auto_falls_back_to_interpolation_when_the_model_gets_changes_backwards():
    embeddings, times, valence, arousal, queries, anchors = video_and_anchors()
    v, _, choice = predict_auto(KnownErrorModel(gain=-1.0), embeddings[queries], times[queries], anchors)
    assert choice.valence[0] == "interpolate" and choice.arousal[0] == "interpolate"
    interpolated = np.interp(times[queries], anchors.timestamps, anchors.valence)
    np.testing.assert_allclose(v, interpolated, atol=1e-6)
    # The estimate is interpolation's own leave-one-out RMSE at the anchors (spacing doubled: pessimistic).
    errors = [
        np.interp(anchors.timestamps[i], np.delete(anchors.timestamps, i), np.delete(anchors.valence, i)) - anchors.valence[i]
        for i in range(len(anchors))
    ]
    assert choice.estimated_rmse[0] == pytest.approx(np.sqrt(np.mean(np.square(errors))), rel=1e-6)


def test_stored_scales_correct_the_estimates_and_sparse_support_uses_the_stored_mode():
    embeddings, times, _, _, queries, anchors = video_and_anchors()
    model = KnownErrorModel(gain=-1.0)
    plain = choose_auto(model, embeddings[queries], times[queries], anchors)
    scaled = choose_auto(
        model, embeddings[queries], times[queries], anchors, AutoSettings(rmse_scale={"interpolate": [0.5, 0.25]})
    )
    assert scaled.estimated_rmse == pytest.approx((plain.estimated_rmse[0] * 0.5, plain.estimated_rmse[1] * 0.25))

    two = Anchors(anchors.embeddings[:2], anchors.timestamps[:2], anchors.valence[:2], anchors.arousal[:2])
    sparse = choose_auto(model, embeddings[queries], times[queries], two, AutoSettings(sparse_mode="fused"))
    assert sparse.valence == ("fused", 0.0) and sparse.estimated_rmse is None
    assert choose_auto(model, embeddings[queries], times[queries], two).valence == ("latest", 0.0)  # no settings


def test_another_mode_replaces_the_preferred_one_only_when_its_estimate_is_lower_by_the_switch_margin():
    embeddings, times, _, _, queries, anchors = video_and_anchors()
    model = KnownErrorModel(error=0.05)
    choose = lambda **settings: choose_auto(  # noqa: E731
        model, embeddings[queries], times[queries], anchors, AutoSettings(modes=["latest", "interpolate"], smoothing=[0.0], **settings)
    )
    plain = choose().estimates
    latest, interpolate = plain[("latest", 0.0)][0], plain[("interpolate", 0.0)][0]
    for ratio, margin, preferred, chosen in (
        (0.8, 0.6, "latest", "latest"),  # lower, but not by the margin: the preferred mode stays
        (0.8, 0.9, "latest", "interpolate"),
        (0.8, 0.6, None, "interpolate"),  # no preference: the lowest estimate wins
        (0.5, 0.6, "latest", "interpolate"),
    ):
        scale = {"interpolate": [ratio * latest / interpolate] * 2}
        choice = choose(rmse_scale=scale, preferred_mode=preferred, switch_margin=margin)
        assert choice.valence[0] == chosen, (ratio, margin, preferred)
        assert choice.estimated_rmse[0] == pytest.approx(latest if chosen == "latest" else ratio * latest)
    never = choose_auto(
        model, embeddings[queries], times[queries], anchors,
        AutoSettings(modes=["latest", "interpolate"], smoothing=[0.0, 0.04], rmse_scale={"interpolate": [0.01 * latest / interpolate] * 2},
                     preferred_mode="latest", switch_margin=0.0),
    )
    # Margin 0: never another mode, but the preferred mode's own smoothing strengths still compete (smoothing
    # removes some of this model's per-frame misreading).
    assert never.estimates[("latest", 0.04)][0] < never.estimates[("latest", 0.0)][0]
    assert never.valence == ("latest", 0.04)
    # A model that gets every change backwards: its estimate is far above interpolation's, margin or not.
    backwards = KnownErrorModel(gain=-1.0)
    settings = AutoSettings(modes=["latest", "interpolate"], preferred_mode="latest", switch_margin=0.6)
    assert choose_auto(backwards, embeddings[queries], times[queries], anchors, settings).valence[0] == "interpolate"
    for margin, preferred in ((1.5, "latest"), (True, "latest"), ("0.6", "latest"), (0.6, "fused")):
        model.config.auto_anchor = {"modes": ["latest", "interpolate"], "preferred_mode": preferred, "switch_margin": margin}
        stored = AutoSettings.of(model)  # a margin that is not a number in [0, 1], or a mode not a candidate: not used
        assert stored.preferred_mode is None and stored.to_dict()["switch_margin"] == 0.6


def labelled_clips(count=3):
    clips = []
    for number in range(count):
        embeddings, times, valence, arousal, _, _ = video_and_anchors(phase=number)
        encoded = EncodedVideo(embeddings, times, np.ones(NUM_FRAMES, bool), np.zeros((NUM_FRAMES, 4)), source=f"c{number}")
        clips.append(LabelledClip(f"c{number}", f"actor{number}", encoded, valence, arousal))
    return clips


def test_the_difference_gain_undoes_a_model_that_shrinks_every_change():
    shrinking = KnownErrorModel(gain=0.5)
    assert fit_difference_gain(shrinking, labelled_clips()) == pytest.approx([2.0, 2.0], rel=1e-3)
    embeddings, times, valence, arousal, queries, anchors = video_and_anchors(every=NUM_FRAMES)  # the first frame only
    shrunk, _ = predict_from_anchors(shrinking, embeddings[queries], times[queries], anchors, mode="latest")
    assert np.abs(shrunk - valence[queries]).max() > 0.25
    for mode in ("latest", "fused"):
        stretched = predict_from_anchors(shrinking, embeddings[queries], times[queries], anchors, mode=mode, difference_gain=(2.0, 2.0))
        np.testing.assert_allclose(stretched, (valence[queries], arousal[queries]), atol=1e-6)
    held, _ = predict_from_anchors(shrinking, embeddings[queries], times[queries], anchors, mode="hold", difference_gain=(2.0, 2.0))
    assert np.all(held == anchors.valence[0])  # baselines use no difference


def test_auto_stretches_differences_only_where_no_anchor_can_check_them():
    shrinking = KnownErrorModel(gain=0.5)
    settings, report = calibrate_auto(shrinking, labelled_clips(), spacings=(20,))
    assert settings.sparse_gain == pytest.approx([2.0, 2.0], rel=1e-3) == report["sparse_gain"]
    embeddings, times, valence, arousal, queries, anchors = video_and_anchors(every=NUM_FRAMES)
    sparse_valence, sparse_arousal, choice = predict_auto(shrinking, embeddings[queries], times[queries], anchors, settings)
    np.testing.assert_allclose((sparse_valence, sparse_arousal), (valence[queries], arousal[queries]), atol=1e-6)
    assert choice.to_dict()["difference_gain"] == pytest.approx([2.0, 2.0], rel=1e-3)
    embeddings, times, valence, arousal, queries, anchors = video_and_anchors(every=10)
    dense_choice = predict_auto(shrinking, embeddings[queries], times[queries], anchors, settings)[2]
    assert dense_choice.difference_gain is None and dense_choice.estimated_rmse is not None
    kept, _ = calibrate_auto(shrinking, labelled_clips(), spacings=(20,), design=AutoSettings(sparse_gain=[1.0, 1.0]))
    assert kept.sparse_gain == [1.0, 1.0]


def test_the_gain_goes_only_to_pair_modes_and_settings_from_other_versions_load():
    embeddings, times, valence, _, queries, anchors = video_and_anchors(every=NUM_FRAMES)
    model = KnownErrorModel(gain=0.5)
    held = predict_auto(model, embeddings[queries], times[queries], anchors, AutoSettings(sparse_mode="hold", sparse_gain=[2.0, 2.0]))
    assert held[2].difference_gain is None and np.all(held[0] == valence[0])
    model.config.auto_anchor = {"sparse_mode": "latest", "sparse_gain": [2.0, 2.0], "added_by_a_later_version": 1}
    assert AutoSettings.of(model).sparse_gain == [2.0, 2.0]
    for broken in ([0.0, 1.0], [float("nan"), 1.0], [2.0]):
        model.config.auto_anchor = {"sparse_mode": "latest", "sparse_gain": broken}
        assert AutoSettings.of(model).sparse_gain is None
    constant = labelled_clips()
    for clip in constant:
        clip.arousal[:] = 0.3  # labels that never change say nothing about the gain
    assert fit_difference_gain(model, constant)[1] == 1.0


def test_calibration_measures_how_much_leaving_an_anchor_out_overstates_interpolation_error():
    settings, report = calibrate_auto(KnownErrorModel(error=0.05), labelled_clips(), spacings=(20, 10))
    # A smooth curve: interpolation error grows with the gap, and hiding an anchor doubles it.
    assert max(settings.rmse_scale["interpolate"]) < 0.6
    # A model that misreads each face independently errs as much far from an anchor as near it.
    assert all(0.7 < scale < 1.4 for scale in settings.rmse_scale["latest"])
    assert settings.sparse_mode in ("latest", "nearest", "mean", "weighted", "fused")  # better than holding
    assert set(report["rmse_scale_by_spacing"]) == {20, 10} and report["num_clips"] == 3
    summed = {mode: sum(scores[mode] for scores in report["ccc_sum_by_spacing"].values()) for mode in settings.modes}
    assert settings.preferred_mode == max(summed, key=summed.get)


# ------------------------------------------------------------------------------------------------ the summary


def test_label_writes_a_summary_with_the_estimate_and_what_made_the_labels(tmp_path, tiny_model_dir, face_video, capsys):
    from mtclar_hf.cli import main
    from mtclar_hf.hub.push import weights_digest

    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.1,0.2\n20,0.3,0.1\n40,-0.2,0.0\n59,0.0,0.4\n")
    out = tmp_path / "labels.csv"
    argv = ["label", str(face_video), "--model", str(tiny_model_dir), "--support", str(support), "--out", str(out)]
    assert main([*argv, "--no-detect", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"{face_video}: auto chose " in err and "estimated RMSE valence" in err
    summary = json.loads((tmp_path / "labels.summary.json").read_text())
    assert summary["anchor_mode"] == "auto" and summary["estimated_rmse"]["valence_rmse"] >= 0
    assert summary["auto"]["valence"]["mode"] in ("latest", "nearest", "mean", "weighted", "fused", "hold", "interpolate")
    assert summary["weights_sha256"] == weights_digest(tiny_model_dir) and summary["package_version"]
    assert summary["crop"]["face_box_source"] == "unknown" and summary["model"] == str(tiny_model_dir)
    assert [row["frame"] for row in summary["support"]] == [0, 20, 40, 59] and summary["frames"] == 60
    table = pd.read_csv(out)
    assert (table.uncertainty[table.is_support] == 0).all() and (table.uncertainty[~table.is_support] >= 0).all()


def test_calibrate_command_stores_the_settings_that_label_then_uses(tmp_path, tiny_model_dir, afew_raw, face_video, capsys):
    import shutil

    from mtclar_hf.cli import main

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    assert main(["calibrate", "--model", str(model), "--afew-va", str(afew_raw), "--spacings", "8", "5", "--quiet"]) == 0
    stored = json.loads((model / "config.json").read_text())["auto_anchor"]
    assert f"(preferred: {stored['preferred_mode']}, another mode must estimate below 0.6x)" in capsys.readouterr().err
    assert stored["modes"][-1] == "interpolate" and stored["chosen_on"] == f"3 clips of {afew_raw}"
    assert stored["preferred_mode"] in stored["modes"] and stored["switch_margin"] == 0.6
    assert set(stored["rmse_scale"]) >= {"latest", "interpolate"} and stored["sparse_mode"]
    assert len(stored["sparse_gain"]) == 2 and min(stored["sparse_gain"]) > 0

    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.1,0.2\n")  # one anchor: the stored sparse mode
    out = tmp_path / "labels.csv"
    assert main(["label", str(face_video), "--model", str(model), "--support", str(support), "--out", str(out), "--no-detect", "--quiet"]) == 0
    summary = json.loads((tmp_path / "labels.summary.json").read_text())
    assert summary["auto"]["valence"]["mode"] == stored["sparse_mode"] and summary["estimated_rmse"] is None
    assert summary["auto"]["difference_gain"] == stored["sparse_gain"]
    assert f"differences x {stored['sparse_gain'][0]:.2f} / " in capsys.readouterr().err

    assert main(["calibrate", "--model", "user/hub-model", "--afew-va", str(afew_raw)]) == 1
    assert "give a local folder" in capsys.readouterr().err

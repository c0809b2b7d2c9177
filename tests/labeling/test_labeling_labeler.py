"""The labelling engine: the maths of every anchor mode and baseline (fake model with known differences),
and the real tiny model end to end (cached embeddings + compare == re-encoding each pair)."""

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mtclar_hf.errors import ConfigError, LabelError
from mtclar_hf.image_processing_mtclar import landmark_boxes
from mtclar_hf.labeling import EncodedVideo, FewShotVideoLabeler
from mtclar_hf.labeling.anchors import Anchors, predict_from_anchors

ANCHOR_TIMES = np.array([0.5, 1.0, 2.0])
ANCHOR_V = np.array([0.2, -0.4, 0.95])
ANCHOR_A = np.array([0.0, 0.5, -0.5])
QUERY_TIMES = np.array([0.25, 0.6, 0.9, 1.5, 2.5])
DV, DA = 0.1, -0.2  # what the fake model's heads always say: v(q) - v(s) = 0.1, a(q) - a(s) = -0.2


class ConstantDiffModel(torch.nn.Module):
    """Stands in for MTCLARModel: compare() returns known differences and records every pair it saw."""

    def __init__(self, embedding_size=4):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(embedding_size=embedding_size, label_min=-1.0, label_max=1.0)
        self.pairs_seen = 0
        self.compare_calls = 0

    def embed(self, pixel_values):
        raise AssertionError("labelling must not run the encoder")

    def compare(self, emb_a, emb_b):
        self.compare_calls += 1
        self.pairs_seen += len(emb_a)
        n = len(emb_a)
        return SimpleNamespace(valence_diff=torch.full((n,), DV), arousal_diff=torch.full((n,), DA))


def anchors(embeddings=None):
    embeddings = torch.zeros(3, 4) if embeddings is None else embeddings
    return Anchors(embeddings=embeddings, timestamps=ANCHOR_TIMES, valence=ANCHOR_V, arousal=ANCHOR_A)


def predict(mode, query_embeddings=None, **kwargs):
    model = ConstantDiffModel()
    query_embeddings = torch.zeros(len(QUERY_TIMES), 4) if query_embeddings is None else query_embeddings
    return predict_from_anchors(
        model, query_embeddings, QUERY_TIMES, kwargs.pop("anchors", anchors()), mode=mode, **kwargs
    )


def clip(x):
    return np.clip(x, -1, 1)


@pytest.mark.parametrize(
    "mode,expected_anchor",
    [
        ("latest", [0, 0, 0, 1, 2]),  # before the first anchor: the first one
        ("nearest", [0, 0, 1, 1, 2]),  # 1.5 is equally far from 1.0 and 2.0: the earlier wins
    ],
)
def test_single_anchor_modes(mode, expected_anchor):
    valence, arousal = predict(mode)
    np.testing.assert_allclose(valence, clip(ANCHOR_V[expected_anchor] + DV))
    np.testing.assert_allclose(arousal, clip(ANCHOR_A[expected_anchor] + DA))
    assert valence[-1] == 1.0  # 0.95 + 0.1 is clipped to the label range


def test_fused_interpolates_the_per_anchor_predictions_in_time():
    valence, _ = predict("fused")
    p = clip(ANCHOR_V + DV)  # per-anchor MT-CLAR predictions: 0.3, -0.3, 1.0
    expected = [p[0], 0.8 * p[0] + 0.2 * p[1], 0.2 * p[0] + 0.8 * p[1], 0.5 * p[1] + 0.5 * p[2], p[2]]
    np.testing.assert_allclose(valence, expected)


def test_baselines_ignore_the_model():
    hold, _ = predict("hold")
    np.testing.assert_allclose(hold, ANCHOR_V[[0, 0, 0, 1, 2]])
    interpolated, arousal = predict("interpolate")
    v = ANCHOR_V
    np.testing.assert_allclose(
        interpolated, [v[0], 0.8 * v[0] + 0.2 * v[1], 0.2 * v[0] + 0.8 * v[1], 0.5 * v[1] + 0.5 * v[2], v[2]]
    )
    np.testing.assert_allclose(arousal[3], 0.5 * ANCHOR_A[1] + 0.5 * ANCHOR_A[2])


def test_mean_clips_each_anchor_before_averaging():
    valence, arousal = predict("mean")
    np.testing.assert_allclose(valence, np.full(5, (0.3 - 0.3 + 1.0) / 3))
    np.testing.assert_allclose(arousal, np.full(5, np.mean(clip(ANCHOR_A + DA))))
    nearest_two, _ = predict("mean", max_anchors=2)
    assert nearest_two[0] == pytest.approx(0.0, abs=1e-6) and nearest_two[-1] == pytest.approx((1.0 - 0.3) / 2)


def test_weighted_by_similarity_and_time():
    rng = np.random.default_rng(0)
    query_embeddings = torch.tensor(rng.normal(size=(5, 4)), dtype=torch.float32)
    anchor_embeddings = torch.tensor(rng.normal(size=(3, 4)), dtype=torch.float32)
    valence, _ = predict(
        "weighted", query_embeddings, anchors=anchors(anchor_embeddings), time_scale=0.7, similarity_temperature=0.3
    )
    per_anchor = clip(ANCHOR_V + DV)
    for q in range(5):
        e_q = query_embeddings[q].numpy().astype(np.float64)
        scores = []
        for s in range(3):
            e_s = anchor_embeddings[s].numpy().astype(np.float64)
            cosine = e_q @ e_s / (np.linalg.norm(e_q) * np.linalg.norm(e_s))
            scores.append(np.exp(cosine / 0.3 - abs(QUERY_TIMES[q] - ANCHOR_TIMES[s]) / 0.7))
        weights = np.array(scores) / sum(scores)
        assert valence[q] == pytest.approx(float(weights @ per_anchor), abs=1e-5)


def test_unknown_mode_and_empty_anchors():
    with pytest.raises(ConfigError, match="unknown anchor mode"):
        predict("median")
    empty = Anchors(torch.zeros(0, 4), np.zeros(0), np.zeros(0), np.zeros(0))
    with pytest.raises(LabelError, match="no usable support"):
        predict("latest", anchors=empty)


def fake_encoded(num_frames=40, faceless=()):
    found = np.ones(num_frames, bool)
    found[list(faceless)] = False
    return EncodedVideo(
        embeddings=torch.zeros(num_frames, 4),
        timestamps=np.arange(num_frames) / 10.0,
        face_found=found,
        boxes=np.where(found[:, None], [[1.0, 2.0, 3.0, 4.0]], np.nan),
        source="fake.mp4",
    )


def test_label_table_support_unchanged_faceless_nan_and_pair_cost():
    model = ConstantDiffModel()
    labeler = FewShotVideoLabeler(model, image_processor=None, detector=None)
    support = {0: (0.5, 0.5), 20: (-0.5, 0.25), 39: (0.9, -0.9)}
    table = labeler.label(fake_encoded(faceless=[5]), support, anchor="mean")
    assert list(table.columns) == [
        "frame",
        "timestamp",
        "valence",
        "arousal",
        "face_found",
        "is_support",
        "box_x",
        "box_y",
        "box_w",
        "box_h",
        "uncertainty",
    ]
    for frame, (v, a) in support.items():
        assert (table.valence[frame], table.arousal[frame]) == (v, a) and table.is_support[frame]
    assert np.isnan(table.valence[5]) and not table.face_found[5] and np.isnan(table.box_x[5])
    queries = 40 - 3 - 1
    # K anchors = K head passes per frame, plus 2 for the uncertainty (the two nearest anchors); no encoder pass
    assert model.pairs_seen == queries * 3 + queries * 2
    assert table.valence[1] == pytest.approx(np.mean(clip(np.array([0.5, -0.5, 0.9]) + DV)))


def test_label_faceless_support_error_or_drop(caplog):
    labeler = FewShotVideoLabeler(ConstantDiffModel(), image_processor=None, detector=None)
    encoded = fake_encoded(faceless=[10])
    with pytest.raises(LabelError, match="10"):
        labeler.label(encoded, {0: (0.1, 0.1), 10: (0.2, 0.2)}, strict=True)
    with caplog.at_level(logging.WARNING):
        table = labeler.label(encoded, {0: (0.1, 0.1), 10: (0.2, 0.2)}, anchor="hold")
    assert "support frame(s) 10 have no face: labelled from the other anchors" in caplog.text
    assert table.valence[10] == 0.2 and table.valence[15] == pytest.approx(0.1)  # frame 10 is no anchor
    with pytest.raises(LabelError, match="empty"):
        labeler.label(encoded, {})


def test_label_video_without_any_face_is_all_nan(caplog):
    labeler = FewShotVideoLabeler(ConstantDiffModel(), image_processor=None, detector=None)
    with caplog.at_level(logging.WARNING):
        table = labeler.label(fake_encoded(num_frames=6, faceless=range(6)), {0: (0.1, 0.1)})
    assert "no face found" in caplog.text
    assert table.valence[1:].isna().all() and table.arousal[1:].isna().all() and not table.face_found.any()


# --- the real tiny model -----------------------------------------------------------------------------------------


def test_cached_compare_equals_reencoding_each_pair(face_video, tiny_labeler_parts):
    model, processor = tiny_labeler_parts
    labeler = FewShotVideoLabeler(model, processor, detector=None, batch_size=7)
    encoded = labeler.encode(face_video)
    assert encoded.num_frames == 60 and encoded.face_found.all() and encoded.embeddings.shape == (60, 32)
    np.testing.assert_allclose(encoded.timestamps, np.arange(60) / 25, atol=1e-3)
    support = {0: (0.3, -0.2), 30: (-0.6, 0.4)}
    table = labeler.label(encoded, support, anchor="latest")
    from mtclar_hf.labeling.video import iter_frames

    frames = [f.image for f in iter_frames(face_video)]
    pixels = torch.from_numpy(processor.preprocess_arrays([frames[17], frames[0], frames[45], frames[30]]))
    with torch.inference_mode():
        out = model(pixels[0::2], pixels[1::2])  # full Siamese forward, re-encoding both images of each pair
    expected_17 = np.clip(0.3 + out.valence_diff[0].item(), -1, 1)
    expected_45 = np.clip(-0.6 + out.valence_diff[1].item(), -1, 1)
    assert table.valence[17] == pytest.approx(expected_17, abs=1e-4)
    assert table.valence[45] == pytest.approx(expected_45, abs=1e-4)
    # batch size does not change embeddings (eval mode)
    again = FewShotVideoLabeler(model, processor, detector=None, batch_size=64).encode(face_video)
    torch.testing.assert_close(again.embeddings, encoded.embeddings, atol=1e-5, rtol=1e-4)


def test_encoded_video_saves_and_loads(tmp_path, tiny_labeler_parts, face_like_frames):
    model, processor = tiny_labeler_parts
    labeler = FewShotVideoLabeler(model, processor, detector=None)
    encoded = labeler.encode(list(face_like_frames(12)), fps=12.0)
    path = encoded.save(tmp_path / "enc.npz")
    loaded = EncodedVideo.load(path)
    torch.testing.assert_close(loaded.embeddings, encoded.embeddings)
    np.testing.assert_array_equal(loaded.timestamps, np.arange(12) / 12.0)
    assert loaded.face_found.all() and loaded.frame_names is None and loaded.source == "<frames>"
    a = labeler.label(encoded, {0: (0.1, 0.1)}, anchor="fused")
    b = labeler.label(loaded, {0: (0.1, 0.1)}, anchor="fused")
    np.testing.assert_allclose(a.valence, b.valence)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(Exception, match="junk.npz"):
        EncodedVideo.load(tmp_path / "junk.npz")


class EveryOtherFrameDetector:
    """A plug-in detector: a face on even frames only (beyond the tracker's gap bridging when max_gap=0)."""

    def __init__(self):
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        return [(8, 8, 40, 40, 1.0)] if self.calls % 2 == 1 else []


def test_plugin_detector_and_faceless_frames(tiny_labeler_parts, face_like_frames):
    model, processor = tiny_labeler_parts
    # A call counter is not thread-safe: one face worker keeps the calls in frame order, and detecting on every
    # frame keeps one call per frame.
    labeler = FewShotVideoLabeler(
        model, processor, detector=EveryOtherFrameDetector(), max_gap=0, face_workers=1, detect_every=1
    )
    encoded = labeler.encode(list(face_like_frames(10)))
    np.testing.assert_array_equal(encoded.face_found, [True, False] * 5)
    assert np.isnan(encoded.boxes[1]).all() and np.isnan(encoded.landmarks[1]).all()
    # The detector's box only seeds the landmark predictor: the crop box is the box of the landmarks.
    np.testing.assert_allclose(encoded.boxes[0], landmark_boxes(encoded.landmarks[0])[0])
    assert encoded.embeddings[1].abs().sum() == 0


class BrightnessDetector:
    """A thread-safe plug-in detector whose box depends only on the frame: a face unless the frame is dark."""

    def detect(self, frame):
        level = float(frame.mean())
        return [(4 + level % 7, 6, 40, 40, 1.0)] if level > 60 else []


def test_parallel_face_workers_match_one_worker(tiny_labeler_parts):
    """Detection runs on a thread pool, tracking stays in frame order: any number of workers, same result."""
    model, processor = tiny_labeler_parts
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 40 + 4 * i, size=(64, 64, 3), dtype=np.uint8) for i in range(37)]
    results = [
        FewShotVideoLabeler(model, processor, detector=BrightnessDetector(), batch_size=8, face_workers=workers,
                            max_gap=0).encode(frames)
        for workers in (1, 4)
    ]
    assert not results[0].face_found.all() and results[0].face_found.any()
    np.testing.assert_array_equal(results[0].face_found, results[1].face_found)
    np.testing.assert_allclose(results[0].boxes, results[1].boxes)
    torch.testing.assert_close(results[0].embeddings, results[1].embeddings)
    assert {"decode", "faces", "crop", "encode", "total"} <= set(results[1].profile)


def test_decode_errors_reach_the_caller(tiny_labeler_parts):
    model, processor = tiny_labeler_parts
    labeler = FewShotVideoLabeler(model, processor, detector=None)
    with pytest.raises(ValueError, match="frame 1"):
        labeler.encode([np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.float32)])


def test_anchor_cost_benchmark_runs(tiny_labeler_parts, face_like_frames):
    """The anchor benchmark's code path (benchmarks/labeling.py): cached embeddings vs re-encoding every pair
    (20 anchors: 40 encoder passes per frame against 1, so the cached path must win on any machine)."""
    from benchmarks.labeling import anchor_costs
    from mtclar_hf.labeling.video import VideoFrame

    model, processor = tiny_labeler_parts
    labeler = FewShotVideoLabeler(model, processor, detector=None, batch_size=16)
    frames = [VideoFrame(i, i / 25, image) for i, image in enumerate(face_like_frames(48))]
    result = anchor_costs(labeler, frames, labeler.find_faces(frames), queries=2, repeats=1)
    assert result["support_frames"] >= 20 and set(result["by_k"]) == {"1", "5", "20"}
    assert result["by_k"]["20"]["cached_vs_reencode"] > 1.0, result


# ---------------------------------------------------------------------------------------------------------------
# offset: single-image predictions carried from the anchors (an SL head of known outputs)


class KnownSLModel(torch.nn.Module):
    """Stands in for a model with only an SL head: valence = 1st embedding coordinate, arousal = 2nd."""

    has_affect_head = True

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(embedding_size=4, label_min=-1.0, label_max=1.0)

    def embed(self, pixel_values):
        raise AssertionError("labelling must not run the encoder")

    def predict_affect(self, embeddings):
        return torch.zeros(len(embeddings), 8), embeddings[:, 0], embeddings[:, 1]


def sl_embeddings(valence, arousal):
    values = torch.zeros(len(valence), 4)
    values[:, 0], values[:, 1] = torch.tensor(valence), torch.tensor(arousal)
    return values


def test_offset_carries_each_anchors_residual_and_interpolates_between_the_bracketing_ones():
    anchor_sl_v, anchor_sl_a = [0.0, 0.1, 0.5], [0.2, 0.2, -0.6]
    query_sl_v, query_sl_a = [0.3, -0.2, 0.4, 0.9, 0.95], [0.0, 0.1, 0.2, 0.3, -0.8]
    valence, arousal = predict_from_anchors(
        KnownSLModel(),
        sl_embeddings(query_sl_v, query_sl_a),
        QUERY_TIMES,
        anchors(sl_embeddings(anchor_sl_v, anchor_sl_a)),
        mode="offset",
    )
    # label(q) = clip(label(s) + SL(q) - SL(s)) per bracketing anchor s, weighted linearly in time as `fused`.
    per_anchor_v = clip(ANCHOR_V[None, :] + np.array(query_sl_v)[:, None] - np.array(anchor_sl_v)[None, :])
    per_anchor_a = clip(ANCHOR_A[None, :] + np.array(query_sl_a)[:, None] - np.array(anchor_sl_a)[None, :])
    weights = np.array([[1, 0, 0], [0.8, 0.2, 0], [0.2, 0.8, 0], [0, 0.5, 0.5], [0, 0, 1]])
    np.testing.assert_allclose(valence, (weights * per_anchor_v).sum(axis=1), atol=1e-6)
    np.testing.assert_allclose(arousal, (weights * per_anchor_a).sum(axis=1), atol=1e-6)
    assert valence[-1] == pytest.approx(min(1.0, 0.95 + 0.95 - 0.5))  # clipped to the label range


def test_an_sl_only_model_offers_offset_and_the_baselines_only():
    from mtclar_hf.labeling.anchors import available_modes, fallback_mode

    model = KnownSLModel()
    assert available_modes(model) == ("offset", "hold", "interpolate")
    assert fallback_mode(model) == "offset" and fallback_mode(ConstantDiffModel()) == "latest"
    assert "offset" not in available_modes(ConstantDiffModel())
    labeler = FewShotVideoLabeler(model, image_processor=None, detector=None)
    with pytest.raises(ConfigError, match="'latest' is not available: the model has no pair heads.*use offset, hold, interpolate"):
        labeler.label(fake_encoded(), {0: (0.0, 0.0)}, anchor="latest")
    table = labeler.label(fake_encoded(), {0: (0.5, -0.5)})  # auto, one anchor: offset; equal SL outputs carry it
    np.testing.assert_allclose(table.valence, 0.5)
    with pytest.raises(ConfigError, match="has no SL head"):
        FewShotVideoLabeler(ConstantDiffModel(), image_processor=None, detector=None).label(
            fake_encoded(), {0: (0.0, 0.0)}, anchor="offset"
        )


def test_without_support_gives_the_clipped_single_image_predictions_marked_as_such():
    encoded = fake_encoded(num_frames=4, faceless=[2])
    encoded.embeddings = sl_embeddings([0.3, 1.7, 0.0, -0.2], [-0.1, 0.0, 0.0, -3.0])
    table = FewShotVideoLabeler(KnownSLModel(), image_processor=None, detector=None).label_without_support(encoded)
    np.testing.assert_allclose(table.valence, [0.3, 1.0, np.nan, -0.2], atol=1e-6)
    np.testing.assert_allclose(table.arousal, [-0.1, 0.0, np.nan, -1.0], atol=1e-6)
    assert list(table.method) == ["single-image", "single-image", "", "single-image"] and not table.is_support.any()
    with pytest.raises(ConfigError, match="needs a model with an SL head"):
        FewShotVideoLabeler(ConstantDiffModel(), image_processor=None, detector=None).label_without_support(encoded)


def test_pair_model_with_an_sl_head_offers_every_mode_until_its_pair_heads_are_untrained():
    from mtclar_hf import MTCLARModel
    from mtclar_hf.labeling.anchors import ALL_MODES, available_modes, fallback_mode
    from mtclar_hf.testing_utils import tiny_config

    model = MTCLARModel(tiny_config(affect_head=True)).eval()
    assert available_modes(model) == ALL_MODES[1:] and fallback_mode(model) == "latest"
    logits, valence, arousal = model.predict_affect(torch.rand(3, model.config.embedding_size))
    assert logits.shape == (3, 8) and valence.abs().max() <= 1 and arousal.shape == (3,)
    untrained = MTCLARModel(tiny_config(affect_head=True, pair_heads_trained=False))
    assert available_modes(untrained) == ("offset", "hold", "interpolate") and fallback_mode(untrained) == "offset"
    assert fallback_mode(MTCLARModel(tiny_config(pair_heads_trained=False))) == "interpolate"


def test_anchor_disagreement_compares_the_two_nearest_anchors_predictions():
    from mtclar_hf.labeling.anchors import anchor_disagreement

    disagreement = anchor_disagreement(ConstantDiffModel(), torch.zeros(5, 4), QUERY_TIMES, anchors())
    # Each query's two nearest anchors in time predict label + (DV, DA): they disagree by their labels' gap.
    gap = lambda i, j: 0.5 * (abs(clip(ANCHOR_V[i] + DV) - clip(ANCHOR_V[j] + DV)) + abs(ANCHOR_A[i] - ANCHOR_A[j]))  # noqa: E731
    np.testing.assert_allclose(disagreement, [gap(0, 1), gap(0, 1), gap(0, 1), gap(1, 2), gap(1, 2)])
    one = Anchors(torch.zeros(1, 4), np.array([1.0]), np.array([0.0]), np.array([0.0]))
    assert np.isnan(anchor_disagreement(ConstantDiffModel(), torch.zeros(2, 4), np.array([0.0, 2.0]), one)).all()

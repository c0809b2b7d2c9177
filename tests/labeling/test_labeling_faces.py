"""Face detector interface and tracker: largest/index following, EMA smoothing, gap bridging."""

import numpy as np
import pytest

from mtclar_hf.errors import ConfigError
from mtclar_hf.labeling.faces import FaceTracker, OpenCVCascadeDetector, box_iou, make_detector, parse_follow


def test_tracker_follows_largest_and_smooths():
    tracker = FaceTracker("largest", smoothing=0.5)
    first = tracker.update([(0, 0, 10, 10, 1.0), (50, 50, 40, 40, 1.0)])
    assert first == (50, 50, 40, 40)
    # next frame: the followed face moved by 4 px, a bigger face appeared elsewhere: keep following ours
    second = tracker.update([(54, 50, 40, 40, 1.0), (0, 0, 90, 45, 1.0)])
    assert second == pytest.approx((52, 50, 40, 40))  # EMA: half old, half new


def test_tracker_follows_given_index_from_the_left():
    tracker = FaceTracker(1, smoothing=0.0)
    assert tracker.update([(10, 10, 20, 20, 1.0)]) is None  # only one face: face #1 not seen yet
    assert tracker.update([(100, 10, 20, 20, 1.0), (10, 10, 30, 30, 1.0)]) == (100, 10, 20, 20)
    assert tracker.update([(12, 10, 30, 30, 1.0), (101, 11, 20, 20, 1.0)]) == (101, 11, 20, 20)


def test_tracker_bridges_short_gaps_then_loses_the_face():
    tracker = FaceTracker(smoothing=0.0, max_gap=2)
    tracker.update([(10, 10, 20, 20, 1.0)])
    assert tracker.update([]) == (10, 10, 20, 20)
    assert tracker.update([]) == (10, 10, 20, 20)
    assert tracker.update([]) is None
    # a new face after the loss starts a new track without smoothing towards the old box
    assert tracker.update([(200, 200, 30, 30, 1.0)]) == (200, 200, 30, 30)


def test_tracker_does_not_jump_to_a_distant_face_within_the_gap():
    tracker = FaceTracker(smoothing=0.0, max_gap=1)
    tracker.update([(10, 10, 20, 20, 1.0)])
    assert tracker.update([(300, 300, 20, 20, 1.0)]) == (10, 10, 20, 20)  # held
    assert tracker.update([(300, 300, 20, 20, 1.0)]) == (300, 300, 20, 20)  # old face gone: restart


def test_parse_follow_and_bad_options():
    assert parse_follow("largest") == "largest" and parse_follow("2") == 2
    with pytest.raises(ConfigError):
        parse_follow("biggest")
    with pytest.raises(ConfigError):
        FaceTracker(smoothing=1.0)
    with pytest.raises(ConfigError):
        make_detector("retinaface")
    assert make_detector(None) is None


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_opencv_detector_finds_the_real_face(real_faces_dir):
    from PIL import Image

    image = np.asarray(Image.open(real_faces_dir / "single_face.jpg").convert("RGB"))
    detections = OpenCVCascadeDetector().detect(image)
    assert len(detections) >= 1
    x, y, w, h, _ = max(detections, key=lambda d: d[2] * d[3])
    assert 0 <= x < image.shape[1] and 0 <= y < image.shape[0] and w > image.shape[1] / 20


def test_opencv_detector_finds_nothing_in_a_flat_image():
    assert OpenCVCascadeDetector(scale=0.5).detect(np.full((240, 320, 3), 128, np.uint8)) == []
    with pytest.raises(ConfigError):
        OpenCVCascadeDetector(scale=2.0)

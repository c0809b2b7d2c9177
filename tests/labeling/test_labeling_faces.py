"""Face detector interface and tracker: largest/index following, EMA smoothing, gap bridging; the follower that
detects on every N-th frame and seeds the landmarks in between from the previous frame's."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mtclar_hf.errors import ConfigError
from mtclar_hf.labeling.faces import (
    FaceFollower,
    FaceTracker,
    HogDetector,
    LandmarkPredictor,
    LandmarkSmoother,
    OpenCVCascadeDetector,
    box_iou,
    make_detector,
    moved_with_landmarks,
    parse_follow,
)


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


CANVAS = (360, 480)  # HOG looks at a 480-pixel frame as it is: no downscale, no second look at twice the size


def moving_face(real_faces_dir, num_frames: int, step: tuple[int, int] = (4, 2)) -> list[np.ndarray]:
    """The real face photo (180 px) gliding `step` pixels a frame over a flat grey frame."""
    import cv2

    from mtclar_hf.labeling.video import read_image_rgb

    face = cv2.resize(read_image_rgb(real_faces_dir / "single_face.jpg"), (180, 180), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(num_frames):
        frame = np.full((*CANVAS, 3), 128, np.uint8)
        x, y = 40 + step[0] * t, 40 + step[1] * t
        frame[y : y + 180, x : x + 180] = face
        frames.append(frame)
    return frames


class CountingDetector:
    def __init__(self):
        self.detector, self.calls = HogDetector(), 0

    def detect(self, frame):
        self.calls += 1
        return self.detector.detect(frame)


def follower(detect_every: int, detector=None, max_gap: int = 5) -> FaceFollower:
    tracker = FaceTracker(smoothing=0.0, max_gap=max_gap, start_score=HogDetector.start_score)
    return FaceFollower(detector or HogDetector(), LandmarkPredictor(), tracker, LandmarkSmoother(0.5), detect_every)


def boxes_of(located) -> np.ndarray:
    return np.array([box if found else (np.nan,) * 4 for box, _, found in located])


def test_a_detection_box_moves_with_its_landmarks():
    points = np.stack(np.meshgrid(np.linspace(100, 140, 17), np.linspace(50, 90, 4)), -1).reshape(-1, 2)
    box = (95.0, 40.0, 50.0, 52.0)
    assert moved_with_landmarks(box, points, points) == pytest.approx(box)
    # the same face 10 px to the right and 3 px up: the box follows and keeps the detector's size
    assert moved_with_landmarks(box, points, points + (10, -3)) == pytest.approx((105.0, 37.0, 50.0, 52.0))
    assert moved_with_landmarks(box, points, np.full((68, 2), 5.0)) is None


def test_detecting_every_third_frame_keeps_the_crop_of_detecting_every_frame(real_faces_dir):
    frames = moving_face(real_faces_dir, 24)
    every_frame = boxes_of(follower(1).follow(frames))
    counting = CountingDetector()
    every_third = boxes_of(follower(3, counting).follow(frames))
    assert np.isfinite(every_frame).all() and np.isfinite(every_third).all()
    assert np.abs(every_third - every_frame).max() <= 4  # pixels, on a face 180 px wide moving 4 px a frame
    assert counting.calls == 8


def test_the_worker_pool_and_the_chunks_do_not_change_what_is_followed(real_faces_dir):
    frames = moving_face(real_faces_dir, 16)
    alone = boxes_of(follower(3).follow(frames))
    chunked = follower(3)
    with ThreadPoolExecutor(2) as pool:
        in_chunks = chunked.follow(frames[:7], pool) + chunked.follow(frames[7:], pool)
    np.testing.assert_array_equal(boxes_of(in_chunks), alone)


@pytest.mark.parametrize("detect_every", [1, 4])
def test_a_face_that_leaves_is_dropped_within_the_interval_and_the_gap(real_faces_dir, detect_every):
    leaves_at, max_gap = 9, 2
    frames = moving_face(real_faces_dir, leaves_at) + [np.full((*CANVAS, 3), 128, np.uint8)] * 12
    with ThreadPoolExecutor(2) as pool:
        found = [found for _, _, found in follower(detect_every, max_gap=max_gap).follow(frames, pool)]
    assert all(found[:leaves_at])
    assert not any(found[leaves_at + detect_every + max_gap - 1 :])


@pytest.mark.parametrize("detect_every", [1, 2])
def test_after_a_cut_to_another_place_the_follower_restarts_there_and_never_drifts_between(real_faces_dir, detect_every):
    cut_at, max_gap = 8, 2
    before = moving_face(real_faces_dir, cut_at, step=(0, 0))  # the face at (40, 40)
    after = [np.roll(frame, (150, 260), axis=(0, 1)) for frame in moving_face(real_faces_dir, 14, step=(0, 0))]
    with ThreadPoolExecutor(2) as pool:
        boxes = boxes_of(follower(detect_every, max_gap=max_gap).follow(before + after, pool))
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    first_place, second_place = centres[0], centres[0] + (260, 150)
    restarted = cut_at + detect_every + max_gap + 1
    np.testing.assert_allclose(centres[restarted:], np.tile(second_place, (len(centres) - restarted, 1)), atol=12)
    # Until then the old place is held (landmarks placed on the empty background there wander a few pixels): no
    # box is ever reported on the way from one place to the other, ~300 px apart.
    shown = ~np.isnan(centres[cut_at:restarted, 0])
    near_either = [
        min(np.linalg.norm(centre - first_place), np.linalg.norm(centre - second_place)) < 30
        for centre in centres[cut_at:restarted][shown]
    ]
    assert all(near_either), (first_place, centres[cut_at:restarted])


def test_the_detection_interval_must_be_positive():
    from mtclar_hf import MTCLARImageProcessor, MTCLARModel
    from mtclar_hf.labeling import FewShotVideoLabeler
    from mtclar_hf.testing_utils import tiny_config

    with pytest.raises(ConfigError, match="detect_every"):
        follower(0)
    with pytest.raises(ConfigError, match="detect_every"):
        FewShotVideoLabeler(MTCLARModel(tiny_config()), MTCLARImageProcessor(), detect_every=0)

"""Face finding for frames without landmarks: detect, follow one face, predict its 68 landmarks.

A frame becomes a crop in three steps, so that a video is cropped exactly as the training data was (the
`LANDMARK_BOX` convention of the image processor: the box of the 68 iBUG landmarks):

1. a detector finds face boxes. A detector is any object with `detect(frame_rgb_uint8) -> list of
   (x, y, w, h, score)` in the frame's pixels, safe to call from several threads at once. `HogDetector`
   (dlib's HOG frontal-face detector, the default: it found faces in more frames than the Haar cascade
   and runs faster, see docs/FACES.md) and `OpenCVCascadeDetector` (OpenCV's bundled Haar cascade) ship
   here; a better detector plugs in by implementing `detect`;
2. `FaceTracker` keeps following one face (by overlap) and bridges short gaps where the detector misses it;
3. `LandmarkPredictor` (dlib's 68-point shape predictor, the model file from `face-recognition-models`)
   places the landmarks inside the followed box; `LandmarkSmoother` smooths them over time (predictions
   jitter by a pixel or two frame to frame), and the crop is cut around their box.

`FaceFollower` runs the three in frame order and, while it follows a face, runs the detector on every N-th
frame only (`DEFAULT_DETECT_EVERY`): in between, the previous frame's landmarks place the next seed.
A detector's box only seeds the landmark predictor: its own convention (Haar boxes reach the forehead,
HOG boxes stop at the brows) never reaches the crop.

The module is longer than most because the detectors, the tracker, the landmark predictor and the follower
that chains them are one path, from a frame to the box of its crop.
"""

from __future__ import annotations

import itertools
import math
import threading
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from ..errors import ConfigError
from ..image_processing_mtclar import landmark_boxes

Box = tuple[float, float, float, float]
Detection = tuple[float, float, float, float, float]
DETECTORS = ("hog", "haar")
DEFAULT_DETECTOR = "hog"
DEFAULT_DETECT_EVERY = 2  # measured: docs/PERFORMANCE.md, docs/FACES.md
NUM_LANDMARKS = 68


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 frame (H, W, 3) as (x, y, w, h, score), in frame pixels."""


class OpenCVCascadeDetector:
    """OpenCV's frontal-face Haar cascade on a frame downscaled so its longer side is at most `max_side`.

    `scale` fixes the downscale factor instead (e.g. 0.5); detection cost grows with the area, and
    faces large enough to label survive a 320-pixel frame easily.
    """

    name = "haar"

    def __init__(
        self,
        scale: float | None = None,
        max_side: int = 320,
        min_neighbors: int = 5,
        min_size: int = 20,
        cascade: str = "haarcascade_frontalface_default.xml",
    ):
        import cv2

        if scale is not None and not 0 < scale <= 1:
            raise ConfigError(f"detector scale must be in (0, 1], got {scale}")
        self.scale = scale
        self.max_side = max_side
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.path = cv2.data.haarcascades + cascade
        self._per_thread = threading.local()
        self.classifier()  # load once here, so a missing cascade fails at construction

    def classifier(self):
        """This thread's cascade: OpenCV's CascadeClassifier keeps per-call buffers, so threads that detect in
        parallel (the labeller's face workers) each need their own."""
        import cv2

        classifier = getattr(self._per_thread, "classifier", None)
        if classifier is None:
            classifier = cv2.CascadeClassifier(self.path)
            if classifier.empty():
                raise ConfigError(
                    f"cannot load the OpenCV face cascade {self.path} (opencv-python-headless 4.x ships it)"
                )
            self._per_thread.classifier = classifier
        return classifier

    def _scale_for(self, frame: np.ndarray) -> float:
        if self.scale is not None:
            return self.scale
        return min(1.0, self.max_side / max(frame.shape[:2]))

    def detect(self, frame: np.ndarray) -> list[Detection]:
        import cv2

        scale = self._scale_for(frame)
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        boxes, _, weights = self.classifier().detectMultiScale3(
            grey,
            scaleFactor=1.1,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
            outputRejectLevels=True,
        )
        detections = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            detections.append((x / scale, y / scale, w / scale, h / scale, float(weight)))
        return detections


class HogDetector:
    """dlib's HOG + linear SVM frontal-face detector on a frame downscaled to at most `max_side` pixels.

    HOG finds faces down to about 80 pixels; when the downscaled frame shows none, or only weak ones, it
    looks again at twice the size (dlib's upsampling), so small faces cost more time only where they occur.
    Frames already smaller than `max_side` are looked at twice their size at once.

    Two thresholds (docs/FACES.md): detections down to `threshold` (-0.5) are returned, but only those
    scoring at least `start_score` (0, dlib's own threshold) may start following a face; weaker ones only
    keep an existing track going. At -0.5 HOG fired on 58 of 95 frames of a real video without a face, at 0
    on none, while a followed face is kept through frames where it scores low. When no detection is
    confident, `fallback` (OpenCV's Haar cascade by default, which also fired on none of those frames) gets
    a say, with its detections counted as confident.
    """

    name = "hog"
    start_score = 0.0

    def __init__(self, scale: float | None = None, max_side: int = 480, threshold: float = -0.5, fallback="haar"):
        import dlib

        if scale is not None and not 0 < scale <= 1:
            raise ConfigError(f"detector scale must be in (0, 1], got {scale}")
        self.scale = scale
        self.max_side = max_side
        self.threshold = threshold
        self.fallback = OpenCVCascadeDetector(scale=scale) if fallback == "haar" else fallback
        self._dlib = dlib
        self._per_thread = threading.local()

    def _detector(self):
        """This thread's detector: dlib's object detectors must not be shared between threads."""
        detector = getattr(self._per_thread, "detector", None)
        if detector is None:
            detector = self._per_thread.detector = self._dlib.get_frontal_face_detector()
        return detector

    def _confident(self, detections: list[Detection]) -> int:
        return sum(d[4] >= self.start_score for d in detections)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        import cv2

        scale = self.scale if self.scale is not None else min(1.0, self.max_side / max(frame.shape[:2]))
        image = np.ascontiguousarray(frame)
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        detections = []
        # A frame smaller than `max_side` shows small faces: look at twice its size from the start.
        for upsample in (1,) if max(image.shape[:2]) < self.max_side else (0, 1):
            rects, scores, _ = self._detector().run(image, upsample, self.threshold)
            found = [
                (r.left() / scale, r.top() / scale, r.width() / scale, r.height() / scale, float(score))
                for r, score in zip(rects, scores)
            ]
            if self._confident(found) >= self._confident(detections):
                detections = found
            if found and self._confident(found) == len(found):
                break  # every face found is a sure one: no need to look at twice the size
        if self.fallback is not None and not any(d[4] >= self.start_score for d in detections):
            detections += [(*d[:4], self.start_score) for d in self.fallback.detect(frame)]
        return detections


def landmark_model_path() -> str:
    """The 68-point shape predictor file that the `face-recognition-models` package ships (CC0 package; the
    model was trained on iBUG 300-W, whose images are licensed for research: see docs/FACES.md).

    Found without importing the package, whose `__init__` needs `pkg_resources` (gone from recent setuptools).
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the 68-point landmark model is missing: pip install face-recognition-models")
    path = os.path.join(spec.submodule_search_locations[0], "models", "shape_predictor_68_face_landmarks.dat")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: the 68-point landmark model file is missing; reinstall face-recognition-models")
    return path


class LandmarkPredictor:
    """dlib's 68-point shape predictor (iBUG 300-W layout, as AffectNet and AFEW-VA): box in, (68, 2) out.

    One instance serves every thread (dlib's shape predictor is read-only once loaded); the model file
    loads once per process and is shared by every labeller.
    """

    _shared = {}
    _lock = threading.Lock()

    def __init__(self, path: str | None = None):
        import dlib

        path = path or landmark_model_path()
        with self._lock:
            if path not in self._shared:
                self._shared[path] = dlib.shape_predictor(path)
        self._predictor = self._shared[path]
        self._dlib = dlib

    def predict(self, frame: np.ndarray, box: Box) -> np.ndarray:
        """The 68 landmarks (x, y) in frame pixels of the face inside `box` (x, y, w, h)."""
        x, y, w, h = box
        rect = self._dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        shape = self._predictor(np.ascontiguousarray(frame), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


class LandmarkSmoother:
    """Exponential moving average of the landmarks of one followed face; restarts when the face was lost."""

    def __init__(self, smoothing: float = 0.5):
        if not 0 <= smoothing < 1:
            raise ConfigError(f"landmark smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self.points: np.ndarray | None = None

    def restart(self) -> None:
        """Forget the landmarks so far: the next ones belong to another face."""
        self.points = None

    def update(self, points: np.ndarray | None) -> np.ndarray | None:
        if points is None:
            self.points = None
        elif self.points is None:
            self.points = points
        else:
            self.points = self.smoothing * self.points + (1 - self.smoothing) * points
        return self.points


@contextmanager
def opencv_threads(count: int):
    """Run a block with OpenCV's own thread pool at `count` threads, then restore it.

    When the labeller detects faces on several worker threads, each detection's inner `parallel_for`
    only oversubscribes the cores (measured on 2 cores: 23 vs 15 frames/s with 2 workers). OpenCV has
    one process-wide setting, hence the restore."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def make_detector(detector, scale: float | None = None):
    """`"hog"` / `"haar"` (also `"opencv"`) -> that detector, None/"none" -> no detection, an object with
    `detect` -> itself."""
    if detector is None or detector == "none":
        return None
    if detector == "hog":
        return HogDetector(scale=scale)
    if detector in ("haar", "opencv"):
        return OpenCVCascadeDetector(scale=scale)
    if hasattr(detector, "detect"):
        return detector
    raise ConfigError(
        f"unknown face detector {detector!r} (use {', '.join(DETECTORS)}, None, or an object with a detect() method)"
    )


def box_iou(a: Box, b: Box) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    inter_w = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    inter_h = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = inter_w * inter_h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def parse_follow(value) -> str | int:
    """`--follow largest` or `--follow N` (N-th face from the left, 0-based, where first seen)."""
    if value in (None, "largest"):
        return "largest"
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--follow must be 'largest' or a face index (0 = leftmost), got {value!r}") from None
    if index < 0:
        raise ConfigError(f"--follow face index must be >= 0, got {index}")
    return index


class FaceTracker:
    """One smoothed box per frame for the followed face.

    Args:
        follow: "largest" (the biggest face when the track starts) or an int, the N-th face from the
            left (0-based) in the first frame showing at least N + 1 faces.
        smoothing: EMA weight of the previous box in [0, 1); 0 = raw detections.
        max_gap: frames without a matching detection that keep the last box (detector misses are
            brief); after that the face counts as lost and the track restarts on the next detection.
        min_iou: a detection overlapping the track less than this is another face (or a scene cut).
        start_score: detections scoring less may keep a track going but never start one (see `HogDetector`).
    """

    def __init__(
        self,
        follow: str | int = "largest",
        smoothing: float = 0.5,
        max_gap: int = 5,
        min_iou: float = 0.3,
        start_score: float = -math.inf,
    ):
        if not 0 <= smoothing < 1:
            raise ConfigError(f"box smoothing must be in [0, 1), got {smoothing}")
        self.follow = parse_follow(follow)
        self.smoothing = smoothing
        self.max_gap = max_gap
        self.min_iou = min_iou
        self.start_score = start_score
        self.box: np.ndarray | None = None
        self.missed = 0
        self.tracks_started = 0  # a new count: another face (or the same one after it was lost) from this frame on

    def _start(self, detections: list[Detection]) -> Detection | None:
        detections = [d for d in detections if d[4] >= self.start_score]
        if not detections:
            return None
        if self.follow == "largest":
            return max(detections, key=lambda d: d[2] * d[3])
        by_x = sorted(detections, key=lambda d: d[0])
        return by_x[self.follow] if self.follow < len(by_x) else None

    def _match(self, detections: list[Detection]) -> Detection | None:
        best = max(detections, key=lambda d: box_iou(tuple(self.box), d[:4]))
        return best if box_iou(tuple(self.box), best[:4]) >= self.min_iou else None

    def update(self, detections: list[Detection]) -> Box | None:
        """Feed one frame's detections; returns the followed face's box for this frame, or None."""
        chosen = None
        if detections:
            chosen = self._match(detections) if self.box is not None else self._start(detections)
        if chosen is None:
            if self.box is None:
                return None
            self.missed += 1
            if self.missed > self.max_gap:
                self.box, self.missed = None, 0
                # The old face is gone: start again on whatever this frame shows.
                return self.update(detections) if detections else None
            return tuple(float(v) for v in self.box)
        self.missed = 0
        new = np.asarray(chosen[:4], dtype=np.float64)
        self.tracks_started += self.box is None
        self.box = new if self.box is None else self.smoothing * self.box + (1 - self.smoothing) * new
        return tuple(float(v) for v in self.box)

    @property
    def sure(self) -> bool:
        """A face is followed and the last detection found it."""
        return self.box is not None and self.missed == 0

    def move_to(self, box: Box) -> None:
        """Follow the face to `box`, found without the detector, so that the next detection is matched against
        where the face is now rather than where it was last detected."""
        self.box = np.asarray(box, dtype=np.float64)


class DetectionsAhead:
    """The detections of one chunk's frames, run on the worker pool ahead of the in-order walk that uses them
    (without a pool: run when asked for). Detections asked for ahead but never used are cancelled."""

    def __init__(self, detector: FaceDetector, images: list[np.ndarray], pool=None):
        self.detector = detector
        self.images = images
        self.pool = pool
        self.pending = {}

    def prefetch(self, indices) -> None:
        if self.pool is None:
            return
        for index in indices:
            if index < len(self.images) and index not in self.pending:
                self.pending[index] = self.pool.submit(self.detector.detect, self.images[index])

    def get(self, index: int) -> list[Detection]:
        if self.pool is None:
            return self.detector.detect(self.images[index])
        self.prefetch([index])
        return self.pending.pop(index).result()

    def cancel_rest(self) -> None:
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()


def landmark_centre(points: np.ndarray) -> np.ndarray | None:
    """The centre of the landmarks' box; None for a degenerate box."""
    x, y, w, h = landmark_boxes(points)[0]
    return np.array([x + w / 2, y + h / 2]) if w >= 1 and h >= 1 else None


def moved_with_landmarks(box: Box, then: np.ndarray, now: np.ndarray) -> Box | None:
    """`box`, which held the landmarks `then`, moved as far as the landmarks moved to `now` (its size kept: the
    detector's; None for a degenerate landmark box)."""
    start, end = landmark_centre(then), landmark_centre(now)
    if start is None or end is None:
        return None
    dx, dy = end - start
    x, y, w, h = box
    return (float(x + dx), float(y + dy), float(w), float(h))


def check_detect_every(detect_every: int) -> int:
    if detect_every < 1:
        raise ConfigError(f"detect_every must be >= 1 (1: detect on every frame), got {detect_every}")
    return detect_every


class FaceFollower:
    """One face followed from frame to frame: its seed box, its 68 landmarks, their smoothed box.

    Detection costs tens of milliseconds a frame, the landmark predictor about one, so the detector runs on
    every `detect_every`-th frame of the video only, and on every frame while the face is unsure (not followed
    yet, or missed by the last detection: the tracker's `max_gap` then decides within a few frames whether it
    is gone, so a face that leaves is dropped within `detect_every` + `max_gap` frames). In between, the
    predictor is seeded with the last detection's box moved as far as the landmarks have moved since: the
    predictor expects a detector's box, and a face changes little in a few frames.

    `follow(images, pool)` returns (box, landmarks, found) per image, in order; the state carries over from
    one call to the next (the chunks of one video).
    """

    def __init__(
        self,
        detector: FaceDetector,
        predictor: LandmarkPredictor,
        tracker: FaceTracker,
        smoother: LandmarkSmoother,
        detect_every: int = DEFAULT_DETECT_EVERY,
    ):
        self.detect_every = check_detect_every(detect_every)
        self.detector = detector
        self.predictor = predictor
        self.tracker = tracker
        self.smoother = smoother
        self.frames_seen = 0
        self.points: np.ndarray | None = None  # the previous frame's landmarks, as predicted
        self.detected: tuple[Box, np.ndarray] | None = None  # the last detection's box and the landmarks it gave
        self.track = tracker.tracks_started  # the track the smoothed landmarks belong to

    def _detects(self, position: int) -> bool:
        """Whether the frame at this position in the video is detected, as things stand."""
        return not self.tracker.sure or position % self.detect_every == 0

    def follow(self, images: list[np.ndarray], pool=None, lookahead: int = 4) -> list[tuple]:
        """(box, landmarks, found) of each image. With a `pool`, the next `lookahead` detections run on it
        ahead of the in-order walk (which only places landmarks), so the workers stay busy."""
        start = self.frames_seen
        detections = DetectionsAhead(self.detector, images, pool)
        located = []
        try:
            for index, image in enumerate(images):
                upcoming = (i for i in range(index, len(images)) if self._detects(start + i))
                detections.prefetch(itertools.islice(upcoming, lookahead))
                if self._detects(start + index):
                    seed, detected = self._seed_from_detections(detections.get(index))
                else:
                    seed, detected = self._seed_from_previous(), False
                located.append(self._place(image, seed, detected))
        finally:
            detections.cancel_rest()
        self.frames_seen += len(images)
        return located

    def _seed_from_detections(self, found: list[Detection]) -> tuple[Box | None, bool]:
        """The tracker's box and whether a detection gave it; a box the tracker only holds (a missed frame) is
        replaced by the seed from the previous frame's landmarks, which follows the face's motion."""
        box = self.tracker.update(found)
        if box is None or self.tracker.missed == 0:
            return box, box is not None
        return self._seed_from_previous(), False

    def _seed_from_previous(self) -> Box:
        """The last detection's box moved with the previous frame's landmarks (else the tracker's box)."""
        moved = None
        if self.points is not None and self.detected is not None:
            moved = moved_with_landmarks(*self.detected, self.points)
        return moved or tuple(float(v) for v in self.tracker.box)

    def _place(self, image: np.ndarray, seed: Box | None, detected: bool) -> tuple:
        points = None if seed is None else self.predictor.predict(image, seed)
        if detected:
            self.detected = seed, points
        elif seed is not None and self.tracker.sure:
            # While the detector misses the face, the tracker keeps its last detection: landmarks predicted on
            # whatever is there (a new shot after a cut) must not drag it onto another face.
            self.tracker.move_to(seed)
        self.points = points
        if self.tracker.tracks_started != self.track:
            # Another track from this frame on (a cut to another face): its landmarks must not be averaged
            # with the previous face's.
            self.track = self.tracker.tracks_started
            self.smoother.restart()
        return self._locate(points)

    def _locate(self, points: np.ndarray | None) -> tuple:
        """(box, landmarks, found) from this frame's predicted landmarks (None: no face followed)."""
        points = self.smoother.update(points)
        if points is None:
            return None, None, False
        box = landmark_boxes(points)[0]
        if np.isnan(box).any():
            return None, None, False
        return tuple(float(v) for v in box), points, True

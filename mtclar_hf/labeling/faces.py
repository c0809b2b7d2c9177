"""Face finding for the labeller: a small detector interface and a tracker that smooths boxes.

A detector is any object with `detect(frame_rgb_uint8) -> list of (x, y, w, h, score)` in the
frame's pixels. The default, `OpenCVCascadeDetector`, is OpenCV's bundled frontal-face Haar cascade
run on a downscaled grey frame: it ships with opencv-python-headless 4.x and needs no download.
A better detector plugs in by implementing `detect` (thread-safe: the labeller calls it from several
threads at once).

`FaceTracker` turns per-frame detections into one box per frame for the followed face: it keeps
following the same face (by overlap) when several are present, smooths its box with an exponential
moving average (detector boxes jitter by several pixels frame to frame), and bridges short gaps
where the detector misses the face. Frames where the face stays lost get `None`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from ..errors import ConfigError

Box = tuple[float, float, float, float]
Detection = tuple[float, float, float, float, float]


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 frame (H, W, 3) as (x, y, w, h, score), in frame pixels."""


class OpenCVCascadeDetector:
    """OpenCV's frontal-face Haar cascade on a frame downscaled so its longer side is at most `max_side`.

    `scale` fixes the downscale factor instead (e.g. 0.5); detection cost grows with the area, and
    faces large enough to label survive a 320-pixel frame easily.
    """

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
    """`"opencv"` -> the cascade detector, None/"none" -> no detection, an object with `detect` -> itself."""
    if detector is None or detector == "none":
        return None
    if detector == "opencv":
        return OpenCVCascadeDetector(scale=scale)
    if hasattr(detector, "detect"):
        return detector
    raise ConfigError(f"unknown face detector {detector!r} (use 'opencv', None, or an object with a detect() method)")


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
    """

    def __init__(self, follow: str | int = "largest", smoothing: float = 0.5, max_gap: int = 5, min_iou: float = 0.3):
        if not 0 <= smoothing < 1:
            raise ConfigError(f"box smoothing must be in [0, 1), got {smoothing}")
        self.follow = parse_follow(follow)
        self.smoothing = smoothing
        self.max_gap = max_gap
        self.min_iou = min_iou
        self.box: np.ndarray | None = None
        self.missed = 0

    def _start(self, detections: list[Detection]) -> Detection | None:
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
        self.box = new if self.box is None else self.smoothing * self.box + (1 - self.smoothing) * new
        return tuple(float(v) for v in self.box)

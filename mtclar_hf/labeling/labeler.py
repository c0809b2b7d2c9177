"""`FewShotVideoLabeler`: label every frame of a face video from a few labelled frames with MT-CLAR.

Two stages, so that the cost of many anchors stays small:

1. `encode(source)` runs the encoder ONCE per frame, in batches. Three stages overlap, joined by
   bounded queues: a thread decodes; a second finds the face, its 68 landmarks and the crop around them
   for each chunk of frames with a pool of `face_workers` threads (detection, the slowest CPU step, runs on
   the pool ahead of the frame-order walk that follows the face and places its landmarks, `FaceFollower`;
   the crops run on the pool too); the caller's thread encodes. Every path crops the same way
   (`LANDMARK_BOX`): around the source's own landmarks (AFEW-VA frame folders), or around landmarks
   predicted inside a detector's box. The result, an `EncodedVideo`, holds only per-frame embeddings,
   timestamps and face boxes (it can be saved to .npz and labelled again without re-encoding).
2. `label(encoded, support, anchor=...)` predicts each query frame q from labelled anchors s as
   `clip(label(s) + compare(emb_q, emb_s).valence_diff)` into the model's label range (the reference
   protocol; the model already squashes the difference) and combines the per-anchor predictions
   with the weights of the anchor mode. `compare` runs only the fusion and the small heads on cached
   embeddings, so K anchors cost K head passes per frame, not K encoder passes.

How a query is labelled from the anchors (the anchor modes, `auto`, `offset`, the baselines) is
`mtclar_hf.labeling.anchors`.

Frames without a face get NaN labels and cannot be anchors. Support frames always output the labels
the user gave.

The module is longer than most because the encoding pipeline (three overlapping stages) and the labeller
that turns its output into the table are one path, from a frame to a row of the table.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputFileError, LabelError
from ..image_processing_mtclar import LANDMARK_BOX, UNKNOWN_BOX_SOURCE
from ..io_utils import atomic_path
from .anchors import (
    AUTO_MODE,
    SINGLE_IMAGE_MODES,
    anchor_disagreement,
    anchors_from_support,
    available_modes,
    check_mode,
    label_range,
    predict_from_anchors,
    single_image_affect,
)
from .encoders import Encoder, TorchEncoder
from .faces import (
    DEFAULT_DETECT_EVERY,
    DEFAULT_DETECTOR,
    NUM_LANDMARKS,
    FaceFollower,
    FaceTracker,
    LandmarkPredictor,
    LandmarkSmoother,
    check_detect_every,
    make_detector,
    opencv_threads,
)
from .support import check_support
from .tables import output_table
from .video import DEFAULT_FOLDER_FPS, VideoFrame, count_frames, iter_frames

logger = logging.getLogger(__name__)

NO_SUPPORT_METHOD = "single-image"
_END = object()


@dataclass
class EncodedVideo:
    """Per-frame embeddings of one video (the encoder's work, done once), and where the face was.

    `embeddings` (N, D) float32 on the CPU (zeros where no face was found), `timestamps` (N,) seconds,
    `face_found` (N,) bool, `boxes` (N, 4) x, y, w, h in frame pixels (NaN without a face), `landmarks`
    (N, 68, 2) the landmarks the crop was cut around (NaN without a face, or for whole-frame crops).
    """

    embeddings: torch.Tensor
    timestamps: np.ndarray
    face_found: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray | None = None
    source: str = ""
    frame_names: list[str] | None = None
    encode_seconds: float = field(default=0.0, compare=False)
    profile: dict = field(default_factory=dict, compare=False)  # busy seconds per stage (see `encode`)

    @property
    def num_frames(self) -> int:
        return len(self.timestamps)

    def save(self, path) -> Path:
        """Write to an .npz file (atomically), so the video can be labelled again without re-encoding."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                embeddings=self.embeddings.float().numpy(),
                timestamps=self.timestamps,
                face_found=self.face_found,
                boxes=self.boxes,
                landmarks=self.landmarks_or_nan(),
                source=np.asarray(self.source),
                frame_names=np.asarray(self.frame_names if self.frame_names is not None else [], dtype=str),
                has_frame_names=np.asarray(self.frame_names is not None),
            )
        return path

    def landmarks_or_nan(self) -> np.ndarray:
        if self.landmarks is not None:
            return self.landmarks
        return np.full((self.num_frames, NUM_LANDMARKS, 2), np.nan)

    @classmethod
    def load(cls, path) -> EncodedVideo:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [str(n) for n in data["frame_names"]] if bool(data["has_frame_names"]) else None
                return cls(
                    embeddings=torch.from_numpy(data["embeddings"].astype(np.float32)),
                    timestamps=data["timestamps"].astype(np.float64),
                    face_found=data["face_found"].astype(bool),
                    boxes=data["boxes"].astype(np.float64),
                    landmarks=data["landmarks"].astype(np.float64) if "landmarks" in data else None,
                    source=str(data["source"]),
                    frame_names=names,
                )
        except (OSError, KeyError, ValueError) as err:
            raise InputFileError(path, f"not an encoded video (.npz from FewShotVideoLabeler.encode): {err}") from None


# ---------------------------------------------------------------------------------------------------------------
# Encoding: three stages in three threads joined by bounded queues, so they overlap:
#   decode (PyAV)  ->  face finding + crop (a thread pool over each chunk)  ->  encoder batches (caller's thread)


@dataclass
class _FrameRecord:
    index: int
    timestamp: float
    name: str | None
    box: tuple[float, float, float, float] | None
    landmarks: np.ndarray | None
    pixels: np.ndarray | None  # (3, S, S) float32 face crop, None when no face


class StageClock:
    """Busy seconds per pipeline stage (each key is written by one thread only), to show what bounds a run."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, stage: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


def _put(out: queue.Queue, item, stop: threading.Event) -> bool:
    """Put into a bounded queue, giving up (False) once the consumer has stopped."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _decode_into(frames: Iterator[VideoFrame], out: queue.Queue, stop: threading.Event, clock: StageClock) -> None:
    """Stage 1 (own thread): decode frames into a bounded queue; errors travel down the queue."""
    try:
        while True:
            with clock.time("decode"):
                frame = next(frames, _END)
            if not _put(out, frame, stop) or frame is _END:
                return
    except BaseException as err:  # handed on to the caller's thread, which re-raises it
        _put(out, err, stop)


def _take_chunk(source: queue.Queue, size: int, stop: threading.Event) -> tuple[list[VideoFrame], bool]:
    """Up to `size` frames from the decode queue, and whether the video ended (or the consumer stopped);
    re-raises a decode error."""
    chunk = []
    while len(chunk) < size:
        try:
            item = source.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return chunk, True
            continue
        if item is _END:
            return chunk, True
        if isinstance(item, BaseException):
            raise item
        chunk.append(item)
    return chunk, False


def _check_rgb(frame: VideoFrame) -> None:
    image = np.asarray(frame.image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame {frame.index}: expected RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")


def _as_video_frames(frames: Iterable, fps: float) -> Iterator[VideoFrame]:
    for index, frame in enumerate(frames):
        if isinstance(frame, VideoFrame):
            yield frame
        else:
            yield VideoFrame(index=index, timestamp=index / fps, image=np.asarray(frame))


_NO_LANDMARKS = np.full((NUM_LANDMARKS, 2), np.nan)


def warn_if_crop_differs(image_processor) -> None:
    """Warn when the model was trained on other face boxes than the landmark crop every path here cuts."""
    source = getattr(image_processor, "face_box_source", UNKNOWN_BOX_SOURCE)
    if source not in (LANDMARK_BOX, UNKNOWN_BOX_SOURCE):
        logger.warning(
            "the model was trained on %r face boxes, but labelling crops around the 68 landmarks (%r): faces are "
            "framed differently and labels lose much of their accuracy; train on a dataset prepared with the "
            "default --face-box landmarks",
            source,
            LANDMARK_BOX,
        )


def _given_face(frame: VideoFrame) -> tuple:
    """(box, landmarks, found) of a frame that needs no face finding: its source's own landmarks, or, without
    a detector, the whole frame (box None: the processor takes all of it)."""
    return frame.box, frame.landmarks, True


def default_face_workers() -> int:
    """Threads for face finding: dlib and OpenCV release the GIL, and one detection per core scales."""
    return max(1, min(8, os.cpu_count() or 1))


class FewShotVideoLabeler:
    """Encode a video once, then label it from any support set with any anchor mode.

    Args:
        model: an `MTCLARModel` (anything with `embed(pixel_values)` and `compare(emb_a, emb_b)`), or a model
            with an SL head (`predict_affect(embeddings)`), which labels with `offset` (`available_modes`).
        image_processor: an `MTCLARImageProcessor` (face crop, resize, [0, 1] pixels).
        detector: "hog" (default), "haar", None for frames that are already face crops cut the project's
            way (`--no-detect`: the whole frame is the crop), or an object with
            `detect(frame) -> [(x, y, w, h, score)]` (called from several threads at once when
            `face_workers` > 1, so it must be thread-safe). Its boxes only seed the landmark predictor.
        batch_size: frames per encoder batch (also the chunk of frames the face workers share).
        device: torch device; defaults to the model's.
        follow: "largest" or a face index (0 = leftmost), see `FaceTracker`.
        box_smoothing: EMA weight of the previous frame's landmarks (and so of the crop box), in [0, 1).
        max_gap: frames a detector may miss the followed face before it counts as lost (`FaceTracker`).
        detector_scale: downscale factor for face detection (default: longer side 480 px for HOG, 320 px for Haar).
        detect_every: run the detector on every N-th frame while a face is followed (and on every frame while
            none is sure); in between the previous frame's landmarks seed the next (`FaceFollower`). 1 = every frame.
        queue_size: cropped frames waiting for the encoder (bounds memory together with `batch_size`).
        face_workers: threads that detect and crop faces in parallel (default: one per core, at most 8).
        compile: run the encoder through `torch.compile` (pays a compile on the first batches; for long videos).
        mixed_precision: "auto" (bf16 autocast on a CUDA GPU that supports it, none on the CPU), "bf16" or "no".
        encoder: what embeds the face crops (an `Encoder`, e.g. `OnnxEncoder`); default: `TorchEncoder` on `model`.
            The model's pair heads label the frames whichever encoder embedded them.

    On a CUDA device the encoder also runs channels-last with pinned-memory copies; the CPU path is plain
    float32, NCHW (the numbers the tests check).
    """

    def __init__(
        self,
        model,
        image_processor,
        detector=DEFAULT_DETECTOR,
        batch_size: int = 64,
        device=None,
        follow: str | int = "largest",
        box_smoothing: float = 0.5,
        max_gap: int = 5,
        detector_scale: float | None = None,
        detect_every: int = DEFAULT_DETECT_EVERY,
        queue_size: int | None = None,
        face_workers: int | None = None,
        compile: bool = False,
        mixed_precision: str = "auto",
        encoder: Encoder | None = None,
    ):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if face_workers is not None and face_workers < 1:
            raise ConfigError(f"face_workers must be >= 1, got {face_workers}")
        if mixed_precision not in ("auto", "bf16", "no"):
            raise ConfigError(f"mixed_precision must be 'auto', 'bf16' or 'no', got {mixed_precision!r}")
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.image_processor = image_processor
        self.detector = make_detector(detector, scale=detector_scale)
        self.landmark_predictor = LandmarkPredictor() if self.detector is not None else None
        warn_if_crop_differs(image_processor)
        self.batch_size = batch_size
        self.follow = follow
        self.box_smoothing = box_smoothing
        self.max_gap = max_gap
        self.detect_every = check_detect_every(detect_every)
        self.queue_size = queue_size or batch_size
        self.face_workers = face_workers or default_face_workers()
        self.autocast = self._use_bf16_autocast(mixed_precision)
        if encoder is not None and compile:
            raise ConfigError("compile applies to the PyTorch encoder; it cannot compile a given encoder")
        self.encoder = encoder if encoder is not None else TorchEncoder(self.model, self.autocast, compile)
        self.channels_last = getattr(self.encoder, "channels_last", False)

    def _use_bf16_autocast(self, mixed_precision: str) -> bool:
        on_gpu = self.device.type == "cuda"
        if mixed_precision == "bf16" and not on_gpu:
            raise ConfigError("mixed_precision='bf16' needs a CUDA device; use 'auto' or 'no' on the CPU")
        if mixed_precision == "no" or not on_gpu:
            return False
        return self.dtype == torch.float32 and torch.cuda.is_bf16_supported()

    # -- encoding ------------------------------------------------------------------------------------------------

    def _crop(self, frame: VideoFrame, box) -> np.ndarray:
        return self.image_processor.preprocess_arrays([frame.image], [box])[0]

    def _needs_finding(self, frame: VideoFrame) -> bool:
        """A frame without its own landmarks, in a labeller with a detector (else: whole-frame crop)."""
        return frame.box is None and self.detector is not None

    def _face_records(self, chunk: list[VideoFrame], follower: FaceFollower | None, pool, clock: StageClock) -> list:
        """Follow the face and place its landmarks (in order, the detections on the pool), crop (in parallel)."""
        run = pool.map if pool is not None else map
        with clock.time("faces"):
            for frame in chunk:
                _check_rgb(frame)
            finding = [frame.image for frame in chunk if self._needs_finding(frame)]
            followed = iter(follower.follow(finding, pool, lookahead=2 * self.face_workers) if finding else [])
            located = [next(followed) if self._needs_finding(frame) else _given_face(frame) for frame in chunk]
        with clock.time("crop"):
            with_face = [(frame, box) for frame, (box, _, found) in zip(chunk, located) if found]
            crops = iter(list(run(self._crop, [f for f, _ in with_face], [b for _, b in with_face])))
        records = []
        for frame, (box, points, found) in zip(chunk, located):
            if found and box is None:
                box = (0.0, 0.0, float(frame.image.shape[1]), float(frame.image.shape[0]))
            pixels = next(crops) if found else None
            records.append(
                _FrameRecord(frame.index, frame.timestamp, frame.name, box if found else None, points, pixels)
            )
        return records

    def _follower(self) -> FaceFollower | None:
        if self.detector is None:
            return None
        tracker = FaceTracker(
            self.follow,
            smoothing=0.0,
            max_gap=self.max_gap,
            start_score=getattr(self.detector, "start_score", -math.inf),
        )
        smoother = LandmarkSmoother(self.box_smoothing)
        return FaceFollower(self.detector, self.landmark_predictor, tracker, smoother, self.detect_every)

    def _find_faces_into(self, frames: queue.Queue, out: queue.Queue, stop: threading.Event, clock: StageClock):
        """Stage 2 (own thread): face boxes and crops for each chunk of decoded frames, in frame order."""
        follower = self._follower()
        try:
            with self._face_pool() as pool:
                ended = False
                while not ended and not stop.is_set():
                    chunk, ended = _take_chunk(frames, self.batch_size, stop)
                    records = self._face_records(chunk, follower, pool, clock)
                    # Drop this chunk's frames and crops before waiting for the next chunk: memory stays bounded.
                    del chunk
                    while records:
                        if not _put(out, records.pop(0), stop):
                            return
            _put(out, _END, stop)
        except BaseException as err:  # handed on to the caller's thread, which re-raises it
            _put(out, err, stop)

    @contextmanager
    def _face_pool(self):
        """The face workers (None for one worker); OpenCV's own threads stay at 1 while they run."""
        if self.face_workers == 1:
            yield None
            return
        with opencv_threads(1), ThreadPoolExecutor(self.face_workers, thread_name_prefix="mtclar-faces") as pool:
            yield pool

    def find_faces(self, frames: list[VideoFrame], clock: StageClock | None = None) -> list[_FrameRecord]:
        """The face stage alone on frames held in memory (box + crop per frame); benchmarks time it with `clock`."""
        follower = self._follower()
        clock = clock or StageClock()
        records = []
        with self._face_pool() as pool:
            for start in range(0, len(frames), self.batch_size):
                records += self._face_records(frames[start : start + self.batch_size], follower, pool, clock)
        return records

    def embed_crops(self, pixels: list[np.ndarray]) -> torch.Tensor:
        """Embeddings (B, D) float32 on the CPU of face crops (3, S, S) from the image processor."""
        return self.encoder(np.stack(pixels))

    def _start_stages(self, frames: Iterator[VideoFrame], stop: threading.Event, clock: StageClock) -> tuple:
        """Start the decode and face threads; returns (queue of face records, threads)."""
        decoded: queue.Queue = queue.Queue(maxsize=self.batch_size)
        records: queue.Queue = queue.Queue(maxsize=self.queue_size)
        threads = [
            threading.Thread(target=_decode_into, args=(frames, decoded, stop, clock), daemon=True),
            threading.Thread(target=self._find_faces_into, args=(decoded, records, stop, clock), daemon=True),
        ]
        for thread in threads:
            thread.start()
        return records, threads

    def encode(
        self,
        source,
        fps: float = DEFAULT_FOLDER_FPS,
        annotation=None,
        progress: bool = False,
        description: str | None = None,
    ) -> EncodedVideo:
        """Embed every frame of `source` once.

        `source`: a video file, a frame folder (AFEW-VA style; its JSON landmarks give the boxes), or an
        iterable of `VideoFrame`s / RGB uint8 arrays (timestamps `index / fps`).
        Decoding, face finding and encoding run at the same time (see the module docstring); at most
        about 2 x `batch_size` decoded frames and `queue_size` + 2 x `batch_size` crops are alive at once,
        whatever the length of the video. `EncodedVideo.profile` holds each stage's busy seconds.
        """
        from tqdm.auto import tqdm

        started = time.perf_counter()
        if isinstance(source, str | Path):
            total = count_frames(source)
            frames = iter_frames(source, fps=fps, annotation=annotation)
            name = str(source)
        else:
            total, frames, name = None, _as_video_frames(source, fps), "<frames>"
        stop, clock = threading.Event(), StageClock()
        records, threads = self._start_stages(frames, stop, clock)
        timestamps, boxes, found, names, landmarks = [], [], [], [], []
        chunks, pending, pending_rows = [], [], []
        bar = tqdm(total=total, desc=description or Path(name).name, unit="frame", disable=not progress, leave=False)
        try:
            while True:
                with clock.time("wait_for_faces"):
                    item = records.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                timestamps.append(item.timestamp)
                names.append(item.name)
                found.append(item.pixels is not None)
                boxes.append(item.box if item.box is not None else (np.nan,) * 4)
                landmarks.append(item.landmarks if item.landmarks is not None else _NO_LANDMARKS)
                if item.pixels is not None:
                    pending.append(item.pixels)
                    pending_rows.append(len(timestamps) - 1)
                if len(pending) >= self.batch_size:
                    with clock.time("encode"):
                        chunks.append((pending_rows, self.embed_crops(pending)))
                    pending, pending_rows = [], []
                bar.update(1)
            if pending:
                with clock.time("encode"):
                    chunks.append((pending_rows, self.embed_crops(pending)))
        finally:
            stop.set()
            bar.close()
            for thread in threads:
                thread.join(timeout=5)
        if not timestamps:
            raise InputFileError(name, "no frames could be decoded")
        embeddings = torch.zeros(len(timestamps), self._embedding_size(chunks))
        for rows, values in chunks:
            embeddings[rows] = values
        seconds = time.perf_counter() - started
        return EncodedVideo(
            embeddings=embeddings,
            timestamps=np.asarray(timestamps, dtype=np.float64),
            face_found=np.asarray(found, dtype=bool),
            boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            landmarks=np.asarray(landmarks, dtype=np.float64).reshape(-1, NUM_LANDMARKS, 2),
            source=name,
            frame_names=names if any(n is not None for n in names) else None,
            encode_seconds=seconds,
            profile={**clock.seconds, "total": seconds},
        )

    def _embedding_size(self, chunks) -> int:
        if chunks:
            return chunks[0][1].shape[1]
        return int(getattr(self.model.config, "embedding_size", 0))

    # -- labelling -----------------------------------------------------------------------------------------------

    def label(self, encoded: EncodedVideo, support: dict[int, tuple[float, float]], anchor: str | None = None, **options):
        """`label_encoded` with this labeller's model: one row per frame labelled from `support`."""
        return label_encoded(self.model, encoded, support, anchor=anchor, **options)

    def label_without_support(self, encoded: EncodedVideo, landmarks: bool = False):
        """`label_encoded_without_support` with this labeller's model."""
        return label_encoded_without_support(self.model, encoded, landmarks=landmarks)

    def label_video(self, source, support, anchor: str | None = None, progress: bool = False, **label_kwargs):
        """`encode` then `label` in one call."""
        return self.label(self.encode(source, progress=progress), support, anchor=anchor, **label_kwargs)


def label_encoded(
    model,
    encoded: EncodedVideo,
    support: dict[int, tuple[float, float]],
    anchor: str | None = None,
    drop_faceless_support: bool = True,
    max_anchors: int | None = None,
    time_scale: float = 2.0,
    similarity_temperature: float = 0.1,
    strict: bool = False,
    landmarks: bool = False,
):
    """One row per frame (pandas DataFrame, columns `OUTPUT_COLUMNS`) labelled from `support`.

    `support` maps 0-based frame index -> (valence, arousal) in the model's label range; those frames output exactly
    these labels. `anchor` is `auto` (the default, None) or a mode the model offers (`available_modes`).
    A support frame without a face keeps its label in the output but is not used as an anchor (the
    other anchors label the video), with a warning naming it; `strict=True` (or
    `drop_faceless_support=False`) raises `LabelError` instead. A video with no face at all gives NaN
    for every predicted frame, with a warning. `landmarks=True` adds the 68 landmarks the crop was cut
    around (`LANDMARK_COLUMNS`: lm0_x, lm0_y, ..., lm67_y; NaN where there are none).

    `table.attrs["labelling"]` says how the labels were made: the mode, what `auto` chose and its
    estimated RMSE (None with fewer than 3 anchors), and the support frames used as anchors.
    """
    anchor = check_mode(model, anchor)
    if not support:
        raise LabelError(f"{encoded.source}: the support set is empty: label at least one frame")
    valence, arousal = np.full(encoded.num_frames, np.nan), np.full(encoded.num_frames, np.nan)
    uncertainty = np.where(encoded.face_found, 0.0, np.nan)
    choice, usable = None, {}
    if not encoded.face_found.any():
        logger.warning("%s: no face found in any frame; every predicted label is NaN", encoded.source)
        check_support(support, encoded.face_found, encoded.source, drop_faceless=True, label_range=label_range(model))
    else:
        usable = usable_support(model, encoded, support, drop_faceless_support and not strict)
        queries = np.flatnonzero(encoded.face_found & ~np.isin(np.arange(encoded.num_frames), list(support)))
        anchors = anchors_from_support(encoded, usable)
        options = dict(max_anchors=max_anchors, time_scale=time_scale, similarity_temperature=similarity_temperature)
        query_embeddings, query_times = encoded.embeddings[queries], encoded.timestamps[queries]
        if anchor == AUTO_MODE and len(queries):
            from .auto import predict_auto

            valence[queries], arousal[queries], choice = predict_auto(
                model, query_embeddings, query_times, anchors, **options
            )
        else:
            valence[queries], arousal[queries] = predict_from_anchors(
                model, query_embeddings, query_times, anchors, mode=anchor, **options
            )
        uncertainty[queries] = anchor_disagreement(model, query_embeddings, query_times, anchors)
    is_support = np.zeros(encoded.num_frames, dtype=bool)
    for frame, (v, a) in support.items():
        valence[frame], arousal[frame], is_support[frame] = v, a, True
    table = output_table(encoded, valence, arousal, is_support, landmarks, uncertainty)
    table.attrs["labelling"] = {
        "anchor_mode": anchor,
        "auto": None if choice is None else choice.to_dict(),
        "anchors": sorted(int(frame) for frame in usable),
    }
    return table

def usable_support(model, encoded: EncodedVideo, support: dict, drop_faceless: bool) -> dict:
    """The support frames that can anchor (they have a face, labels in the model's range); a warning or an error
    for the others."""
    usable, dropped = check_support(support, encoded.face_found, encoded.source, drop_faceless, label_range(model))
    if dropped and not usable:
        raise LabelError(
            f"{encoded.source}: no face found in support frame(s) {', '.join(str(f) for f in dropped[:5])}: "
            "no labelled frame with a face is left to label from"
        )
    if dropped:
        logger.warning(
            "%s: support frame(s) %s have no face: labelled from the other anchors (--strict stops instead)",
            encoded.source,
            ", ".join(str(frame) for frame in dropped),
        )
    return usable

def label_encoded_without_support(model, encoded: EncodedVideo, landmarks: bool = False):
    """The SL head's own valence and arousal for every frame with a face, clipped to the label range: no
    support set. The table (columns as `label`'s) has a `method` column saying so (`NO_SUPPORT_METHOD`)."""
    if SINGLE_IMAGE_MODES[0] not in available_modes(model):
        raise ConfigError("labelling without support needs a model with an SL head (MT-CLAR+SL or converted EmoNet)")
    valence, arousal = np.full(encoded.num_frames, np.nan), np.full(encoded.num_frames, np.nan)
    faces = np.flatnonzero(encoded.face_found)
    if len(faces):
        low, high = label_range(model)
        predicted = single_image_affect(model, encoded.embeddings[faces])
        valence[faces], arousal[faces] = (np.clip(values, low, high) for values in predicted)
    no_support = np.zeros(encoded.num_frames, dtype=bool)
    table = output_table(encoded, valence, arousal, no_support, landmarks, np.full(encoded.num_frames, np.nan))
    table["method"] = np.where(encoded.face_found, NO_SUPPORT_METHOD, "")
    return table

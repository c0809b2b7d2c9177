"""Frames in and out: PyAV video streams and AFEW-VA style frame folders, one frame at a time.

Nothing here holds a whole video: `iter_frames` yields `VideoFrame`s as they are decoded, so the
labeller's memory stays bounded by its batch and queue sizes whatever the length of the video.
Timestamps are the decoder's own presentation times (variable frame rate is kept as it is);
frame folders get `index / fps`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..image_processing_mtclar import landmark_boxes
from ..io_utils import atomic_path

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".gif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_FOLDER_FPS = 25.0  # AFEW-VA clips come from films at 25 frames per second
# Frames larger than this are refused before decoding: Pillow's own decompression-bomb limit (about 89.5
# megapixels, 12x an 8K UHD frame), applied to video frames too. One such RGB frame already takes 268 MB.
MAX_FRAME_PIXELS = 89_478_485

# Encoder name -> private options that keep the encoder quiet (x265 prints its settings otherwise).
ENCODER_OPTIONS = {"libx265": {"x265-params": "log-level=error"}}


@dataclass
class VideoFrame:
    """One decoded frame: RGB uint8 pixels (H, W, 3), its 0-based decode index and time in seconds.

    `landmarks` (68, 2) and their `box` (x, y, w, h) are set when the source already knows where the face
    is (AFEW-VA landmarks): the crop is then cut around them, with no detector; `name` is the file stem
    for frame folders.
    """

    index: int
    timestamp: float
    image: np.ndarray
    name: str | None = None
    box: tuple[float, float, float, float] | None = None
    landmarks: np.ndarray | None = None


@dataclass
class VideoInfo:
    """What the container says about a video, read without decoding it (counts may be estimates)."""

    path: str
    num_frames: int | None
    fps: float | None
    width: int
    height: int
    duration: float | None
    codec: str


def is_video_file(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_video_files(folder) -> list[Path]:
    """Video files of a folder in name order (hidden files left out)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_video_file(p) and not p.name.startswith("."))


def list_frame_files(folder) -> list[Path]:
    """Image files of a frame folder in name order (00000.png, 00001.png, ...)."""
    return sorted(
        p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def is_frame_folder(folder) -> bool:
    """A folder of image frames (one clip), as opposed to a folder of videos (a batch)."""
    return bool(list_frame_files(folder))


def _open_container(path):
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise InputFileError(path, f"cannot open as a video: {err}") from None
    if not container.streams.video:
        container.close()
        raise InputFileError(path, "has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # FFmpeg has no decoder for the stream's codec tag
        container.close()
        raise InputFileError(path, "unsupported video codec (FFmpeg has no decoder for it)")
    try:
        _check_frame_size(path, stream.codec_context.width, stream.codec_context.height)
    except InputFileError:
        container.close()
        raise
    return container


def probe_video(path) -> VideoInfo:
    """Frame count, rate and size from the container header (no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "video file not found")
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        num_frames = stream.frames or None
        if num_frames is None and duration and fps:
            num_frames = int(round(duration * fps))
        return VideoInfo(
            path=str(path),
            num_frames=num_frames,
            fps=fps,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            duration=duration,
            codec=stream.codec_context.name,
        )
    finally:
        container.close()


def iter_video_frames(path) -> Iterator[VideoFrame]:
    """Decode a video file frame by frame with PyAV, keeping each frame's own presentation time."""
    for index, timestamp, frame in _decoded_frames(path):
        yield VideoFrame(index=index, timestamp=timestamp, image=frame.to_ndarray(format="rgb24"))


def _decoded_frames(path) -> Iterator[tuple[int, float, object]]:
    """(decode index, presentation time in seconds, PyAV frame) for every frame of a video file.

    The one place that turns the decoder's times into frame timestamps, so that the labeller and the
    label formats (`frame_timestamps`) number and time frames identically.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "video file not found")
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads inside FFmpeg; our own thread stays free
        fallback_rate = float(stream.average_rate) if stream.average_rate else DEFAULT_FOLDER_FPS
        index = 0
        previous_time = -math.inf
        try:
            for frame in container.decode(stream):
                timestamp = frame.time
                if timestamp is None:  # raw streams without pts: fall back to the nominal rate
                    timestamp = index / fallback_rate
                # Keep timestamps strictly increasing even if a broken file repeats a pts.
                timestamp = max(float(timestamp), previous_time + 1e-6) if index else float(timestamp)
                previous_time = timestamp
                yield index, timestamp, frame
                index += 1
        except av.error.FFmpegError as err:
            if index == 0:
                raise InputFileError(path, f"cannot decode video: {err}") from None
            # A truncated file: keep what decoded, say where it stopped.
            logger.warning("%s: decoding stopped after %d frames: %s", path, index, err)
        if index == 0:
            raise InputFileError(path, "the video stream holds no frames")
    finally:
        container.close()


def frame_timestamps(source, fps: float = DEFAULT_FOLDER_FPS) -> np.ndarray:
    """Every frame's time in seconds, numbered as the labeller numbers them (decoded, not converted to RGB).

    A frame folder's frames are `index / fps` apart, as in `iter_frame_folder`.
    """
    source = Path(source)
    if source.is_dir():
        count = len(list_frame_files(source))
        if not count:
            raise InputFileError(source, f"no image frames ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        return np.arange(count) / fps
    if not source.exists():
        raise InputFileError(source, "no such video file or frame folder")
    return np.array([timestamp for _, timestamp, _ in _decoded_frames(source)], dtype=np.float64)


def read_image_rgb(path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3); grayscale, RGBA, palette, CMYK and 16-bit are converted.

    16-bit images keep their brightness (divided by 257), so the frames of one clip stay comparable.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            _check_frame_size(path, *image.size)  # on the header, before any pixel is decoded
            if image.mode.startswith("I"):  # I;16, I;16B, I;16L, I (32-bit integer)
                array = np.asarray(image, dtype=np.float64)
                array = np.clip(array / 257.0, 0, 255).astype(np.uint8)
                return np.repeat(array[..., None], 3, axis=-1)
            return np.asarray(image.convert("RGB"))
    except InputFileError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        # Pillow reports broken chunks as OSError, SyntaxError or ValueError depending on the format.
        raise InputFileError(path, f"cannot read image: {err}") from None


def _check_frame_size(path, width: int, height: int) -> None:
    if width * height > MAX_FRAME_PIXELS:
        raise InputFileError(path, f"frame size {width}x{height} is above the limit of {MAX_FRAME_PIXELS:,} pixels")


def find_afew_annotation(folder) -> Path | None:
    """The AFEW-VA JSON of a clip folder (`<clip>/<clip>.json`, or the only JSON there)."""
    folder = Path(folder)
    named = folder / f"{folder.name}.json"
    if named.is_file():
        return named
    candidates = sorted(folder.glob("*.json"))
    return candidates[0] if len(candidates) == 1 else None


def read_afew_annotation(path) -> dict:
    """Read an AFEW-VA clip JSON: `{"actor": str, "frames": {name: {"valence", "arousal", "landmarks"}}}`.

    Valence and arousal are returned in [-1, 1]: AFEW-VA stores tenths (integers in [-10, 10]), always divided
    by 10 as the dataset reader does (`mtclar_hf.data.afew_va.afew_label`); landmarks as (68, 2) float arrays,
    or None when absent.
    """
    from ..data.afew_va import afew_label

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"cannot read AFEW-VA annotation JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise InputFileError(path, 'not an AFEW-VA annotation (expected an object with a "frames" mapping)')
    frames = {}
    for name, entry in data["frames"].items():
        if not isinstance(entry, dict) or "valence" not in entry or "arousal" not in entry:
            raise InputFileError(path, f"frame {name!r} has no valence/arousal")
        valence = afew_label(entry["valence"], path, name, "valence")
        arousal = afew_label(entry["arousal"], path, name, "arousal")
        landmarks = entry.get("landmarks")
        if landmarks is not None:
            landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
        frames[str(name)] = {"valence": valence, "arousal": arousal, "landmarks": landmarks}
    return {"actor": str(data.get("actor", "")), "video_id": str(data.get("video_id", path.stem)), "frames": frames}


def box_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float, float] | None:
    """The tight (x, y, w, h) box around one face's 68 landmarks (None when they frame nothing); the image
    processor adds its own margin."""
    box = landmark_boxes(np.asarray(landmarks, dtype=np.float64).reshape(1, -1, 2))[0]
    return None if np.isnan(box).any() else tuple(float(v) for v in box)


def iter_frame_folder(folder, fps: float = DEFAULT_FOLDER_FPS, annotation=None) -> Iterator[VideoFrame]:
    """Frames of an AFEW-VA style folder in name order, with boxes from the annotation's landmarks.

    `annotation` is a path to the clip JSON, an already read annotation dict, or None to look for
    `<folder>/<folder>.json` (its landmarks give the face box when present).
    """
    folder = Path(folder)
    files = list_frame_files(folder)
    if not files:
        raise InputFileError(folder, f"no image frames ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    if annotation is None:
        found = find_afew_annotation(folder)
        annotation = read_afew_annotation(found) if found else None
    elif not isinstance(annotation, dict):
        annotation = read_afew_annotation(annotation)
    entries = annotation["frames"] if annotation else {}
    for index, file in enumerate(files):
        entry = entries.get(file.stem)
        image = read_image_rgb(file)
        box = points = None
        if entry is not None and entry.get("landmarks") is not None:
            box = plausible_box(box_from_landmarks(entry["landmarks"]), image.shape, file)
            points = entry["landmarks"] if box is not None else None
        yield VideoFrame(index=index, timestamp=index / fps, image=image, name=file.stem, box=box, landmarks=points)


def plausible_box(box, image_shape, where) -> tuple[float, float, float, float] | None:
    """`box` if it could frame a face in this image; None (find the face another way) when it lies outside the
    image or is more than 4 times its size: broken landmarks, which would also make the crop arbitrarily slow."""
    if box is None:
        return None
    x, y, w, h = box
    height, width = image_shape[:2]
    if x + w <= 0 or y + h <= 0 or x >= width or y >= height or w > 4 * width or h > 4 * height:
        logger.warning("%s: landmark box %s does not fit the %dx%d frame; ignored", where, box, width, height)
        return None
    return box


def check_unique_stems(folder, files: list[Path], consequence: str) -> None:
    """One line naming the videos of `folder` that share a name but not an extension, and what that breaks."""
    stems = [file.stem for file in files]
    clashing = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashing:
        raise InputFileError(folder, f"videos {', '.join(clashing)} exist with several extensions; {consequence}")


def iter_frames(source, fps: float = DEFAULT_FOLDER_FPS, annotation=None) -> Iterator[VideoFrame]:
    """Frames of a video file or a frame folder, decoded lazily, one `VideoFrame` at a time."""
    source = Path(source)
    if source.is_dir():
        return iter_frame_folder(source, fps=fps, annotation=annotation)
    if not source.exists():
        raise InputFileError(source, "no such video file or frame folder")
    return iter_video_frames(source)


def count_frames(source) -> int | None:
    """Number of frames for a progress bar: exact for folders, the container's estimate for videos."""
    source = Path(source)
    if source.is_dir():
        return len(list_frame_files(source))
    try:
        return probe_video(source).num_frames
    except InputFileError:
        return None


def _even(size: int) -> int:
    return size + (size % 2)


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row/column when a side is odd."""
    height, width = image.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return image
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def write_video(
    frames: Iterable[np.ndarray],
    path,
    fps: float = 25.0,
    codec: str = "libx264",
    timestamps: Iterable[float] | None = None,
    crf: int | None = None,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) to `path` with PyAV (yuv420p), atomically.

    `timestamps` (seconds, increasing) writes a variable-frame-rate video with exactly those
    presentation times; otherwise frames are `1 / fps` apart. Odd frame sizes are padded by one
    pixel. The container format follows the extension (.mp4, .mkv, .webm, ...).
    """
    import av

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    # Constant rate: one tick per frame. Variable rate: millisecond ticks carry the given times.
    time_base = Fraction(1, 1000) if timestamps is not None else 1 / rate
    times = iter(timestamps) if timestamps is not None else None
    options = dict(ENCODER_OPTIONS.get(codec, {}))
    if crf is not None:
        options["crf"] = str(crf)
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), mode="w")
        try:
            stream = None
            for number, image in enumerate(frames):
                image = _pad_to_even(np.ascontiguousarray(np.asarray(image, dtype=np.uint8)))
                if image.ndim != 3 or image.shape[2] != 3:
                    raise ValueError(f"write_video: frame {number} has shape {image.shape}, expected (H, W, 3)")
                if stream is None:
                    stream = container.add_stream(codec, rate=rate, options=options)
                    stream.width, stream.height = _even(image.shape[1]), _even(image.shape[0])
                    stream.pix_fmt = "yuv420p"
                    stream.codec_context.time_base = time_base
                    stream.time_base = time_base
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = int(round(next(times) / time_base)) if times is not None else number
                frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is None:
                raise ValueError("write_video: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return path

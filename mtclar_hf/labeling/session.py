"""One annotator's session on one video, whatever the front end: the upload checked and encoded once (with a
small preview of every frame for browsing), the models shared by every session, and the support table turned
into suggestions and labels.

The demo (`demo/app.py`) calls these and turns their results into widgets and messages.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError, LabelError
from .examples import ExampleClip, example_with_digest
from .tables import DEFAULT_LABEL_RANGE

DEFAULT_MODEL = "outputs/quickstart/model"  # what `mtclar quickstart` trains
MAX_FRAMES = 4500  # 3 minutes at 25 fps: longer videos belong to `mtclar label`
MAX_LOADED_MODELS = 3  # models kept in memory; the least recently used one goes first
PREVIEW_SIDE = 320  # frames are kept as JPEGs of at most this size for browsing
ENCODE_BATCH_SIZE = 32


# ---------------------------------------------------------------------------------------------------------------
# Uploads and their encoding


def upload_error(path: Path, problem: str) -> InputFileError:
    """An error naming the uploaded file only: the server's cache folder is nobody's business."""
    return InputFileError(path.name, problem.replace(str(path), path.name).replace(str(path.parent), "..."))


def check_upload(path) -> Path:
    """Refuse anything that is not a readable video file, with a message naming the file (not our cache path)."""
    from .video import VIDEO_EXTENSIONS, probe_video

    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputFileError(path.name, f"not a video file (accepted: {', '.join(VIDEO_EXTENSIONS)})")
    try:
        info = probe_video(path)
    except InputFileError as err:
        raise upload_error(path, err.problem) from None
    if info.num_frames is not None and info.num_frames > MAX_FRAMES:
        raise InputFileError(
            path.name, f"has about {info.num_frames} frames; the demo labels at most {MAX_FRAMES} (use `mtclar label` for long videos)"
        )
    return path


@dataclass
class VideoState:
    """One session's encoded video: what browsing, suggesting and labelling work on."""

    key: tuple  # what the encoding depends on (video, face crops or not, model): a change means encoding again
    name: str
    encoded: object  # mtclar_hf.labeling.EncodedVideo
    previews: list = field(repr=False)  # JPEG bytes per frame, at most PREVIEW_SIDE pixels
    preview_scale: float = 1.0  # preview pixels per frame pixel
    example: ExampleClip | None = None
    results: object = None  # the last labels (a DataFrame of `FewShotVideoLabeler.label`)
    digest: str = ""  # SHA-256 of the video file: the key its support labels are kept under
    path: str = ""  # the original upload, which the labeller reads
    label_range: tuple[float, float] = DEFAULT_LABEL_RANGE  # the model's: where sliders, plots and checks stop

    @property
    def num_frames(self) -> int:
        return self.encoded.num_frames


class PreviewCollector:
    """Keeps a small JPEG of every frame while the labeller decodes the video, and reports the progress."""

    def __init__(self, report, total: int | None):
        self.previews: list[bytes] = []
        self.scale = 1.0  # preview pixels per frame pixel
        self.report = report
        self.total = total

    def frames(self, path: Path) -> Iterator:
        from .video import iter_frames

        step = max(1, (self.total or 100) // 50)
        for frame in iter_frames(path):
            if frame.index >= MAX_FRAMES:
                raise InputFileError(path.name, f"has more than {MAX_FRAMES} frames (use `mtclar label` for long videos)")
            self.previews.append(self.preview_jpeg(frame.image))
            if frame.index % step == 0:
                self.report((frame.index, self.total), desc="Encoding frames", unit="frames")
            yield frame

    def preview_jpeg(self, pixels: np.ndarray) -> bytes:
        from PIL import Image

        image = Image.fromarray(pixels)
        self.scale = min(1.0, PREVIEW_SIDE / max(image.size))
        if self.scale < 1.0:
            size = (max(1, round(image.width * self.scale)), max(1, round(image.height * self.scale)))
            image = image.resize(size, Image.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()


def encode_video(video, model, processor, key: tuple, examples=(), face_crops: bool = False, encoder=None,
                 report=None) -> VideoState:
    """Check the upload, then decode and embed every frame once (the expensive step: labelling reuses the
    embeddings), keeping a preview of each. An example clip is known by its hash: its frames are face crops and
    its true labels come along. Faces are found with the default detector unless `face_crops`."""
    from ..io_utils import sha256_of
    from .anchors import label_range
    from .faces import DEFAULT_DETECTOR
    from .labeler import FewShotVideoLabeler
    from .video import count_frames

    if not video:
        raise LabelError("no video yet: upload one or pick an example clip")
    path = check_upload(video)
    digest = sha256_of([path])
    example = example_with_digest(list(examples), digest)
    # SynthAffect faces are drawn, so a face detector may miss them: example clips are face crops.
    detector = None if face_crops or example is not None else DEFAULT_DETECTOR
    labeler = FewShotVideoLabeler(model, processor, detector=detector, batch_size=ENCODE_BATCH_SIZE, encoder=encoder)
    collector = PreviewCollector(report or (lambda *args, **kwargs: None), count_frames(path))
    try:
        encoded = labeler.encode(collector.frames(path))
    except InputFileError as err:
        raise upload_error(path, err.problem) from None
    return VideoState(key=key, name=path.name, encoded=encoded, previews=collector.previews,
                      preview_scale=collector.scale, example=example, digest=digest, path=str(path),
                      label_range=label_range(model))


# ---------------------------------------------------------------------------------------------------------------
# Models shared by every session


class ModelCache:
    """Models (with their processor, and for the ONNX backend their encoder) loaded once and shared by every
    session, inference only; at most `MAX_LOADED_MODELS`, the least recently used going first."""

    def __init__(self, default_model: str = DEFAULT_MODEL, backend: str = "torch"):
        self.default_model = str(default_model)
        self.backend = backend
        self._models: OrderedDict[str, tuple] = OrderedDict()
        self._encoders: dict = {}
        self._lock = threading.Lock()

    def resolve(self, name: str | None, progress=None) -> str:
        """The model folder or Hub id to load; the quickstart model is trained on first use when possible."""
        name = (name or "").strip() or self.default_model
        if name != DEFAULT_MODEL or Path(name).exists():
            return name
        from ..quickstart import ensure_quickstart_model

        if progress is not None:
            progress(0.0, desc="Training the quickstart model (first use only)")
        return str(ensure_quickstart_model(progress=progress))

    def load(self, name: str | None, progress=None) -> tuple:
        """(model, processor) of `name` (the default model when empty)."""
        from .loading import load_model_and_processor

        with self._lock:
            resolved = self.resolve(name, progress)
            if resolved not in self._models:
                if progress is not None:
                    progress(0.0, desc=f"Loading model {resolved}")
                self._models[resolved] = load_model_and_processor(resolved)
                while len(self._models) > MAX_LOADED_MODELS:
                    self._models.popitem(last=False)
            self._models.move_to_end(resolved)
            return self._models[resolved]

    def encoder(self, name: str | None):
        """The encoder of the backend: None for PyTorch (the model's own), else onnxruntime on the model's ONNX
        export (exported on first use), kept for the cache's lifetime."""
        if self.backend != "onnx":
            return None
        from ..export.onnx_export import onnx_encoder_for

        with self._lock:
            resolved = self.resolve(name)
            if resolved not in self._encoders:
                self._encoders[resolved] = onnx_encoder_for(resolved)
            return self._encoders[resolved]


# ---------------------------------------------------------------------------------------------------------------
# From the support table to suggestions and labels


def known_label(state: VideoState | None, frame: int, rows: dict) -> tuple[float, float] | None:
    """The label of `frame`: the user's (from the table's `rows`), else the last prediction, else None."""
    if frame in rows and all(math.isfinite(v) for v in rows[frame]):
        return rows[frame]
    if state is not None and state.results is not None and frame < len(state.results):
        predicted = state.results.iloc[frame]
        if math.isfinite(predicted["valence"]) and math.isfinite(predicted["arousal"]):
            return round(float(predicted["valence"]), 2), round(float(predicted["arousal"]), 2)
    return None


def suggested_rows(model, state: VideoState, strategy: str, budget: float, listed: dict) -> dict:
    """The table's rows (`listed`, labels kept) plus the frames `strategy` would have the user label; `active` adds
    the next frames given the labels listed. New frames get NaN labels, or the truth for an example clip."""
    from .support import select_support, suggest_frames

    encoded = state.encoded
    known = {f: v for f, v in listed.items() if all(math.isfinite(x) for x in v)}
    if strategy == "active":
        if not known:
            raise LabelError("label a frame or more first: `active` suggests the next frames given your labels")
        frames = sorted(set(listed) | set(suggest_frames(model, encoded, budget=budget, support=known)))
    else:
        frames = select_support(strategy, encoded.face_found, budget=budget, k=max(1, round(1.0 / budget)),
                                embeddings=encoded.embeddings.numpy())
    if not frames:
        raise LabelError("no frame with a face to suggest")
    rows = {}
    for frame in frames:
        if frame in known:
            rows[frame] = known[frame]
        elif state.example is not None:
            rows[frame] = (float(state.example.valence[frame]), float(state.example.arousal[frame]))
        else:
            rows[frame] = (math.nan, math.nan)
    return rows


def label_from_table(model, state: VideoState, table, anchor: str | None):
    """(labels of every frame, frames listed without labels) from the support table the user edited, checked
    against the model's label range. The labels carry the landmarks the crops were cut around (the AFEW-VA
    export needs them)."""
    from .anchors import label_range
    from .labeler import label_encoded
    from .support import split_support_table
    from .workspace import skipped_note

    support, unlabelled = split_support_table(table, state.num_frames, label_range(model))
    if not support and unlabelled:
        raise LabelError(f"no support frame has labels yet ({skipped_note(unlabelled)}): set valence and "
                         "arousal for at least one")
    if not support:
        raise LabelError("the support table is empty: label at least one frame (or press *Suggest frames*)")
    return label_encoded(model, state.encoded, support, anchor=anchor or "auto", landmarks=True), unlabelled

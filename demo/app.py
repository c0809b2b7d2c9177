"""MT-CLAR few-shot video labelling in the browser: a Gradio Blocks app.

Upload a face video (or pick a SynthAffect example clip), label a few frames with valence and arousal
in the frame browser (sliders, or a click on the valence-arousal circle), press **Label**: every other
frame gets its labels from the labelled ones through the MT-CLAR model (`FewShotVideoLabeler`). The
result is a timeline plot, a valence-arousal scatter, a summary and a CSV. Correct a frame by browsing
to it, moving the sliders and pressing "Set label": it becomes one more support frame (an anchor) for
the next run.

Run it with `mtclar demo [--model M] [--port P] [--host H]` or `python demo/app.py`. The app works
offline: analytics and telemetry are off, there is never a share link, uploads are limited in size and
to video files, the model-heavy events share a small concurrency limit in Gradio's queue, and every
file the app writes lives in one temporary folder that is removed when the app closes.

This file holds only the page: its layout, the wiring of its events, and the turning of library results into
widgets and messages. Encoding, suggesting and labelling are `mtclar_hf.labeling.session`, the support table
`mtclar_hf.labeling.support` and `workspace`, the figures `mtclar_hf.labeling.tables`, the example clips
`mtclar_hf.labeling.examples`. It is longer than other modules because the whole page, and the handler of
each of its widgets, is kept in one place where the wiring can be read.
"""

import os

# Before gradio / huggingface_hub are imported: nothing may leave the machine.
for _key, _value in {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MPLBACKEND": "Agg",
}.items():
    os.environ.setdefault(_key, _value)

import contextlib  # noqa: E402
import contextvars  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
import weakref  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from mtclar_hf.errors import InputFileError, MTCLARError  # noqa: E402
from mtclar_hf.io_utils import atomic_path  # noqa: E402
from mtclar_hf.labeling.anchors import ALL_MODES, AUTO_MODE  # noqa: E402
from mtclar_hf.labeling.examples import EXAMPLE_SEEDS, write_example_clips  # noqa: E402
from mtclar_hf.labeling.formats import FORMATS  # noqa: E402
from mtclar_hf.labeling.session import (  # noqa: E402
    DEFAULT_MODEL,
    ModelCache,
    VideoState,
    encode_video,
    known_label,
    label_from_table,
    suggested_rows,
    upload_error,
)
from mtclar_hf.labeling.support import STRATEGIES  # noqa: E402
from mtclar_hf.labeling.tables import DEFAULT_LABEL_RANGE, circumplex_figure, timeline_figure  # noqa: E402
from mtclar_hf.labeling.workspace import (  # noqa: E402
    TABLE_COLUMNS,
    SupportStore,
    empty_support_table,
    provenance_note,
    rows_from_table,
    skipped_note,
    table_from_rows,
)

# gradio 6.31's queue code trips a pandas 3 deprecation warning on every event; it is harmless.
with contextlib.suppress(AttributeError):
    warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)

MAX_FILE_SIZE = "50mb"  # per upload, enforced by Gradio before our code sees the file
MODEL_CONCURRENCY = 2  # events that run the encoder at once (they share the CPU / GPU)
PREVIEW_MIN_SIDE = 256  # tiny frames (SynthAffect examples are 96 px) are shown enlarged
# "active": the next frames to label given the labels already in the table (what `mtclar suggest --support` does).
# Every strategy but "given" (frames from a support CSV): here the support table itself is that list.
STRATEGY_CHOICES = tuple(strategy for strategy in STRATEGIES if strategy != "given")
CIRCLE_SIZE = 240
CIRCLE_RADIUS = 100


# ---------------------------------------------------------------------------------------------------------------
# Small pure helpers (unit-tested directly)


def circle_to_valence_arousal(x: float, y: float, label_range=DEFAULT_LABEL_RANGE) -> tuple[float, float]:
    """A click on the valence-arousal circle image (pixels) -> (valence, arousal) in the label range, 2 decimals."""
    low, high = label_range
    centre, middle, half = CIRCLE_SIZE / 2, (low + high) / 2, (high - low) / 2
    valence = float(np.clip(middle + (x - centre) / CIRCLE_RADIUS * half, low, high))
    arousal = float(np.clip(middle + (centre - y) / CIRCLE_RADIUS * half, low, high))
    return round(valence, 2), round(arousal, 2)


def draw_va_circle(valence: float | None = None, arousal: float | None = None, label_range=DEFAULT_LABEL_RANGE) -> Image.Image:
    """The circumplex: valence left to right, arousal bottom to top (the circle spans the label range), with the
    current label as a dot."""
    image = Image.new("RGB", (CIRCLE_SIZE, CIRCLE_SIZE), "white")
    draw = ImageDraw.Draw(image)
    c, r = CIRCLE_SIZE / 2, CIRCLE_RADIUS
    draw.ellipse((c - r, c - r, c + r, c + r), outline=(120, 120, 120), width=2, fill=(246, 248, 252))
    draw.line((c - r - 8, c, c + r + 8, c), fill=(160, 160, 160))
    draw.line((c, c - r - 8, c, c + r + 8), fill=(160, 160, 160))
    grey = (90, 90, 90)
    draw.text((c + r - 30, c + 3), "valence", fill=grey)
    draw.text((c + 4, c - r - 14), "arousal", fill=grey)
    for text, (x, y) in {"excited": (0.45, 0.75), "tense": (-0.85, 0.75), "sad": (-0.75, -0.8), "calm": (0.55, -0.8)}.items():
        draw.text((c + x * r, c - y * r), text, fill=(150, 150, 170))
    if valence is not None and arousal is not None and math.isfinite(valence) and math.isfinite(arousal):
        low, high = label_range
        middle, half = (low + high) / 2, (high - low) / 2
        x, y = c + (float(valence) - middle) / half * r, c - (float(arousal) - middle) / half * r
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=(220, 40, 40), outline="white", width=2)
    return image


def thread_safe_progress(progress):
    """A callable that updates `progress` from any thread.

    gr.Progress finds its event through context variables, which the labeller's decoding thread does not
    inherit: run each update inside a copy of the handler's context (one thread at a time).
    """
    context = contextvars.copy_context()
    lock = threading.Lock()

    def report(*args, **kwargs):
        with lock, contextlib.suppress(Exception):  # a progress bar must never break the labelling
            context.run(progress, *args, **kwargs)

    return report


@contextlib.contextmanager
def user_errors():
    """Turn our one-line user errors into gr.Error, which the page shows as a message, not a traceback."""
    try:
        yield
    except MTCLARError as err:
        raise gr.Error(str(err), print_exception=False) from None


_NOTES: contextvars.ContextVar = contextvars.ContextVar("mtclar_demo_notes", default=None)


def note(text: str) -> None:
    """A message for the message area under the buttons (and a toast), shown with the handler's outputs."""
    notes = _NOTES.get()
    if notes is not None:
        notes.append(text)
    gr.Info(text)


def reporting(handler, num_outputs: int):
    """`handler` with one more output, the message area: its notes, or the error that stopped it.

    A gr.Error alone is a toast that fades after seconds; the message stays until the next action, whose
    own message (empty when it has nothing to say) replaces it.
    """

    @functools.wraps(handler)  # Gradio reads the handler's own signature (progress, request, select data)
    def run(*args, **kwargs):
        notes = []
        token = _NOTES.set(notes)
        try:
            result = handler(*args, **kwargs)
        except gr.Error as err:
            gr.Warning(str(err.message))
            return (*[gr.skip()] * num_outputs, f"**Error:** {err.message}")
        finally:
            _NOTES.reset(token)
        result = result if num_outputs != 1 else (result,)
        return (*result, "\n\n".join(notes))

    return run


# ---------------------------------------------------------------------------------------------------------------
# The app


class LabellingDemo:
    """The app's handlers and its resources (temp folder, example clips, loaded models).

    Handlers are plain methods so tests call them directly; `build()` wires them into a gr.Blocks.
    """

    def __init__(self, default_model: str = DEFAULT_MODEL, workdir=None, example_seeds=EXAMPLE_SEEDS, backend="torch",
                 store=None):
        self.models = ModelCache(default_model, backend)
        self.workdir = Path(tempfile.mkdtemp(prefix="mtclar-demo-", dir=workdir))
        # Removes the folder when the app is closed, garbage-collected, or at interpreter exit.
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.workdir), True)
        self.examples = write_example_clips(self.workdir / "examples", seeds=example_seeds)
        # Support labels per video: in `store` (kept after the server stops) or in the temporary folder (kept
        # across page reloads while the server runs).
        self.store = SupportStore(Path(store) if store else self.workdir / "support-store")
        self.blocks = None

    # -- resources ---------------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        self._finalizer()

    def close(self) -> None:
        """Stop the server (if launched) and delete every file the app wrote."""
        if self.blocks is not None:
            self.blocks.close(verbose=False)
        self.cleanup()

    def session_dir(self, request: gr.Request | None) -> Path:
        session = getattr(request, "session_hash", None) or uuid.uuid4().hex
        folder = self.workdir / "sessions" / "".join(ch for ch in str(session) if ch.isalnum())[:64]
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def end_session(self, request: gr.Request):
        """Gradio calls this when a browser tab goes away: drop that session's files."""
        session = getattr(request, "session_hash", None)
        if session:
            shutil.rmtree(self.workdir / "sessions" / "".join(ch for ch in str(session) if ch.isalnum())[:64], ignore_errors=True)

    # -- encoding ----------------------------------------------------------------------------------------------

    def encode(self, video, crops: bool, model_name: str, progress) -> VideoState:
        """Decode and embed every frame once (the expensive step); later labelling reuses the embeddings."""
        report = thread_safe_progress(progress)
        model, processor = self.models.load(model_name, report)
        return encode_video(video, model, processor, self.state_key(video, crops, model_name), examples=self.examples,
                            face_crops=crops, encoder=self.models.encoder(model_name), report=report)

    def state_key(self, video, crops, model_name) -> tuple:
        """What an encoding depends on: a change of any of these means encoding again."""
        return (str(video), bool(crops), (model_name or "").strip() or self.models.default_model)

    def ensure_encoded(self, state: VideoState | None, video, crops, model_name, progress) -> VideoState:
        if state is not None and state.key == self.state_key(video, crops, model_name):
            return state
        return self.encode(video, crops, model_name, progress)

    def video_status(self, state: VideoState) -> str:
        encoded = state.encoded
        faces = int(encoded.face_found.sum())
        duration = float(encoded.timestamps[-1]) if encoded.num_frames else 0.0
        lines = [f"**{state.name}**: {encoded.num_frames} frames, {duration:.1f} s, face found in {faces} "
                 f"({faces / max(encoded.num_frames, 1):.0%}); encoded in {encoded.encode_seconds:.1f} s."]
        if state.example is not None:
            lines.append("SynthAffect example: its true labels are known, so *Suggest frames* fills them in "
                         "and the summary scores the prediction.")
        if faces == 0:
            lines.append("No face was found in any frame. If the video shows only a face, tick "
                         "*frames are already face crops* to use whole frames.")
        else:
            lines.append("Browse the frames, set a few labels (or *Suggest frames*), then press **Label**.")
        return "\n\n".join(lines)

    # -- handlers ----------------------------------------------------------------------------------------------

    def load_video(self, video, crops, model_name, progress=gr.Progress()):
        """Upload / example / option change: encode the video and open the frame browser on frame 0."""
        if not video:
            return None, gr.Slider(value=0, maximum=1, interactive=False), None, "Upload a video or pick an example clip.", empty_support_table()
        with user_errors():
            state = self.encode(video, crops, model_name, progress)
        kept = self.store.load(state.digest)
        status = self.video_status(state)
        if kept:
            status += f"\n\n{len(kept)} support frame(s) restored from your earlier work on this video."
        return (
            state,
            gr.Slider(value=0, minimum=0, maximum=max(state.num_frames - 1, 1), step=1, interactive=True),
            self.render_preview(state, 0),
            status,
            table_from_rows(kept),
        )

    def render_preview(self, state: VideoState | None, frame: int) -> Image.Image | None:
        """Frame `frame` with the face box drawn, enlarged when tiny, captioned with its time."""
        if state is None or not state.previews:
            return None
        frame = int(np.clip(int(frame or 0), 0, state.num_frames - 1))
        image = Image.open(io.BytesIO(state.previews[frame])).convert("RGB")
        scale = state.preview_scale
        enlarge = max(1.0, PREVIEW_MIN_SIDE / max(image.size))
        if enlarge > 1.0:
            image = image.resize((round(image.width * enlarge), round(image.height * enlarge)), Image.BILINEAR)
            scale *= enlarge
        draw = ImageDraw.Draw(image)
        encoded = state.encoded
        if encoded.face_found[frame]:
            x, y, w, h = (float(v) * scale for v in encoded.boxes[frame])
            if w < image.width - 2 or h < image.height - 2:  # a whole-frame "box" (face crops) is not drawn
                draw.rectangle((x, y, x + w, y + h), outline=(40, 220, 80), width=3)
            caption = f"frame {frame}  t={encoded.timestamps[frame]:.2f}s"
        else:
            caption = f"frame {frame}  t={encoded.timestamps[frame]:.2f}s  no face"
        draw.rectangle((0, image.height - 16, image.width, image.height), fill=(0, 0, 0))
        draw.text((4, image.height - 14), caption, fill=(255, 255, 255))
        return image

    def show_frame(self, state, frame, table):
        """Slider moved: show the frame; put its label (yours, else the last prediction) in the sliders.

        A frame with no label yet leaves the sliders alone (gr.skip), so a label being entered is not reset.
        """
        frame = int(frame or 0)
        known = known_label(state, frame, rows_from_table(table))
        if known is None:
            return self.render_preview(state, frame), gr.skip(), gr.skip(), gr.skip()
        valence, arousal = known
        return self.render_preview(state, frame), valence, arousal, self.circle(state, valence, arousal)

    @staticmethod
    def circle(state, valence, arousal) -> Image.Image:
        """The valence-arousal circle with the label as a dot, spanning the loaded model's label range."""
        return draw_va_circle(valence, arousal, _label_range(state))

    def pick_on_circle(self, state, evt: gr.SelectData):
        """A click on the valence-arousal circle sets both sliders."""
        x, y = evt.index[:2]
        valence, arousal = circle_to_valence_arousal(float(x), float(y), _label_range(state))
        return valence, arousal, self.circle(state, valence, arousal)

    @staticmethod
    def label_sliders(state):
        """The valence and arousal sliders span the loaded model's label range."""
        low, high = _label_range(state)
        return gr.Slider(minimum=low, maximum=high), gr.Slider(minimum=low, maximum=high)

    def set_label(self, state, table, frame, valence, arousal):
        """Add (or correct) the label of the frame shown: it becomes an anchor for the next "Label"."""
        if state is None:
            raise gr.Error("Load a video first (upload one or pick an example clip) and wait until it is encoded.", print_exception=False)
        frame = int(frame or 0)
        if not 0 <= frame < state.num_frames:
            raise gr.Error(f"frame {frame} is not in this video (0-{state.num_frames - 1})", print_exception=False)
        if not state.encoded.face_found[frame]:
            raise gr.Error(f"no face was found in frame {frame}: pick a frame with a face box", print_exception=False)
        rows = rows_from_table(table)
        rows[frame] = (float(valence), float(arousal))
        return table_from_rows(rows)

    def remove_label(self, table, frame):
        rows = rows_from_table(table)
        rows.pop(int(frame or 0), None)
        return table_from_rows(rows)

    def suggest(self, state, strategy, budget, table):
        """Fill the table with the frames a strategy would have you label (labels you already set are kept);
        `active` adds the next frames to label given the labels in the table."""
        if state is None:
            raise gr.Error("Load a video first (upload one or pick an example clip) and wait until it is encoded.", print_exception=False)
        with user_errors():
            model, _ = self.models.load(state.key[2])
            rows = suggested_rows(model, state, strategy, float(budget), rows_from_table(table))
        if state.example is None and any(math.isnan(v[0]) for v in rows.values()):
            gr.Info(f"{len(rows)} frames suggested: browse to each (select its row) and set its valence and arousal.")
        return table_from_rows(rows)

    def jump_to_row(self, table, evt: gr.SelectData):
        """Selecting a table row moves the frame browser to that frame."""
        rows = sorted(rows_from_table(table))
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not rows or row is None or not 0 <= int(row) < len(rows):
            return gr.Slider()
        return gr.Slider(value=rows[int(row)])

    def label(self, video, crops, model_name, table, anchor, state, request: gr.Request = None, progress=gr.Progress()):
        """Run the labeller from the support table; plots, summary and CSV. Encodes first if needed."""
        with user_errors():
            state = self.ensure_encoded(state, video, crops, model_name, progress)
            progress(0.9, desc="Labelling every frame from the support frames")
            model, _ = self.models.load(model_name)
            results, unlabelled = label_from_table(model, state, table, anchor)
        state.results = results
        csv_path = self.session_dir(request) / f"{Path(state.name).stem}_labels.csv"
        with atomic_path(csv_path) as tmp:
            results.to_csv(tmp, index=False)
        summary = summary_markdown(results, state)
        if unlabelled:
            note(skipped_note(unlabelled).capitalize() + ".")
            summary += f"\n\n{skipped_note(unlabelled).capitalize()}."
        return state, *figures(results, state), summary, str(csv_path)

    # -- work kept, files in and out ---------------------------------------------------------------------------

    def keep_support(self, state, table) -> None:
        """Every change of the table is saved under the video's hash: a reload (or a new upload) finds it."""
        if state is not None and state.digest:
            self.store.save(state.digest, rows_from_table(table), state.name)

    def model_banner(self, model_name) -> str:
        """What the loaded model knows: a warning for a synthetic-only model, a neutral note when unknown."""
        with contextlib.suppress(MTCLARError, gr.Error):
            model, _ = self.models.load(model_name)
            kind, text = provenance_note(model)
            return f"⚠️ **{text}**" if kind == "synthetic" else text
        return ""

    def anchor_choices(self, model_name, current):
        """`auto` and the modes the loaded model offers (a converted EmoNet has no trained pair heads)."""
        from mtclar_hf.labeling.anchors import available_modes

        with contextlib.suppress(MTCLARError, gr.Error):
            model, _ = self.models.load(model_name)
            choices = [AUTO_MODE, *available_modes(model)]
            return gr.Dropdown(choices=choices, value=current if current in choices else AUTO_MODE)
        return gr.Dropdown()

    def browser_preview(self, state):
        """A VP9/WebM copy beside the original when the browser may not play the upload (HEVC, ProRes, ...)."""
        from mtclar_hf.labeling.workspace import needs_browser_preview, write_browser_preview

        if state is None or not state.path or state.example is not None or not needs_browser_preview(state.path):
            return gr.Video(value=None, visible=False)
        out = self.workdir / "previews" / f"{state.digest}.webm"
        if not out.is_file():
            with user_errors():
                write_browser_preview(state.path, out)
        return gr.Video(value=str(out), visible=True)

    def download_support(self, state, table, request: gr.Request = None) -> str:
        from mtclar_hf.labeling.support import write_support_csv

        name = Path(state.name).stem if state is not None else "video"
        return str(write_support_csv(rows_from_table(table), self.session_dir(request) / f"{name}_support.csv"))

    def upload_support(self, state, upload):
        """A support CSV (one downloaded earlier, or `mtclar suggest`'s filled in) replaces the table."""
        from mtclar_hf.labeling.support import read_support_rows

        if state is None:
            raise gr.Error("Load the video first, then upload its support CSV.", print_exception=False)
        with user_errors():
            try:
                rows = read_support_rows(upload, state.num_frames, state.label_range)
            except InputFileError as err:
                raise upload_error(Path(upload), err.problem) from None
        note(f"{len(rows)} support frame(s) read from {Path(upload).name}.")
        return table_from_rows(rows)

    def upload_labels(self, state, upload):
        """A labels CSV downloaded earlier for this video brings its plots and summary back (after a reload)."""
        from mtclar_hf.labeling.workspace import read_labels_upload

        if state is None:
            raise gr.Error("Load the video first, then upload its labels CSV.", print_exception=False)
        with user_errors():
            results = read_labels_upload(upload, state.num_frames)
        state.results = results
        note(f"Labels of {len(results)} frames read from {Path(upload).name}.")
        return state, *figures(results, state), summary_markdown(results, state)

    def export_labels(self, state, fmt, request: gr.Request = None) -> list[str]:
        """The last labels in an annotation tool's format (NOVA, ELAN, AFEW-VA, time-based CSV)."""
        from mtclar_hf.labeling.formats import export_labels, labels_from_table

        if state is None or state.results is None:
            raise gr.Error("Press Label first: the export writes the labels of every frame.", print_exception=False)
        stem = Path(state.name).stem
        names = {"nova": stem, "elan": f"{stem}.eaf", "afew-va": f"{stem}.json", "seconds": f"{stem}_seconds.csv"}
        folder = self.session_dir(request) / "export"
        with user_errors():
            written = export_labels(labels_from_table(state.results, source=state.name), fmt, folder / names[fmt])
        return [str(path) for path in written]

    def import_labels(self, state, fmt, uploads, table):
        """Labels made in another tool become support rows (mapped through this video's frame times)."""
        from mtclar_hf.labeling.formats import import_labels

        if state is None:
            raise gr.Error("Load the video first, then import its labels.", print_exception=False)
        uploads = [uploads] if isinstance(uploads, str | Path) else list(uploads or [])
        if not uploads:
            raise gr.Error("Choose the label file(s) to import.", print_exception=False)
        folder = Path(tempfile.mkdtemp(prefix="import-", dir=self.workdir))  # a NOVA pair must sit side by side
        for upload in uploads:
            shutil.copy(upload, folder / Path(upload).name)
        first = folder / Path(uploads[0]).name
        try:
            with user_errors():
                imported = import_labels(first, fmt, state.encoded.timestamps, frame_names=state.encoded.frame_names)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows = rows_from_table(table)
        rows.update(imported)
        note(f"{len(imported)} support frame(s) imported from {Path(uploads[0]).name} ({fmt}).")
        return table_from_rows(rows)

    def step_queue(self, queue, video, step: int):
        """The previous / next video of the queue (uploaded together); loading it restores its own labels."""
        paths = [str(p) for p in (queue or [])]
        if not paths:
            raise gr.Error("The queue is empty: add videos to it first.", print_exception=False)
        names = [Path(p).name for p in paths]
        current = names.index(Path(video).name) if video and Path(video).name in names else -1
        target = min(max(current + step, 0), len(paths) - 1) if current >= 0 else 0
        note(f"Video {target + 1} of {len(paths)} in the queue: {names[target]}.")
        return paths[target]

    # -- layout ------------------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        with gr.Blocks(title="MT-CLAR few-shot video labelling", delete_cache=(900, 3600)) as blocks:
            gr.Markdown(
                "## MT-CLAR: label a face video from a few frames\n"
                "1. Upload a video or pick an example. 2. Browse frames and set valence / arousal for a few of "
                "them (or *Suggest frames*). 3. Press **Label**. Correct any frame and label again: it becomes an anchor."
            )
            banner = gr.Markdown(elem_id="banner")
            state = gr.State(None)
            with gr.Row():
                with gr.Column(scale=1):
                    video = gr.Video(label="Face video", sources=["upload"], elem_id="video", height=240)
                    playable = gr.Video(label="Preview your browser can play (frame numbers are the original's)",
                                        visible=False, interactive=False, elem_id="playable", height=240)
                    with gr.Accordion("Queue of videos", open=False):
                        queue = gr.File(label="Videos to work through", file_count="multiple", file_types=["video"],
                                        elem_id="queue")
                        with gr.Row():
                            previous_button = gr.Button("Previous video", size="sm", elem_id="queue-previous")
                            next_button = gr.Button("Next video", size="sm", elem_id="queue-next")
                    crops = gr.Checkbox(
                        label="frames are already face crops, cut around the 68 landmarks with the model's margin "
                        "(no face detection)",
                        value=False,
                        elem_id="crops",
                    )
                    model_name = gr.Textbox(label="Model (folder or cached Hub id)", value=self.models.default_model, elem_id="model")
                    gr.Examples(
                        examples=[[str(e.path), True] for e in self.examples],
                        inputs=[video, crops],
                        label="SynthAffect example clips (true labels known)",
                    )
                    status = gr.Markdown("Upload a video or pick an example clip.", elem_id="status")
                with gr.Column(scale=1):
                    preview = gr.Image(label="Frame (face box in green)", interactive=False, elem_id="preview", height=280,
                                       buttons=["fullscreen"])
                    frame = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False, elem_id="frame")
                    with gr.Row():
                        valence = gr.Slider(*DEFAULT_LABEL_RANGE, value=0, step=0.01, label="Valence", elem_id="valence")
                        arousal = gr.Slider(*DEFAULT_LABEL_RANGE, value=0, step=0.01, label="Arousal", elem_id="arousal")
                    with gr.Row():
                        set_button = gr.Button("Set label for this frame", elem_id="set-label", variant="secondary")
                        remove_button = gr.Button("Remove this frame", elem_id="remove-label", size="sm")
                with gr.Column(scale=1):
                    gr.Markdown("Click the circle to set valence (left to right) and arousal (bottom to top):")
                    circle = gr.Image(value=draw_va_circle(0, 0), show_label=False, interactive=False, elem_id="va-circle",
                                      height=CIRCLE_SIZE, width=CIRCLE_SIZE, buttons=[], container=False)
                    table = gr.Dataframe(value=empty_support_table(), headers=TABLE_COLUMNS, datatype=["number", "number", "number"],
                                         label="Support frames (your labels)", interactive=True, elem_id="support", max_height=260)
                    with gr.Row():
                        strategy = gr.Dropdown(list(STRATEGY_CHOICES), value="diverse", label="Strategy", elem_id="strategy")
                        budget = gr.Slider(0.02, 0.5, value=0.06, step=0.01, label="Budget (fraction)", elem_id="budget")
                    suggest_button = gr.Button("Suggest frames", elem_id="suggest")
                    with gr.Row():
                        support_download_button = gr.Button("Save support CSV", size="sm", elem_id="support-save")
                        support_upload = gr.UploadButton("Load support CSV", file_types=[".csv"], size="sm",
                                                         elem_id="support-load")
                    support_file = gr.File(label="Support table (CSV)", interactive=False, elem_id="support-file")
            with gr.Row():
                anchor = gr.Dropdown(list(ALL_MODES), value=AUTO_MODE, label="Anchor mode", elem_id="anchor", scale=1)
                label_button = gr.Button("Label", variant="primary", elem_id="label", scale=2)
            message = gr.Markdown(elem_id="message")
            with gr.Row():
                timeline = gr.Plot(label="Valence and arousal over time", elem_id="timeline", format="png")
                scatter = gr.Plot(label="Valence-arousal", elem_id="scatter", format="png")
            with gr.Row():
                summary = gr.Markdown(elem_id="summary")
                csv_file = gr.File(label="Labels (CSV)", elem_id="csv", interactive=False)
                labels_upload = gr.UploadButton("Load labels CSV", file_types=[".csv"], size="sm", elem_id="labels-load")
            with gr.Row():
                label_format = gr.Dropdown(list(FORMATS), value="elan", scale=1,
                                           label="Annotation format (docs/FORMATS.md)", elem_id="label-format")
                export_button = gr.Button("Export labels", elem_id="export", scale=1)
                import_upload = gr.UploadButton("Import labels as support frames", file_count="multiple", scale=1,
                                                elem_id="import")
                exported = gr.File(label="Exported labels", file_count="multiple", interactive=False,
                                   elem_id="exported", scale=2)

            heavy = {"concurrency_id": "model", "concurrency_limit": MODEL_CONCURRENCY}
            video_inputs = [video, crops, model_name]
            load_outputs = [state, frame, preview, status, table]
            load = reporting(self.load_video, len(load_outputs))
            load_outputs = [*load_outputs, message]
            after_load = {"fn": self.model_banner, "inputs": model_name, "outputs": banner, "api_visibility": "private"}
            for loading in (
                video.change(load, video_inputs, load_outputs, api_name="load_video", **heavy),
                crops.input(load, video_inputs, load_outputs, api_visibility="private", **heavy),
                model_name.submit(load, video_inputs, load_outputs, api_visibility="private", **heavy),
            ):
                loading.then(**after_load).then(self.label_sliders, state, [valence, arousal], api_visibility="private").then(
                    self.browser_preview, state, playable, api_visibility="private"
                ).then(
                    self.anchor_choices, [model_name, anchor], anchor, api_visibility="private"
                )
            table.change(self.keep_support, [state, table], None, api_visibility="private", show_progress="hidden")
            frame.change(self.show_frame, [state, frame, table], [preview, valence, arousal, circle],
                         api_visibility="private", show_progress="hidden")
            valence.change(self.circle, [state, valence, arousal], circle, api_visibility="private", show_progress="hidden")
            arousal.change(self.circle, [state, valence, arousal], circle, api_visibility="private", show_progress="hidden")
            circle.select(self.pick_on_circle, state, [valence, arousal, circle], api_visibility="private")
            private = {"api_visibility": "private"}
            set_button.click(reporting(self.set_label, 1), [state, table, frame, valence, arousal], [table, message],
                             **private)
            remove_button.click(reporting(self.remove_label, 1), [table, frame], [table, message], **private)
            table.select(self.jump_to_row, table, frame, **private)
            suggest_button.click(reporting(self.suggest, 1), [state, strategy, budget, table], [table, message],
                                 api_name="suggest")
            label_button.click(
                reporting(self.label, 5),
                [video, crops, model_name, table, anchor, state],
                [state, timeline, scatter, summary, csv_file, message],
                api_name="label",
                **heavy,
            ).then(**after_load).then(lambda: gr.Dropdown(value="active"), None, strategy, **private)
            support_download_button.click(reporting(self.download_support, 1), [state, table], [support_file, message],
                                          **private)
            support_upload.upload(reporting(self.upload_support, 1), [state, support_upload], [table, message],
                                  **private)
            export_button.click(reporting(self.export_labels, 1), [state, label_format], [exported, message], **private)
            labels_upload.upload(reporting(self.upload_labels, 4), [state, labels_upload],
                                 [state, timeline, scatter, summary, message], **private)
            import_upload.upload(reporting(self.import_labels, 1), [state, label_format, import_upload, table],
                                 [table, message], **private)
            previous_button.click(reporting(functools.partial(self.step_queue, step=-1), 1), [queue, video],
                                  [video, message], **private)
            next_button.click(reporting(functools.partial(self.step_queue, step=1), 1), [queue, video],
                              [video, message], **private)
            blocks.unload(self.end_session)
        blocks.queue(default_concurrency_limit=4, max_size=32)
        self.blocks = blocks
        return blocks

    def launch(self, host: str = "127.0.0.1", port: int | None = None, **kwargs):
        """Start the server (never with a share link); extra keyword arguments go to `Blocks.launch`."""
        blocks = self.blocks or self.build()
        kwargs.pop("share", None)
        kwargs.setdefault("max_file_size", MAX_FILE_SIZE)
        kwargs.setdefault("theme", gr.themes.Soft())
        return blocks.launch(
            server_name=host,
            server_port=port,
            share=False,
            allowed_paths=[],  # serve nothing but Gradio's own cache (uploads and our outputs copied there)
            show_error=True,
            **kwargs,
        )


# ---------------------------------------------------------------------------------------------------------------
# Figures and summary


def figures(results: pd.DataFrame, state: VideoState) -> tuple:
    """The timeline (with the true labels dashed for an example clip) and the valence-arousal plane."""
    truth = None if state.example is None else {"valence": state.example.valence, "arousal": state.example.arousal}
    return (
        timeline_figure(results, truth=truth, label_range=state.label_range, size=(7.5, 4.0)),
        circumplex_figure(results, state.label_range),
    )


def _label_range(state: VideoState | None) -> tuple[float, float]:
    return state.label_range if state is not None else DEFAULT_LABEL_RANGE


def summary_markdown(results: pd.DataFrame, state: VideoState) -> str:
    """Frames, faces found, support fraction, the mode used and its estimated error; and the scores against the
    truth for example clips."""
    from mtclar_hf.labeling.auto import describe_auto
    from mtclar_hf.metrics import ccc, rmse

    frames = len(results)
    faces = int(results["face_found"].sum())
    support = int(results["is_support"].sum())
    labelling = results.attrs.get("labelling", {})
    lines = [
        f"**{frames}** frames, face found in **{faces}** ({faces / max(frames, 1):.0%}), "
        f"**{support}** support frames ({support / max(frames, 1):.1%} labelled by you), "
        + (f"anchor mode `{labelling['anchor_mode']}`." if labelling else "labels loaded from a file."),
    ]
    auto = labelling.get("auto")
    if auto and auto["estimated"]:
        estimated = auto["estimated"]
        lines.append(
            f"`auto` chose **{describe_auto(auto)}** on this video. Estimated error, from your own labels "
            f"(each left out in turn): RMSE valence **{estimated['valence_rmse']:.2f}**, arousal "
            f"**{estimated['arousal_rmse']:.2f}**."
        )
    elif auto:
        lines.append(f"`auto` used **{describe_auto(auto)}**: label 3 frames or more for an estimate of the error.")
    lines.append("Next: **Suggest frames** (strategy `active`) proposes the frames to label next, given your labels.")
    if state.example is not None:
        scored = results["face_found"].to_numpy() & ~results["is_support"].to_numpy()
        if scored.sum() >= 2:
            parts = []
            for column in ("valence", "arousal"):
                truth = getattr(state.example, column)[: frames][scored]
                predicted = results[column].to_numpy()[scored]
                parts.append(f"{column} CCC {ccc(truth, predicted):.2f}, RMSE {rmse(truth, predicted):.2f}")
            lines.append("Against the true SynthAffect labels (unlabelled frames): " + "; ".join(parts) + ".")
    return "\n\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Entry points


def _stop_on_sigterm() -> None:
    """`kill` (SIGTERM) ends the server like Ctrl-C does, so the temporary folder is still removed."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def main(model: str = DEFAULT_MODEL, host: str = "127.0.0.1", port: int | None = None, backend: str = "torch",
         workdir=None) -> int:
    """Serve until interrupted; the app's temporary folder is removed on the way out (`workdir`, the support
    labels kept per video, stays)."""
    app = LabellingDemo(default_model=model, backend=backend, store=workdir)
    # Gradio's own upload / output cache goes inside the app's folder too, so one removal cleans all.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(app.workdir / "gradio-cache"))
    print(f"mtclar demo: model {model} ({backend} backend); temporary files in {app.workdir} (removed on exit)", flush=True)
    print(f"mtclar demo: support labels kept per video in {app.store.folder}", flush=True)
    _stop_on_sigterm()
    try:
        app.build()
        app.launch(host=host, port=port)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--workdir", default=None)
    cli_args = parser.parse_args()
    raise SystemExit(main(cli_args.model, cli_args.host, cli_args.port, cli_args.backend, cli_args.workdir))

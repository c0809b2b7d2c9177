"""Bad inputs for the robustness table, each built in a test's tmp_path from a tiny model and a good clip.

A builder takes a :class:`Workspace` and returns the `mtclar` arguments plus the file the one-line error
must name. Inputs are made the way a user would meet them: PyAV writes the videos (or we damage a good
one), Pillow writes the images, plain text writes the CSV/JSON/YAML.

The module is longer than most because it holds every row of the robustness table, one builder each, so the
table in docs/RELIABILITY.md can be read against it.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REAL_FACE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real_faces" / "single_face.jpg"


@dataclass
class Workspace:
    tmp: Path
    model: Path
    video: Path  # 12 good face frames, h264 mp4, 25 fps
    frames: np.ndarray  # the same frames, (12, 64, 64, 3) uint8

    def path(self, name: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.path(name)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def support(self, rows: str = "0,0.2,0.3\n", name: str = "support.csv") -> Path:
        return self.write(name, "frame,valence,arousal\n" + rows)

    def label(self, source, *extra, support: Path | None = None, detect: bool = False, out: str | Path = "out.csv"):
        """`mtclar label` arguments; the support CSV defaults to frame 0 labelled (0.2, 0.3)."""
        support = support if support is not None else self.support()
        argv = ["label", str(source), "--model", str(self.model), "--support", str(support), "--quiet"]
        argv += ["--out", str(out if Path(out).is_absolute() else self.tmp / out)]
        return argv + ([] if detect else ["--no-detect"]) + list(extra)

    def copy_model(self, name: str = "model") -> Path:
        return Path(shutil.copytree(self.model, self.tmp / name))


# ----------------------------------------------------------------------------------------------- media makers


def write_raw_video(path: Path, codec: str, size: tuple[int, int], frames: list[np.ndarray], pix_fmt="yuv420p"):
    """A video written straight with PyAV (any codec, any size, possibly no frame at all)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        container.start_encoding()
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="gray" if image.ndim == 2 else "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_folder(ws: Workspace, name: str, images: list) -> Path:
    """An AFEW-VA style folder of 00000.png, 00001.png, ... (PIL images or arrays; .jpg for CMYK)."""
    from PIL import Image

    folder = ws.path(name)
    folder.mkdir(exist_ok=True)
    for index, image in enumerate(images):
        image = image if isinstance(image, Image.Image) else Image.fromarray(image)
        image.save(folder / f"{index:05d}.{'jpg' if image.mode == 'CMYK' else 'png'}")
    return folder


def afew_clip(ws: Workspace, clip_id="001", num_frames=6, frames=None) -> Path:
    """A raw AFEW-VA layout root/<clip>/<00000>.png + <clip>.json (integer labels, 68 landmarks)."""
    root = ws.path("afew")
    folder = frame_folder(ws, f"afew/{clip_id}", list(ws.frames[:num_frames]))
    ring = 32 + 20 * np.stack([np.cos(np.linspace(0, 6.28, 68)), np.sin(np.linspace(0, 6.28, 68))], axis=1)
    frames = frames or {
        f"{t:05d}": {"valence": t - 3, "arousal": 3 - t, "landmarks": ring.round(2).tolist()} for t in range(num_frames)
    }
    (folder / f"{clip_id}.json").write_text(json.dumps({"actor": "a", "video_id": clip_id, "frames": frames}))
    return root


def edit_afew_json(root: Path, edit, clip_id="001") -> Path:
    path = root / clip_id / f"{clip_id}.json"
    data = json.loads(path.read_text())
    edit(data["frames"])
    path.write_text(json.dumps(data))
    return path


def real_face() -> np.ndarray:
    """The shared real face photo, a third of its size (about 190 px)."""
    import pytest
    from PIL import Image

    if not REAL_FACE.exists():
        pytest.skip(f"shared real-face media not found at {REAL_FACE}")
    with Image.open(REAL_FACE) as image:
        return np.asarray(image.convert("RGB").resize((image.width // 3, image.height // 3)))


# ----------------------------------------------------------------------------------------------- videos


def empty_file(ws):
    return ws.label(ws.write("empty.mp4", b"")), "empty.mp4"


def text_named_mp4(ws):
    return ws.label(ws.write("notes.mp4", "these are my notes, not a video\n")), "notes.mp4"


def truncated_mp4(ws):
    """An mp4 cut in half: the index (moov atom, written last) is gone."""
    data = ws.video.read_bytes()
    return ws.label(ws.write("cut.mp4", data[: len(data) // 2])), "cut.mp4"


def unsupported_codec(ws):
    """The h264 sample entry renamed to an unknown fourcc: FFmpeg has no decoder for it."""
    data = ws.video.read_bytes().replace(b"avc1", b"zzzz")
    return ws.label(ws.write("alien.mp4", data)), "alien.mp4"


def zero_frame_video(ws):
    """An AVI whose video stream holds no frame."""
    path = write_raw_video(ws.path("nothing.avi"), "mpeg4", (64, 64), [])
    return ws.label(path), "nothing.avi"


def audio_only(ws):
    import av

    path = ws.path("speech.mp4")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return ws.label(path), "speech.mp4"


def huge_resolution_video(ws):
    """One 9500 x 9500 frame (90 megapixels, just above the limit), PNG-coded so it stays small on disk."""
    path = write_raw_video(ws.path("huge.mp4"), "png", (9500, 9500), [np.zeros((9500, 9500), np.uint8)], "gray")
    return ws.label(path), "huge.mp4"


def directory_named_mp4(ws):
    folder = ws.path("folder.mp4")
    folder.mkdir()
    return ws.label(folder), "folder.mp4"


# ----------------------------------------------------------------------------------------------- frame folders


def corrupt_png_in_folder(ws):
    folder = frame_folder(ws, "clip", list(ws.frames[:4]))
    (folder / "00002.png").write_bytes((folder / "00002.png").read_bytes()[:60])  # header kept, pixels cut
    return ws.label(folder), "00002.png"


def huge_png_in_folder(ws):
    folder = frame_folder(ws, "clip", [*ws.frames[:2], np.zeros((9500, 9500), np.uint8)])
    return ws.label(folder), "00002.png"


# ----------------------------------------------------------------------------------------------- AFEW-VA


def afew_missing_frames(ws):
    """The JSON labels frames 0-3 of 6: --strategy cannot pick its support from unlabelled frames."""
    root = afew_clip(ws)
    edit_afew_json(root, lambda frames: [frames.pop(name) for name in ("00004", "00005")])
    argv = ["label", str(root / "001"), "--model", str(ws.model), "--strategy", "every-k", "--k", "2"]
    return argv + ["--out", str(ws.tmp / "out.csv"), "--quiet"], "001"


def afew_missing_field(ws):
    root = afew_clip(ws)
    edit_afew_json(root, lambda frames: frames["00001"].pop("arousal"))
    return ["prepare", "afew-va", str(root), "--out", str(ws.tmp / "prepared")], "001.json"


def afew_label_out_of_range(ws):
    root = afew_clip(ws)
    edit_afew_json(root, lambda frames: frames["00002"].update(valence=15))
    return ["prepare", "afew-va", str(root), "--out", str(ws.tmp / "prepared")], "001.json"


def afew_label_nan(ws):
    root = afew_clip(ws)
    edit_afew_json(root, lambda frames: frames["00002"].update(arousal=float("nan")))  # json writes NaN
    return ["prepare", "afew-va", str(root), "--out", str(ws.tmp / "prepared")], "001.json"


def afew_json_truncated(ws):
    root = afew_clip(ws)
    path = root / "001" / "001.json"
    path.write_text(path.read_text()[:100])
    return ["prepare", "afew-va", str(root), "--out", str(ws.tmp / "prepared")], "001.json"


def afew_label_strategy_bad_json(ws):
    """`mtclar label` on a clip folder whose JSON lacks a label: the labeller's own reader refuses it."""
    root = afew_clip(ws)
    edit_afew_json(root, lambda frames: frames["00003"].pop("valence"))
    argv = ["label", str(root / "001"), "--model", str(ws.model), "--strategy", "every-k", "--k", "2"]
    return argv + ["--out", str(ws.tmp / "out.csv"), "--quiet"], "001.json"


# ----------------------------------------------------------------------------------------------- support CSVs


def support_out_of_range(ws):
    return ws.label(ws.video, support=ws.support("0,1.5,0.3\n")), "support.csv"


def support_nan(ws):
    return ws.label(ws.video, support=ws.support("0,nan,0.3\n")), "support.csv"


def support_inf(ws):
    return ws.label(ws.video, support=ws.support("0,0.2,inf\n")), "support.csv"


def support_not_a_number(ws):
    return ws.label(ws.video, support=ws.support("0,happy,0.3\n")), "support.csv"


def support_beyond_video(ws):
    return ws.label(ws.video, support=ws.support("0,0.2,0.3\n500,0.1,0.1\n")), "good.mp4"


def support_negative_frame(ws):
    return ws.label(ws.video, support=ws.support("-1,0.2,0.3\n")), "support.csv"


def support_duplicate(ws):
    return ws.label(ws.video, support=ws.support("3,0.2,0.3\n3,0.5,0.1\n")), "support.csv"


def support_empty_set(ws):
    return ws.label(ws.video, support=ws.support("")), "good.mp4"


def support_empty_file(ws):
    return ws.label(ws.video, support=ws.write("support.csv", "")), "support.csv"


def support_missing_column(ws):
    return ws.label(ws.video, support=ws.write("support.csv", "frame,valence\n0,0.2\n")), "support.csv"


def support_binary_garbage(ws):
    return ws.label(ws.video, support=ws.write("support.csv", bytes(range(256)) * 4)), "support.csv"


def support_frame_without_face(ws):
    """A clip whose frame 0 is a grey wall (no landmarks, the detector finds nothing): it cannot be an anchor."""
    root = afew_clip(ws)
    (root / "001" / "00000.png").write_bytes(_grey_png())
    edit_afew_json(root, lambda frames: frames["00000"].pop("landmarks"))
    return ws.label(root / "001", detect=True), "001"


def _grey_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def no_face_anywhere(ws):
    from mtclar_hf.labeling.video import write_video

    path = write_video([np.full((96, 96, 3), 128, np.uint8)] * 6, ws.path("wall.mp4"), fps=25)
    return ["suggest", str(path), "--model", str(ws.model), "--quiet", "--out", str(ws.tmp / "s.csv")], "wall.mp4"


# ----------------------------------------------------------------------------------------------- AffectNet, config


AFFECTNET_HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"


def affectnet_row_too_short(ws):
    root = ws.path("affectnet")
    root.mkdir()
    (root / "training.csv").write_text(AFFECTNET_HEADER + "1/a.jpg,0,0,10,10\n")
    (root / "validation.csv").write_text(AFFECTNET_HEADER)
    return ["prepare", "affectnet", str(root), "--out", str(ws.tmp / "prepared")], "training.csv, line 2"


def affectnet_valence_not_number(ws):
    root = ws.path("affectnet")
    root.mkdir()
    landmarks = ";".join(["1.0"] * 136)
    (root / "training.csv").write_text(AFFECTNET_HEADER + f"1/a.jpg,0,0,10,10,{landmarks},1,high,0.1\n")
    (root / "validation.csv").write_text(AFFECTNET_HEADER)
    return ["prepare", "affectnet", str(root), "--out", str(ws.tmp / "prepared")], "training.csv, line 2"


def config_unknown_key(ws):
    return ["train", "--config", str(ws.write("train.yaml", "optim:\n  lrr: 0.001\n"))], "train.yaml"


def config_wrong_type(ws):
    return ["train", "--config", str(ws.write("train.yaml", "training:\n  epochs: two\n"))], "train.yaml"


def config_not_yaml(ws):
    return ["train", "--config", str(ws.write("train.yaml", "training: [epochs: 2\n"))], "train.yaml"


def config_binary(ws):
    return ["train", "--config", str(ws.write("train.yaml", b"\xff\xfe\x00garbage\x80"))], "train.yaml"


def config_bad_override(ws):
    return ["train", "--config", str(ws.write("train.yaml", "seed: 1\n")), "--set", "optim.lr=fast"], "optim.lr"


# ----------------------------------------------------------------------------------------------- model folders


class RunsCode:
    """Unpickling this creates a marker file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def pickle_model(ws):
    model = ws.copy_model()
    (model / "model.safetensors").unlink()
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(RunsCode(ws.tmp / "PICKLE_RAN")))
    return ws.label(ws.video, out="out.csv") | _with_model(model), "pytorch_model.bin"


def config_does_not_match_weights(ws):
    model = ws.copy_model()
    config = json.loads((model / "config.json").read_text())
    config["embedding_size"] = 48
    (model / "config.json").write_text(json.dumps(config))
    return ws.label(ws.video) | _with_model(model), "model"


def sl_model_with_a_pair_mode(ws):
    """An MT-CLAR+SL folder (single-image heads only) asked for a mode that needs the pair heads."""
    from mtclar_hf import MTCLARForAffectPrediction
    from mtclar_hf.testing_utils import tiny_config

    model = ws.path("sl_model")
    MTCLARForAffectPrediction(tiny_config()).save_pretrained(model)
    return ws.label(ws.video, "--anchor", "fused") | _with_model(model), "sl_model"


def model_folder_without_weights(ws):
    model = ws.copy_model()
    (model / "model.safetensors").unlink()
    return ws.label(ws.video) | _with_model(model), "model.safetensors"


def model_folder_missing(ws):
    return ws.label(ws.video) | _with_model(ws.tmp / "no_such_model"), "no_such_model"


def model_config_not_json(ws):
    model = ws.copy_model()
    (model / "config.json").write_text("{ this is not json")
    return ws.label(ws.video) | _with_model(model), "config.json"


def _with_model(model: Path):
    return _Replace("--model", str(model))


class _Replace:
    """`argv | _Replace(option, value)` sets an option's value in an argument list."""

    def __init__(self, option, value):
        self.option, self.value = option, value

    def __ror__(self, argv: list[str]) -> list[str]:
        argv = list(argv)
        argv[argv.index(self.option) + 1] = self.value
        return argv


# ----------------------------------------------------------------------------------------------- outputs


def output_under_a_file(ws):
    """The output's parent is a regular file (chmod would not stop root: this does)."""
    blocker = ws.write("results", "a file, not a folder")
    return ws.label(ws.video, out=blocker / "labels.csv"), "labels.csv"


def output_in_proc(ws):
    return ws.label(ws.video, out=Path("/proc/mtclar-test/labels.csv")), "labels.csv"


def output_unknown_format(ws):
    return ws.label(ws.video, out="labels.txt"), "labels.txt"


def output_plot_under_a_file(ws):
    blocker = ws.write("plots", "a file")
    return ws.label(ws.video, "--plot", str(blocker / "p.png")), "p.png"


# Refused inputs: (builder, fragment of the problem the message must state). One row each.
REFUSED = [
    (empty_file, "cannot open as a video"),
    (text_named_mp4, "cannot open as a video"),
    (truncated_mp4, "cannot open as a video"),
    (unsupported_codec, "unsupported video codec"),
    (zero_frame_video, "holds no frames"),
    (audio_only, "has no video stream"),
    (huge_resolution_video, "above the limit"),
    (directory_named_mp4, "no video files"),
    (corrupt_png_in_folder, "cannot read image"),
    (huge_png_in_folder, "above the limit"),
    (afew_missing_frames, "does not label every frame"),
    (afew_missing_field, "missing field 'arousal'"),
    (afew_label_out_of_range, "outside [-10, 10]"),
    (afew_label_nan, "not a number"),
    (afew_json_truncated, "invalid JSON"),
    (afew_label_strategy_bad_json, "has no valence/arousal"),
    (support_out_of_range, "outside [-1, 1]"),
    (support_nan, "not finite"),
    (support_inf, "not finite"),
    (support_not_a_number, "is not a number"),
    (support_beyond_video, "past the last frame"),
    (support_negative_frame, "not a 0-based frame index"),
    (support_duplicate, "listed twice"),
    (support_empty_set, "support set is empty"),
    (support_empty_file, "empty support CSV"),
    (support_missing_column, "missing column(s) arousal"),
    (support_binary_garbage, "cannot parse CSV"),
    (support_frame_without_face, "no face found in support frame"),
    (no_face_anywhere, "no face found in any frame"),
    (affectnet_row_too_short, "expected 9 comma-separated fields"),
    (affectnet_valence_not_number, "valence 'high' is not a number"),
    (config_unknown_key, "unknown key optim.'lrr'"),
    (config_wrong_type, "must be an integer"),
    (config_not_yaml, "not valid YAML"),
    (config_binary, "not readable text"),
    (config_bad_override, "must be a number"),
    (pickle_model, "pickle weights refused"),
    (config_does_not_match_weights, "weights do not match config.json"),
    (sl_model_with_a_pair_mode, "anchor mode 'fused' is not available: the model has no pair heads"),
    (model_folder_without_weights, "no safetensors weights"),
    (model_folder_missing, "model folder not found"),
    (model_config_not_json, "not valid JSON"),
    (output_under_a_file, "results is a file, not a folder"),
    (output_in_proc, "cannot create output folder"),
    (output_unknown_format, "unknown format .txt"),
    (output_plot_under_a_file, "cannot create output folder"),
]


def touched_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()




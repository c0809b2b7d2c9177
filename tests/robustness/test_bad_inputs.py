"""Bad input, table-driven: every row is refused with one line naming the file and the problem, exit 1,
no traceback; the inputs that are odd but usable are labelled (a documented graceful result).

The table is docs/RELIABILITY.md's; a row added there belongs here too.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bad_inputs import REFUSED, frame_folder, real_face, touched_files

from mtclar_hf.cli import main
from mtclar_hf.errors import InputFileError, LabelError

MTCLAR = Path(sys.executable).with_name("mtclar")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error:" in line or "Traceback" in line]


@pytest.mark.parametrize(("build", "problem"), REFUSED, ids=[build.__name__ for build, _ in REFUSED])
def test_bad_input_is_refused_in_one_line(build, problem, workspace, capsys):
    argv, culprit = build(workspace)
    before = touched_files(workspace.tmp)
    code = main(argv)  # an exception escaping here (a traceback for the user) fails the test
    err = capsys.readouterr().err
    assert code == 1, err
    lines = error_lines(err)
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"mtclar {argv[0]}: error: "), line
    assert culprit in line and problem in line, line
    # Nothing half-written is left behind: a refused run creates no output file.
    created = touched_files(workspace.tmp) - before
    assert not [name for name in created if not name.startswith("hf_")], created
    assert not (workspace.tmp / "PICKLE_RAN").exists()  # the pickle row: its payload never ran


def test_the_real_command_prints_no_traceback(workspace):
    """One row again through the installed `mtclar` entry point, as a user runs it (the pickle one)."""
    from bad_inputs import pickle_model

    argv, culprit = pickle_model(workspace)
    result = subprocess.run([str(MTCLAR), *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(error_lines(result.stderr)) == 1 and culprit in result.stderr
    assert not (workspace.tmp / "PICKLE_RAN").exists()


# ----------------------------------------------------------------------------------------------- graceful


def label_table(workspace, argv, capsys) -> pd.DataFrame:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    return pd.read_csv(workspace.tmp / "out.csv")


def test_truncated_mkv_keeps_the_frames_before_the_cut(workspace, capsys):
    """Matroska has no index at the end: a cut file decodes up to the cut, with a warning."""
    from mtclar_hf.labeling.video import write_video

    frames = np.concatenate([workspace.frames] * 3)
    data = write_video(frames, workspace.path("whole.mkv"), fps=25).read_bytes()
    cut = workspace.write("cut.mkv", data[: len(data) * 7 // 10])
    table = label_table(workspace, workspace.label(cut), capsys)
    assert 0 < len(table) < len(frames)
    assert table.loc[0, "valence"] == pytest.approx(0.2)


def test_variable_frame_rate_keeps_each_frame_time(workspace, capsys):
    from mtclar_hf.labeling.video import write_video

    times = np.cumsum([0.0, 0.04, 0.1, 0.02, 0.3, 0.04, 0.04, 0.5, 0.04, 0.04, 0.04, 0.04])
    path = write_video(workspace.frames, workspace.path("vfr.mp4"), timestamps=times)
    table = label_table(workspace, workspace.label(path, support=workspace.support("0,0.2,0.3\n4,-0.5,0.1\n")), capsys)
    assert np.allclose(table["timestamp"], times, atol=1e-3)
    assert table.loc[4, "valence"] == pytest.approx(-0.5) and table["is_support"].sum() == 2


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "CMYK"])
def test_image_modes_in_a_frame_folder(mode, workspace, capsys):
    """Grayscale, RGBA, 16-bit and CMYK frames are converted, and give the labels their RGB twins give."""
    from PIL import Image

    rgb = [Image.fromarray(frame) for frame in workspace.frames[:4]]
    if mode == "I;16":  # 16-bit: the 8-bit values scaled by 257, as a 16-bit PNG stores them
        converted = [Image.fromarray(np.asarray(image.convert("L"), np.uint16) * 257) for image in rgb]
        twins = [image.convert("L") for image in rgb]
    else:
        converted = [image.convert(mode) for image in rgb]
        twins = [image.convert(mode).convert("RGB") for image in rgb]
    folder = frame_folder(workspace, "odd", converted)
    assert {Image.open(path).mode for path in folder.iterdir()} == {"I;16" if mode == "I;16" else mode}
    odd = label_table(workspace, workspace.label(folder), capsys)
    frame_folder(workspace, "twin", [image.convert("RGB") for image in twins])
    twin = label_table(workspace, workspace.label(workspace.tmp / "twin"), capsys)
    tolerance = 0.05 if mode == "CMYK" else 1e-6  # CMYK is saved as JPEG: lossy
    assert np.allclose(odd["valence"], twin["valence"], atol=tolerance)


def face_video(workspace, name: str, frames: list[np.ndarray]) -> Path:
    from mtclar_hf.labeling.video import write_video

    return write_video(frames, workspace.path(name), fps=25)


def test_faces_that_come_and_go(workspace, capsys):
    """The tracker keeps the last box through a gap of up to 5 frames (a blink, a turned head); after that
    the frames have no face (face_found False, empty labels) until one comes back."""
    face = real_face()
    blank = np.full_like(face, 128)
    frames = [face, face, *[blank] * 8, face, face]
    path = face_video(workspace, "come_and_go.mp4", frames)
    table = label_table(workspace, workspace.label(path, detect=True), capsys)
    assert table["face_found"].tolist() == [True] * 7 + [False] * 3 + [True] * 2
    assert table.loc[table.face_found, "valence"].notna().all()
    assert table.loc[~table.face_found, "valence"].isna().all()


@pytest.mark.parametrize(("follow", "side"), [("largest", "left"), ("1", "right")])
def test_several_faces_follow_the_chosen_one(follow, side, workspace, capsys):
    """Two faces: a large one on the left, a smaller one on the right; --follow picks which is labelled."""
    from PIL import Image

    face = real_face()
    small = np.asarray(Image.fromarray(face).resize((face.shape[1] * 3 // 4, face.shape[0] * 3 // 4)))
    canvas = np.full((face.shape[0], face.shape[1] * 2 + 20, 3), 128, np.uint8)
    canvas[:, : face.shape[1]] = face
    canvas[: small.shape[0], face.shape[1] + 20 : face.shape[1] + 20 + small.shape[1]] = small
    path = face_video(workspace, "two_faces.mp4", [canvas] * 4)
    table = label_table(workspace, workspace.label(path, "--follow", follow, detect=True), capsys)
    assert table["face_found"].all()
    centres = table["box_x"] + table["box_w"] / 2
    assert ((centres < canvas.shape[1] / 2) if side == "left" else (centres > canvas.shape[1] / 2)).all()


def test_support_frame_without_face_can_be_dropped(workspace, capsys):
    """--drop-faceless-support: a faceless support frame keeps its label but anchors nothing."""
    face = real_face()
    blank = np.full_like(face, 128)
    path = face_video(workspace, "mixed.mp4", [blank, face, face, face])
    support = workspace.support("0,0.9,0.9\n1,0.2,0.3\n")
    table = label_table(workspace, workspace.label(path, "--drop-faceless-support", support=support, detect=True), capsys)
    assert table.loc[0, "valence"] == pytest.approx(0.9) and table.loc[1, "valence"] == pytest.approx(0.2)
    assert table.loc[2:, "valence"].notna().all()  # predicted from frame 1, the only anchor


# ----------------------------------------------------------------------------------------------- Python API


def api_cases(workspace):
    """Bad input through the library functions a notebook user calls: (name, call, error type, fragment)."""
    from mtclar_hf.labeling.labeler import FewShotVideoLabeler
    from mtclar_hf.labeling.loading import load_model_and_processor
    from mtclar_hf.labeling.support import read_support_csv
    from mtclar_hf.labeling.video import iter_frames

    text = workspace.write("notes.mp4", "not a video")
    model, processor = load_model_and_processor(workspace.model)
    labeler = FewShotVideoLabeler(model, processor, detector=None)
    encoded = labeler.encode(workspace.video)
    return [
        ("iter_frames", lambda: list(iter_frames(text)), InputFileError, "notes.mp4"),
        ("iter_frames_missing", lambda: list(iter_frames(workspace.tmp / "gone.mp4")), InputFileError, "gone.mp4"),
        ("read_support_csv", lambda: read_support_csv(workspace.support("0,nan,0\n")), LabelError, "not finite"),
        ("label_beyond", lambda: labeler.label(encoded, {99: (0.1, 0.1)}), LabelError, "past the last frame"),
        ("label_empty", lambda: labeler.label(encoded, {}), LabelError, "empty"),
        ("label_out_of_range", lambda: labeler.label(encoded, {0: (3.0, 0.1)}), LabelError, "[-1, 1]"),
        ("label_nan", lambda: labeler.label(encoded, {0: (float("nan"), 0.1)}), LabelError, "finite"),
        ("encode_nothing", lambda: labeler.encode([]), InputFileError, "no frames"),
        # Arrays passed by a program, not a user's file: a ValueError that says what is wrong is the contract.
        ("encode_wrong_shape", lambda: labeler.encode([np.zeros((8, 8), np.uint8)]), ValueError, "frame 0"),
    ]


def test_python_api_raises_our_errors(workspace):
    failures = []
    for name, call, error, fragment in api_cases(workspace):
        try:
            call()
            failures.append(f"{name}: no error")
        except error as err:
            if fragment not in str(err) or "\n" in str(err):
                failures.append(f"{name}: unclear message {err!r}")
        except Exception as err:  # noqa: BLE001  the point: anything else is a failure to report
            failures.append(f"{name}: {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)


def test_no_face_anywhere_gives_empty_labels(workspace, capsys):
    """`mtclar label` on a faceless video: the support frames keep their labels, every other frame is empty
    (NaN) and a warning says why; `mtclar suggest` refuses the same video (see the table)."""
    from mtclar_hf.labeling.video import write_video

    path = write_video([np.full((96, 96, 3), 128, np.uint8)] * 6, workspace.path("wall.mp4"), fps=25)
    table = label_table(workspace, workspace.label(path, detect=True), capsys)
    assert not table["face_found"].any()
    assert table.loc[0, "valence"] == pytest.approx(0.2) and table.loc[1:, "valence"].isna().all()


def test_landmarks_far_outside_the_frame_are_ignored(workspace, capsys, caplog):
    """Broken AFEW-VA landmarks (a box a million pixels wide) do not frame the face: the frame is used whole
    (--no-detect), with a warning, and labelling stays fast."""
    from bad_inputs import afew_clip, edit_afew_json

    root = afew_clip(workspace)
    edit_afew_json(root, lambda frames: frames["00001"].update(landmarks=[[0, 0], [1e6, 1e6]] * 34))
    table = label_table(workspace, workspace.label(root / "001"), capsys)
    assert table.loc[1, ["box_x", "box_y", "box_w", "box_h"]].tolist() == [0, 0, 64, 64]
    assert "does not fit the 64x64 frame" in caplog.text

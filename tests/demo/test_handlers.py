"""The demo's handlers called directly (no server): the flow a user clicks through, and its error messages."""

import math

import gradio as gr
import numpy as np
import pandas as pd
import pytest

from mtclar_hf.errors import LabelError
from mtclar_hf.labeling.support import split_support_table

OUTPUT_COLUMNS = ["frame", "timestamp", "valence", "arousal", "face_found", "is_support", "box_x", "box_y", "box_w", "box_h", "uncertainty"]


def table(rows):
    return pd.DataFrame(rows, columns=["frame", "valence", "arousal"])


def test_example_clip_suggest_and_label(demo, progress):
    example = demo.examples[0]
    state, slider, preview, status, support = demo.load_video(str(example.path), True, "", progress)
    assert state.num_frames == 60 and state.example is example
    assert slider.maximum == 59 and slider.interactive
    assert min(preview.size) >= 256  # 96 px frames are shown enlarged
    assert "60 frames" in status and "SynthAffect example" in status
    assert support.empty
    assert any(kwargs.get("desc") == "Encoding frames" for _, kwargs in progress.calls)

    suggested = demo.suggest(state, "diverse", 0.06, support)
    assert len(suggested) == math.ceil(0.06 * 60)
    frames = suggested["frame"].tolist()
    assert frames == sorted(frames) and frames[0] == 0
    np.testing.assert_allclose(suggested["valence"], example.valence[frames], atol=1e-3)
    np.testing.assert_allclose(suggested["arousal"], example.arousal[frames], atol=1e-3)

    state, timeline, scatter, summary, csv_path = demo.label(str(example.path), True, "", suggested, "fused", state, None, progress)
    results = pd.read_csv(csv_path)
    # the labeller's columns, then the landmarks the crops were cut around (the AFEW-VA export needs them)
    assert list(results.columns) == OUTPUT_COLUMNS + [f"lm{i}_{axis}" for i in range(68) for axis in "xy"]
    assert len(results) == 60 and results["is_support"].sum() == len(frames)
    np.testing.assert_allclose(results.loc[frames, "valence"], suggested["valence"], atol=1e-9)
    assert results["valence"].between(-1, 1).all() and results["arousal"].between(-1, 1).all()
    assert f"**{len(frames)}** support frames" in summary and "CCC" in summary and "`fused`" in summary
    assert len(timeline.axes) >= 2 and len(scatter.axes) >= 1
    assert str(demo.workdir) in csv_path  # every file the app writes lives in its own temp folder


def test_correcting_a_frame_makes_it_an_anchor(demo, upload_clip, progress):
    state, *_ = demo.load_video(str(upload_clip), True, "", progress)
    assert state.example is None
    support = demo.set_label(state, None, 0, 0.5, 0.1)
    support = demo.set_label(state, support, 40, -0.4, 0.6)
    state, *_, first_csv = demo.label(str(upload_clip), True, "", support, "latest", state, None, progress)
    before = pd.read_csv(first_csv)

    # Before any labelling, browsing leaves the sliders alone (a label being entered is not reset).
    assert all(out == gr.skip() for out in demo.show_frame(None, 3, support)[1:])

    # Browsing to a predicted frame puts its prediction in the sliders, ready to be corrected.
    _, valence, arousal, _ = demo.show_frame(state, 20, support)
    assert valence == pytest.approx(before.loc[20, "valence"], abs=0.01)
    assert arousal == pytest.approx(before.loc[20, "arousal"], abs=0.01)

    corrected = demo.set_label(state, support, 20, 0.9, -0.9)
    assert corrected["frame"].tolist() == [0, 20, 40]
    state, *_, second_csv = demo.label(str(upload_clip), True, "", corrected, "latest", state, None, progress)
    after = pd.read_csv(second_csv)
    assert after.loc[20, ["valence", "arousal"]].tolist() == [0.9, -0.9] and bool(after.loc[20, "is_support"])
    # With `latest` anchors, frames 21-39 now hang off the corrected frame; frames before it do not move.
    labels = ["valence", "arousal"]  # (the uncertainty of frames 1-19 changes: their nearest anchors did)
    pd.testing.assert_frame_equal(after.loc[:19, labels], before.loc[:19, labels])
    assert not np.allclose(after.loc[21:39, "valence"], before.loc[21:39, "valence"])

    # The frame browser shows the user's own label for a support frame.
    _, valence, arousal, _ = demo.show_frame(state, 20, corrected)
    assert (valence, arousal) == (0.9, -0.9)
    assert demo.remove_label(corrected, 20)["frame"].tolist() == [0, 40]


def test_label_needs_support_and_valid_rows(demo, upload_clip, progress):
    state, *_ = demo.load_video(str(upload_clip), True, "", progress)
    with pytest.raises(gr.Error, match="support table is empty"):
        demo.label(str(upload_clip), True, "", None, "latest", state, None, progress)
    with pytest.raises(gr.Error, match="frame 3 has no arousal"):
        demo.label(str(upload_clip), True, "", table([[3, 0.2, None]]), "latest", state, None, progress)
    # Suggestions for an upload leave the labels for the user to fill in.
    suggested = demo.suggest(state, "fraction", 0.1, None)
    assert len(suggested) == 5 and suggested["valence"].isna().all()
    with pytest.raises(gr.Error, match=r"no support frame has labels yet \(frames 0, 9, 19, 28, 38 have no labels"):
        demo.label(str(upload_clip), True, "", suggested, "latest", state, None, progress)
    # Two of them labelled: the others are skipped, and the summary (and the message area) names them.
    partial = suggested.copy()
    partial.loc[[1, 3], ["valence", "arousal"]] = [[0.4, 0.1], [-0.2, 0.5]]
    *_, summary, csv_path = demo.label(str(upload_clip), True, "", partial, "latest", state, None, progress)
    assert "Frames 0, 19, 38 have no labels yet: skipped." in summary
    assert pd.read_csv(csv_path).query("is_support").frame.tolist() == [9, 28]
    partial.loc[0, "valence"] = 0.3  # a half-filled row is an error naming it
    with pytest.raises(gr.Error, match="support table row 1: frame 0 has no arousal"):
        demo.label(str(upload_clip), True, "", partial, "latest", state, None, progress)


def test_label_encodes_when_called_without_a_loaded_video(demo, upload_clip, progress):
    """The API path (gradio_client) may call Label straight away: it encodes first."""
    state, _, _, summary, csv_path = demo.label(str(upload_clip), True, "", table([[2, 0.1, 0.2]]), "nearest", None, None, progress)
    assert state.num_frames == 48 and "48** frames" in summary
    assert pd.read_csv(csv_path)["valence"].notna().all()


@pytest.mark.parametrize(
    "rows, message",
    [
        ([[48, 0.1, 0.1]], "frame 48 is not a frame of this video"),
        ([[1.5, 0.1, 0.1]], "not a frame of this video"),
        ([[-1, 0.1, 0.1]], "not a frame of this video"),
        ([[2, 1.5, 0.1]], "valence 1.5 is outside"),
        ([[2, 0.1, "x"]], "frame 2 has no arousal"),
        ([[2, 0.1, 0.1], [2, 0.3, 0.3]], "row 2: frame 2 is listed twice"),
    ],
)
def test_support_table_errors_name_the_row(rows, message):
    with pytest.raises(LabelError, match=message):
        split_support_table(table(rows), num_frames=48, label_range=(-1.0, 1.0))


def test_support_table_accepts_strings_and_skips_empty_rows():
    edited = table([["7", "0.25", "-0.5"], ["", "", ""], [None, None, None], [3, 0, 1]])
    assert split_support_table(edited, num_frames=10)[0] == {7: (0.25, -0.5), 3: (0.0, 1.0)}
    assert split_support_table(None, 10)[0] == {}


def test_bad_uploads_get_one_line_messages(demo, tmp_path, progress):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(gr.Error, match=r"notes\.txt: not a video file \(accepted: \.mp4"):
        demo.load_video(str(text), False, "", progress)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(gr.Error) as err:
        demo.load_video(str(broken), False, "", progress)
    assert err.value.message.startswith("broken.mp4: ") and str(tmp_path) not in err.value.message
    with pytest.raises(gr.Error, match="Load a video first"):
        demo.suggest(None, "diverse", 0.06, None)


def test_video_without_faces_explains_the_checkbox(demo, tmp_path, progress):
    from mtclar_hf.labeling.video import write_video

    rng = np.random.default_rng(0)
    noise = write_video(rng.integers(0, 255, (12, 64, 64, 3), dtype=np.uint8), tmp_path / "noise.webm", fps=10, codec="libvpx-vp9")
    state, _, preview, status, _ = demo.load_video(str(noise), False, "", progress)
    assert state.encoded.face_found.sum() == 0
    assert "No face was found" in status and "face crops" in status
    assert preview is not None
    with pytest.raises(gr.Error, match="no face was found in frame 3"):
        demo.set_label(state, None, 3, 0.1, 0.1)


def test_valence_arousal_circle(app_module):
    size, radius = app_module.CIRCLE_SIZE, app_module.CIRCLE_RADIUS
    centre = size / 2
    assert app_module.circle_to_valence_arousal(centre, centre) == (0.0, 0.0)
    assert app_module.circle_to_valence_arousal(centre + radius / 2, centre - radius) == (0.5, 1.0)
    assert app_module.circle_to_valence_arousal(0, size) == (-1.0, -1.0)  # clicks outside clip to [-1, 1]
    image = np.asarray(app_module.draw_va_circle(0.5, -0.5))
    red = image[round(centre + radius / 2), round(centre + radius / 2)]  # row = arousal -0.5, column = valence 0.5
    assert red[0] > 180 and red[1] < 100
    assert (np.asarray(app_module.draw_va_circle()) == image).mean() < 1  # the dot is only drawn with a label


def test_a_missing_default_model_is_trained_on_first_use(app_module, tiny_model_dir, tmp_path, monkeypatch, progress):
    import mtclar_hf.quickstart as quickstart

    app = app_module.LabellingDemo(workdir=tmp_path, example_seeds=())
    monkeypatch.chdir(tmp_path)  # no outputs/quickstart/model here: it is trained on first use

    def fake_ensure(progress=None):
        progress(0.5, desc="training")
        return tiny_model_dir

    monkeypatch.setattr(quickstart, "ensure_quickstart_model", fake_ensure)
    model, processor = app.models.load("", progress)
    assert hasattr(model, "compare") and processor.crop_size == 64
    assert ((0.5,), {"desc": "training"}) in progress.calls
    app.close()
    assert not app.workdir.exists()


def test_demo_command_is_registered(app_module, monkeypatch, capsys):
    from mtclar_hf.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--model" in help_text and "--port" in help_text and "--host" in help_text

    calls = []
    monkeypatch.setattr(app_module, "main", lambda **kwargs: calls.append(kwargs) or 0)
    assert main(["demo", "--model", "m", "--port", "7999", "--workdir", "keep"]) == 0
    assert calls == [{"model": "m", "host": "127.0.0.1", "port": 7999, "backend": "torch", "workdir": "keep"}]
    assert main(["demo", "--port", "70000"]) == 1
    assert "--port must be in 1-65535" in capsys.readouterr().err


def test_closing_a_tab_removes_its_files(demo, upload_clip, progress):
    class Request:
        session_hash = "tab42"

    state, *_ = demo.load_video(str(upload_clip), True, "", progress)
    *_, csv_path = demo.label(str(upload_clip), True, "", table([[1, 0.0, 0.0]]), "latest", state, Request(), progress)
    folder = demo.workdir / "sessions" / "tab42"
    assert csv_path.startswith(str(folder))
    demo.end_session(Request())
    assert not folder.exists() and demo.workdir.exists()


def test_unknown_models_are_explained(demo, upload_clip, tmp_path, progress):
    with pytest.raises(gr.Error, match="not a saved model folder"):
        demo.load_video(str(upload_clip), True, str(tmp_path), progress)
    with pytest.raises(gr.Error, match="no-such-user/no-such-model: cannot load the model"):
        demo.load_video(str(upload_clip), True, "no-such-user/no-such-model", progress)


def test_the_mode_list_follows_the_loaded_model(demo, upload_clip, progress, tmp_path):
    """A model whose pair heads are untrained (a converted EmoNet) is offered only the modes it can run."""
    from mtclar_hf import MTCLARImageProcessor, MTCLARModel
    from mtclar_hf.testing_utils import tiny_config

    untrained = tmp_path / "single_image"
    MTCLARModel(tiny_config(affect_head=True, pair_heads_trained=False)).save_pretrained(untrained)
    MTCLARImageProcessor(resize_size=72, crop_size=64).save_pretrained(untrained)
    offered = demo.anchor_choices(str(untrained), "latest")
    assert [choice[0] for choice in offered.choices] == ["auto", "offset", "hold", "interpolate"]
    assert offered.value == "auto"
    assert [choice[0] for choice in demo.anchor_choices("", "fused").choices][:3] == ["auto", "latest", "nearest"]

    state, *_ = demo.load_video(str(upload_clip), True, str(untrained), progress)
    support = demo.set_label(state, None, 0, 0.5, 0.1)
    state, _, _, summary, csv_path = demo.label(str(upload_clip), True, str(untrained), support, "auto", state, None, progress)
    assert "`auto` used **offset**" in summary and pd.read_csv(csv_path).valence.between(-1, 1).all()


def test_suggest_next_frames_from_the_labels_made_and_bring_labels_back_from_a_csv(demo, upload_clip, progress, tmp_path):
    state, *_ = demo.load_video(str(upload_clip), True, "", progress)
    with pytest.raises(gr.Error, match="label a frame or more first"):
        demo.suggest(state, "active", 0.1, None)
    support = demo.set_label(state, None, 0, 0.5, 0.1)
    suggested = demo.suggest(state, "active", 0.1, support)
    assert suggested["frame"].tolist()[0] == 0 and len(suggested) > 1  # the label kept, next frames added
    assert suggested.loc[suggested.frame == 0, "valence"].item() == 0.5
    assert suggested.loc[suggested.frame != 0, "valence"].isna().all()  # for the user to fill in

    state, *_, csv_path = demo.label(str(upload_clip), True, "", support, "auto", state, None, progress)
    labelled = state.results
    state.results = None  # as after a reload: the labels CSV brings the plots and the summary back
    state, timeline, scatter, summary = demo.upload_labels(state, csv_path)
    assert state.results["valence"].tolist() == pytest.approx(labelled["valence"].tolist(), nan_ok=True)
    assert "labels loaded from a file" in summary and len(timeline.axes) >= 2
    short = tmp_path / "short.csv"
    pd.read_csv(csv_path).iloc[:10].to_csv(short, index=False)
    with pytest.raises(gr.Error, match="labels 10 frames, but this video has 48"):
        demo.upload_labels(state, str(short))

"""The demo as an annotation tool that keeps work: support labels kept per video, CSV and annotation-format
files in and out, a playable preview of HEVC uploads, the model's provenance, errors that stay on the page."""

import math
import shutil

import gradio as gr
import numpy as np
import pandas as pd
import pytest

from mtclar_hf.labeling.support import read_support_rows, split_support_table, write_support_csv
from mtclar_hf.labeling.video import frame_timestamps, probe_video, write_video
from mtclar_hf.labeling.workspace import SupportStore, needs_browser_preview, provenance_note, write_browser_preview


def table(rows):
    return pd.DataFrame(rows, columns=["frame", "valence", "arousal"])


def test_support_table_skips_unlabelled_rows_and_names_half_filled_ones():
    support, unlabelled = split_support_table(table([[5, None, None], [2, 0.1, -0.2], ["9", "", ""]]), 10)
    assert support == {2: (0.1, -0.2)} and unlabelled == [5, 9]
    with pytest.raises(ValueError, match="support table row 2: frame 4 has no valence"):
        split_support_table(table([[1, 0.1, 0.1], [4, None, 0.3]]), 10)


def test_support_store_keeps_rows_per_video_hash(tmp_path):
    store = SupportStore(tmp_path / "store")
    digest = "ab" * 32
    assert store.load(digest) == {}
    store.save(digest, {3: (0.25, -0.5), 7: (math.nan, math.nan)}, "clip.mov")
    rows = SupportStore(tmp_path / "store").load(digest)  # a new store on the folder: a restarted server
    assert rows[3] == (0.25, -0.5) and math.isnan(rows[7][0])
    assert store.video_name(digest) == "clip.mov"
    with pytest.raises(ValueError):
        store.load("../../etc/passwd")


def test_support_csv_round_trip_and_bad_file(tmp_path):
    path = write_support_csv({4: (0.5, math.nan)}, tmp_path / "s.csv")
    with pytest.raises(Exception, match="s.csv: support table row 1: frame 4 has no arousal"):
        read_support_rows(path, 10)
    path = write_support_csv({4: (0.5, 0.1), 8: (math.nan, math.nan)}, tmp_path / "s.csv")
    rows = read_support_rows(path, 10)
    assert rows[4] == (0.5, 0.1) and math.isnan(rows[8][1])
    with pytest.raises(Exception, match="s.csv: support table row 2: frame 8 is not a frame"):
        read_support_rows(path, 8)


def test_hevc_gets_a_vp9_preview_with_the_same_frame_times(tmp_path):
    frames = [np.full((90, 160, 3), 20 + 3 * i, dtype=np.uint8) for i in range(20)]
    hevc = write_video(frames, tmp_path / "phone.mov", fps=30, codec="libx265")
    assert needs_browser_preview(hevc)
    preview = write_browser_preview(hevc, tmp_path / "preview", max_side=80)
    info = probe_video(preview)
    assert preview.suffix == ".webm" and info.codec == "vp9" and max(info.width, info.height) == 80
    np.testing.assert_allclose(frame_timestamps(preview), frame_timestamps(hevc), atol=1e-3)
    assert not needs_browser_preview(write_video(frames, tmp_path / "web.webm", codec="libvpx-vp9"))


class Config:
    pass


class Model:
    def __init__(self, provenance=None, set_it=True):
        self.config = Config()
        if set_it:
            self.config.provenance = provenance


def test_provenance_notes():
    kind, text = provenance_note(Model({"dataset": "SynthAffect", "synthetic": True}))
    assert kind == "synthetic" and "trained on synthetic faces; real faces will not be labelled meaningfully" in text
    assert provenance_note(Model({"dataset": "AffectNet", "synthetic": False}))[0] == "real"
    assert provenance_note(Model(set_it=False))[0] == "unknown"  # a config from before provenance existed
    assert provenance_note(Model(None))[0] == "unknown"


def test_demo_keeps_support_per_video_and_moves_files(demo, upload_clip, progress, tmp_path):
    state, _, _, status, support = demo.load_video(str(upload_clip), True, "", progress)
    rows = demo.set_label(state, support, 4, 0.5, -0.25)
    demo.keep_support(state, rows)  # what every table change does in the page
    # the same video under another name (a reload uploads it again) comes back with its labels
    again = tmp_path / "renamed.mp4"
    shutil.copy(upload_clip, again)
    _, _, _, status, restored = demo.load_video(str(again), True, "", progress)
    assert restored.values.tolist() == [[4, 0.5, -0.25]] and "1 support frame(s) restored" in status
    # support CSV out and back in
    saved = demo.download_support(state, rows)
    assert demo.upload_support(state, saved).values.tolist() == [[4, 0.5, -0.25]]
    # labels out in an annotation format and back in as support rows
    with pytest.raises(gr.Error, match="Press Label first"):
        demo.export_labels(state, "elan")
    state, *_ = demo.label(str(upload_clip), True, "", rows, "latest", state, None, progress)
    (eaf,) = demo.export_labels(state, "elan")
    imported = demo.import_labels(state, "elan", [eaf], rows)
    assert len(imported) == 48 and imported.set_index("frame").loc[4].tolist() == [0.5, -0.25]
    written = demo.export_labels(state, "nova")
    assert len(written) == 4 and len(demo.import_labels(state, "nova", written, None)) == 48


def test_errors_stay_in_the_message_area(app_module, demo):
    """Wired handlers return their error as a message (a toast alone fades), and clear it on the next action."""
    suggest = app_module.reporting(demo.suggest, 1)
    table_out, message = suggest(None, "diverse", 0.06, None)
    assert table_out == gr.skip() and message.startswith("**Error:** Load a video first")
    remove = app_module.reporting(demo.remove_label, 1)
    table_out, message = remove(table([[3, 0.1, 0.1]]), 3)
    assert table_out.empty and message == ""


def test_queue_steps_through_videos(demo, tmp_path):
    queue = [str(tmp_path / f"{name}.mp4") for name in ("a", "b", "c")]
    assert demo.step_queue(queue, None, 1) == queue[0]
    assert demo.step_queue(queue, "/upload/cache/b.mp4", 1) == queue[2]
    assert demo.step_queue(queue, queue[2], 1) == queue[2]
    assert demo.step_queue(queue, queue[1], -1) == queue[0]
    with pytest.raises(gr.Error, match="queue is empty"):
        demo.step_queue([], None, 1)


def test_demo_banner_says_what_the_model_knows(demo, tiny_model_dir):
    model, _ = demo.models.load(str(tiny_model_dir))
    model.config.provenance = {"dataset": "SynthAffect", "synthetic": True}
    try:
        assert "real faces will not be labelled meaningfully" in demo.model_banner(str(tiny_model_dir))
    finally:
        model.config.provenance = None
    assert "does not say what data" in demo.model_banner(str(tiny_model_dir))

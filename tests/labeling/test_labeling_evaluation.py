"""The evaluation protocol's pieces: skipped per-video figures, active selection, a user's own labelled videos."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from mtclar_hf.cli import main
from mtclar_hf.errors import ConfigError, InputFileError, LabelError
from mtclar_hf.labeling.evaluation import (
    LabelledClip,
    Protocol,
    active_rounds,
    active_support,
    evaluate_encoded_clips,
    skipped_summary,
)
from mtclar_hf.labeling.labeler import EncodedVideo
from mtclar_hf.labeling.own_videos import LabelledVideo, labelled_clip, list_labelled_videos, read_actors_csv
from mtclar_hf.labeling.support import active_frames, read_label_csv


def cli(*args) -> int:
    return main([str(arg) for arg in args])


def encoded_video(embeddings, fps=25.0, face_found=None) -> EncodedVideo:
    embeddings = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    num = len(embeddings)
    return EncodedVideo(
        embeddings=embeddings,
        timestamps=np.arange(num) / fps,
        face_found=np.ones(num, bool) if face_found is None else np.asarray(face_found, bool),
        boxes=np.zeros((num, 4)),
    )


class SameAsAnchorModel:
    """A pair model that predicts no difference between any two frames: each anchor says 'my own label', so two
    anchors disagree about a frame exactly as much as their labels differ."""

    config = SimpleNamespace(pair_heads_trained=True, label_min=-1.0, label_max=1.0)

    def compare(self, query, anchor):
        zeros = torch.zeros(len(query))
        return SimpleNamespace(valence_diff=zeros, arousal_diff=zeros)


# ------------------------------------------------------------------------------------------- skipped per-video figures


def test_video_means_count_the_videos_they_skip():
    rng = np.random.default_rng(0)
    calm = LabelledClip("calm", "a", encoded_video(rng.normal(size=(30, 4))), np.full(30, 0.3), np.sin(np.arange(30.0)))
    lively = LabelledClip(
        "lively", "b", encoded_video(rng.normal(size=(30, 4))), np.cos(np.arange(30.0)), np.sin(np.arange(30.0))
    )
    section = evaluate_encoded_clips(None, [calm, lively], Protocol(modes=["hold"], k=10))
    # The calm clip's true valence is constant: its valence PCC is undefined, and hold's predictions are its
    # constant truth, so hold's CCC is too (interpolate's, off by rounding, is 0).
    assert section["per_video"]["calm"]["modes"]["hold"]["valence_pcc"] is None
    skipped = section["video_mean_skipped"]
    assert set(skipped) == {"hold", "interpolate"}
    assert skipped["hold"]["valence_pcc"] == skipped["hold"]["valence_ccc"] == 1
    assert skipped["hold"]["valence_rmse"] == skipped["hold"]["arousal_ccc"] == 0
    lively_pcc = section["per_video"]["lively"]["modes"]["hold"]["valence_pcc"]
    assert section["video_mean"]["hold"]["valence_pcc"] == pytest.approx(lively_pcc)
    line = skipped_summary(section)
    assert line.startswith("video means leave out videos where a figure is undefined (of 2)")
    assert line.endswith(": valence_pcc 1; valence_ccc (hold 1)")
    assert skipped_summary(evaluate_encoded_clips(None, [lively], Protocol(modes=["hold"], k=10))) is None


def test_unlabelled_frames_are_neither_support_nor_scored():
    rng = np.random.default_rng(1)
    valence = np.linspace(-0.5, 0.5, 30)
    valence[:3] = valence[12:18] = np.nan  # a label CSV without these frames
    clip = LabelledClip(
        "v", "v", encoded_video(rng.normal(size=(30, 4))), valence, valence.copy(), np.isfinite(valence)
    )
    section = evaluate_encoded_clips(None, [clip], Protocol(modes=["hold"], k=10))
    entry = section["per_video"]["v"]
    # every-k over the labelled frames: 3, then the next labelled frame from 13 on (18), then 23
    assert entry["num_support"] == 3
    truth = np.delete(valence, [3, 18, 23])
    truth = truth[np.isfinite(truth)]
    held = np.array([valence[3]] * 8 + [valence[18]] * 4 + [valence[23]] * 6)
    assert entry["modes"]["hold"]["valence_rmse"] == pytest.approx(float(np.sqrt(np.mean((truth - held) ** 2))))


# ------------------------------------------------------------------------------------------------ active selection


def test_active_frames_go_where_the_anchors_disagree():
    video = encoded_video(np.ones((121, 4)))  # one look throughout: only time and disagreement matter
    support = {0: (0.0, 0.0), 40: (0.0, 0.0), 80: (0.9, 0.9), 120: (0.9, 0.9)}
    picks = active_frames(SameAsAnchorModel(), video, support, 3)
    assert 50 <= picks[0] <= 70  # the gap whose two anchors disagree, near its middle
    assert len(picks) == 3 and not set(picks) & set(support)
    spread = sorted(picks + list(support))
    assert min(np.diff(spread)) >= 10  # each pick counts as labelled: the picks do not pile up in one gap


def test_active_frames_go_far_from_every_anchor_in_time_and_look():
    looks = np.tile([1.0, 0.0, 0.0, 0.0], (100, 1))
    looks[10:22] = [-1.0, 0.0, 0.0, 0.0]  # a stretch of the opposite look, near a label in time
    video = encoded_video(looks)
    support = {0: (0.1, 0.1), 99: (0.1, 0.1)}
    picks = active_frames(SameAsAnchorModel(), video, support, 2)
    assert 10 <= picks[0] < 22
    assert 40 <= picks[1] <= 65  # then the middle of the long stretch without a label
    # Without any label, the first frame comes first, then the one that brings the most frames nearer to a label:
    # two thirds of the way, not the far end.
    assert active_frames(SameAsAnchorModel(), encoded_video(np.ones((50, 4))), {}, 2) == [0, 33]
    # Only candidate face frames, never a labelled one; fewer frames when they run out.
    few = encoded_video(np.ones((6, 4)), face_found=[1, 1, 0, 1, 1, 1])
    assert sorted(
        active_frames(SameAsAnchorModel(), few, {0: (0, 0), 4: (0, 0)}, 9, candidates=[1, 1, 1, 1, 1, 0])
    ) == [1, 3]


def test_active_support_spends_the_budget_in_rounds():
    assert active_rounds(6) == [1, 2, 2, 1] and active_rounds(2) == [1, 1] and active_rounds(13) == [1, 4, 4, 4]
    rng = np.random.default_rng(2)
    video = encoded_video(rng.normal(size=(100, 4)))
    valence = np.sin(np.arange(100) / 8)
    clip = LabelledClip("c", "c", video, valence, valence.copy())
    support = active_support(SameAsAnchorModel(), clip, budget=0.06)
    assert len(support) == 6 and support[0] == 0 and support == sorted(set(support))
    section = evaluate_encoded_clips(SameAsAnchorModel(), [clip], Protocol(strategy="active", budget=0.06, modes=["latest"]))
    assert section["per_video"]["c"]["num_support"] == 6


# ------------------------------------------------------------------------------------------ a user's labelled videos


def test_label_csv_errors_name_the_file(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("frame,valence,arousal\n0,0.5,0.1\n2,,\n3,0.2,-0.4\n")
    assert read_label_csv(path) == {0: (0.5, 0.1), 3: (0.2, -0.4)}  # frame 2 left empty: unlabelled
    for body, error, match in [
        ("frame,valence\n0,0.1\n", InputFileError, r"v\.csv.*missing column\(s\) arousal"),
        ("frame,valence,arousal\n0,1.5,0\n", LabelError, r"v\.csv: frame 0: valence 1.5 is outside \[-1, 1\]"),
        ("frame,valence,arousal\n0,0.1,0\n0,0.2,0\n", LabelError, r"v\.csv: line 3: frame 0 is listed twice"),
        ("frame,valence,arousal\n", LabelError, r"v\.csv: no labelled frame"),
    ]:
        path.write_text(body)
        with pytest.raises(error, match=match):
            read_label_csv(path, label_range=(-1.0, 1.0))
    video = LabelledVideo(tmp_path / "v.mp4", path, {0: (0.1, 0.1), 12: (0.2, 0.2)}, "v")
    with pytest.raises(LabelError, match=r"v\.csv: frame 12 is past the last frame of v\.mp4 \(9\)"):
        labelled_clip(video, encoded_video(np.ones((10, 4))))


def test_listing_labelled_videos(tmp_path):
    videos, labels = tmp_path / "videos", tmp_path / "labels"
    videos.mkdir()
    labels.mkdir()
    for name in ("b.mp4", "a.mkv", ".hidden.mp4", "notes.txt"):
        (videos / name).write_bytes(b"")
    (labels / "a.csv").write_text("frame,valence,arousal\n0,0.1,0.1\n")
    with pytest.raises(InputFileError, match=r"b\.csv: no label CSV for b\.mp4"):
        list_labelled_videos(videos, labels)
    (labels / "b.csv").write_text("frame,valence,arousal\n0,0.1,0.1\n")
    found = list_labelled_videos(videos, labels)
    assert [(v.path.name, v.actor) for v in found] == [("a.mkv", "a"), ("b.mp4", "b")]
    actors = tmp_path / "actors.csv"
    actors.write_text("video,actor\na.mkv,ann\nb,ann\n")
    assert {v.actor for v in list_labelled_videos(videos, labels, read_actors_csv(actors))} == {"ann"}
    actors.write_text("video,actor\nc,bob\n")
    with pytest.raises(ConfigError, match="video\\(s\\) c not found"):
        list_labelled_videos(videos, labels, read_actors_csv(actors))


def write_labelled_videos(root, identities=(1, 2, 3), num_frames=40):
    """Rendered SynthAffect face clips as mp4 videos, each with its full label CSV beside it."""
    from mtclar_hf.data.synth import render_clip
    from mtclar_hf.labeling.video import write_video

    root.mkdir()
    for identity in identities:
        clip = render_clip(identity, num_frames, image_size=96, seed=identity)
        write_video(clip.frames, root / f"person{identity}.mp4", fps=25)
        frames = np.arange(num_frames)
        pd.DataFrame({"frame": frames, "valence": clip.valence.round(4), "arousal": clip.arousal.round(4)}).to_csv(
            root / f"person{identity}.csv", index=False
        )
    return root


def test_evaluate_own_videos_end_to_end(tmp_path, tiny_model_dir, capsys):
    videos = write_labelled_videos(tmp_path / "videos")
    table = pd.read_csv(videos / "person3.csv")
    table.drop(index=range(30, 40)).to_csv(videos / "person3.csv", index=False)  # its last 10 frames unlabelled
    out = tmp_path / "metrics.json"
    args = ["evaluate", "--model", tiny_model_dir, "--videos", videos, "--k", 10, "--anchor", "latest", "fused"]
    assert cli(*args, "--out", out, "--quiet") == 0
    report = json.loads(out.read_text())
    assert report["faces"] == "detector" and report["data"] == {"videos": str(videos), "labels": str(videos)}
    same = report["same_video"]
    assert set(same["per_video"]) == {"person1", "person2", "person3"}
    assert set(same["pooled"]) == {"latest", "fused", "hold", "interpolate"}
    per_video = same["per_video"]
    assert per_video["person1"]["num_support"] + per_video["person1"]["support_without_face"] == 4
    assert per_video["person3"]["num_support"] + per_video["person3"]["support_without_face"] == 3
    assert report["cross_actor"]["pairing"] == {"person1": "person2", "person2": "person3", "person3": "person1"}
    assert report["protocol"]["actors"] == "each video is its own actor"
    assert "same_video: 3 videos" in capsys.readouterr().err
    # The simulated active loop, at a budget.
    active = tmp_path / "active.json"
    assert cli(*args, "--strategy", "active", "--budget", 0.1, "--no-cross-actor", "--out", active, "--quiet") == 0
    report = json.loads(active.read_text())
    assert report["protocol"]["strategy"] == "active" and report["protocol"]["budget"] == 0.1
    assert report["protocol"]["active_rounds"] == 3
    per_video = report["same_video"]["per_video"]
    assert all(entry["num_faces_found"] == 40 for entry in per_video.values())
    # 10 % of the labelled frames: 4 of 40, 3 of person3's 30
    assert {clip: entry["num_support"] for clip, entry in per_video.items()} == {
        "person1": 4,
        "person2": 4,
        "person3": 3,
    }
    capsys.readouterr()
    # One-line errors naming the file: a frame past the end is found once its video is decoded.
    (videos / "person2.csv").write_text("frame,valence,arousal\n0,0.1,0.1\n40,0.2,0.2\n")
    assert cli(*args, "--out", tmp_path / "bad.json") == 1
    err = capsys.readouterr().err
    assert (
        "person2.csv: frame 40 is past the last frame of person2.mp4 (39)" in err and len(err.strip().splitlines()) == 1
    )
    (videos / "person2.csv").unlink()
    assert cli(*args, "--out", tmp_path / "bad.json") == 1
    assert "person2.csv: no label CSV for person2.mp4" in capsys.readouterr().err
    assert cli(*args, "--faces", "landmarks", "--out", tmp_path / "bad.json") == 1
    assert "videos go through the face detector" in capsys.readouterr().err


def test_suggest_next_frames_from_a_support_set(tmp_path, tiny_model_dir, face_video, capsys):
    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.5,0.1\n30,-0.5,0.2\n")
    out = tmp_path / "next.csv"
    args = ["suggest", face_video, "--model", tiny_model_dir, "--no-detect", "--quiet", "--count", 3]
    assert cli(*args, "--support", support, "--out", out) == 0
    assert f"then add them to {support}" in capsys.readouterr().err
    table = pd.read_csv(out)
    assert list(table.columns) == ["rank", "frame", "timestamp", "valence", "arousal"]
    assert table["rank"].tolist() == [1, 2, 3] and table.frame.is_unique
    assert not set(table.frame) & {0, 30}
    assert table.frame[0] >= 45  # the 60-frame video is labelled at 0 and 30: the end is farthest from both
    # Without --support: k-centre covering, the first frame first (as before).
    assert cli(*args, "--out", out) == 0
    assert pd.read_csv(out).frame[0] == 0

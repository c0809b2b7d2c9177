"""`mtclar label`, `mtclar suggest`, `mtclar evaluate` the way a user calls them."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from mtclar_hf.cli import main

COLUMNS = ["frame", "timestamp", "valence", "arousal", "face_found", "is_support", "box_x", "box_y", "box_w", "box_h", "uncertainty"]


def cli(*args) -> int:
    """`mtclar ARGS...` in this process, as a user types it (paths and numbers as text)."""
    return main([str(arg) for arg in args])


def write_support(path, rows):
    path.write_text("frame,valence,arousal\n" + "".join(f"{f},{v},{a}\n" for f, v, a in rows))
    return path


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_label_video_csv_and_plot(tmp_path, tiny_model_dir, face_video):
    support = write_support(tmp_path / "support.csv", [(0, 0.5, -0.25), (30, -0.5, 0.75)])
    out, plot = tmp_path / "out" / "labels.csv", tmp_path / "out" / "labels.png"
    code = cli(
        "label",
        face_video,
        "--model",
        tiny_model_dir,
        "--support",
        support,
        "--out",
        out,
        "--no-detect",
        "--anchor",
        "fused",
        "--plot",
        plot,
        "--quiet",
    )
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS and len(table) == 60
    assert table.loc[0, ["valence", "arousal"]].tolist() == [0.5, -0.25]
    assert table.loc[30, ["valence", "arousal"]].tolist() == [-0.5, 0.75]
    assert table.is_support.sum() == 2 and table.face_found.all()
    assert table.valence.between(-1, 1).all() and table.arousal.between(-1, 1).all()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(out.parent) == []


@pytest.mark.parametrize("suffix", [".parquet", ".json"])
def test_label_other_formats(tmp_path, tiny_model_dir, face_video, suffix):
    support = write_support(tmp_path / "support.csv", [(0, 0.1, 0.2)])
    out = tmp_path / f"labels{suffix}"
    assert (
        cli(
            "label", face_video, "--model", tiny_model_dir, "--support", support, "--out", out, "--no-detect", "--quiet"
        )
        == 0
    )
    table = pd.read_parquet(out) if suffix == ".parquet" else pd.DataFrame(json.loads(out.read_text()))
    assert list(table.columns) == COLUMNS and len(table) == 60 and table.valence[0] == 0.1


def test_label_errors_are_one_line_and_leave_old_output(tmp_path, tiny_model_dir, face_video, capsys):
    out = tmp_path / "labels.csv"
    out.write_text("old\n")
    bad = write_support(tmp_path / "support.csv", [(500, 0.1, 0.2)])
    code = cli("label", face_video, "--model", tiny_model_dir, "--support", bad, "--out", out, "--no-detect", "--quiet")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "past the last frame" in err[-1] and err[-1].startswith("mtclar label: error:")
    assert out.read_text() == "old\n" and leftovers(tmp_path) == []
    assert cli("label", face_video, "--model", tmp_path / "nope", "--support", bad, "--out", out) == 1
    assert cli("label", face_video, "--model", tiny_model_dir, "--out", out) == 1  # no support given
    good = write_support(tmp_path / "good.csv", [(0, 0.1, 0.2)])
    assert (
        cli(
            "label",
            face_video,
            "--model",
            tiny_model_dir,
            "--support",
            good,
            "--out",
            tmp_path / "x.txt",
            "--no-detect",
        )
        == 1
    )
    assert "unknown format" in capsys.readouterr().err


def test_label_frame_folder_with_strategy(tmp_path, tiny_model_dir, afew_raw):
    out = tmp_path / "clip.csv"
    clip = afew_raw / "001"
    code = cli(
        "label",
        clip,
        "--model",
        tiny_model_dir,
        "--labels",
        clip / "001.json",
        "--strategy",
        "every-k",
        "--k",
        "10",
        "--anchor",
        "weighted",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0
    table = pd.read_csv(out, dtype={"frame_name": str})
    annotation = json.loads((clip / "001.json").read_text())["frames"]
    assert table.frame[table.is_support].tolist() == [0, 10, 20]
    for frame in (0, 10, 20):
        assert table.valence[frame] == pytest.approx(annotation[f"{frame:05d}"]["valence"] / 10)
    assert table.frame_name[3] == "00003"
    assert table.box_w.notna().all()  # boxes from the landmarks
    # without labels, a strategy cannot pick labelled frames
    video_only = tmp_path / "frames"
    shutil.copytree(clip, video_only)
    (video_only / "001.json").unlink()
    assert cli("label", video_only, "--model", tiny_model_dir, "--strategy", "first", "--out", out, "--no-detect") == 1


def test_suggest_then_label(tmp_path, tiny_model_dir, face_video, capsys):
    template = tmp_path / "suggested.csv"
    assert (
        cli(
            "suggest",
            face_video,
            "--model",
            tiny_model_dir,
            "--budget",
            "0.06",
            "--out",
            template,
            "--no-detect",
            "--quiet",
        )
        == 0
    )
    table = pd.read_csv(template)
    assert list(table.columns) == ["rank", "frame", "timestamp", "valence", "arousal"]
    assert len(table) == 4 and table["rank"].tolist() == [1, 2, 3, 4] and table.frame[0] == 0 and table.frame.is_unique
    out = tmp_path / "labels.csv"
    # unfilled labels are refused, naming the frame
    assert cli("label", face_video, "--model", tiny_model_dir, "--support", template, "--out", out, "--no-detect") == 1
    assert "empty" in capsys.readouterr().err
    table["valence"], table["arousal"] = 0.25, -0.25
    table.to_csv(template, index=False)
    assert (
        cli(
            "label",
            face_video,
            "--model",
            tiny_model_dir,
            "--support",
            template,
            "--out",
            out,
            "--no-detect",
            "--quiet",
        )
        == 0
    )
    labels = pd.read_csv(out)
    assert sorted(labels.frame[labels.is_support]) == sorted(table.frame)


def test_batch_of_videos(tmp_path, tiny_model_dir, face_video, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(face_video, videos / "a.mp4")
    shutil.copy(face_video, videos / "b.mp4")
    (videos / "c.mp4").write_text("not a video")
    supports = tmp_path / "supports"
    supports.mkdir()
    for name in ("a", "b", "c"):
        write_support(supports / f"{name}.csv", [(0, 0.2, 0.3)])
    out = tmp_path / "labels"
    code = cli(
        "label",
        videos,
        "--model",
        tiny_model_dir,
        "--support",
        supports,
        "--out",
        out,
        "--format",
        "parquet",
        "--no-detect",
        "--quiet",
        "--device",
        "cpu",
    )
    assert code == 1  # c.mp4 failed, said so, and did not stop the others
    assert "c.mp4" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.parquet", "a.summary.json", "b.parquet", "b.summary.json"]
    assert pd.read_parquet(out / "a.parquet").valence[0] == 0.2


def test_evaluate_raw_and_prepared(tmp_path, tiny_model_dir, afew_raw):
    out = tmp_path / "metrics.json"
    code = cli(
        "evaluate",
        "--model",
        tiny_model_dir,
        "--afew-va",
        afew_raw,
        "--k",
        "5",
        "--anchor",
        "latest",
        "fused",
        "mean",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0
    report = json.loads(out.read_text())
    same = report["same_video"]
    assert set(same["pooled"]) == {"latest", "fused", "mean", "hold", "interpolate"}
    assert set(same["pooled"]["fused"]) == {
        f"{s}_{m}" for s in ("valence", "arousal") for m in ("rmse", "pcc", "ccc", "sagr")
    }
    assert same["num_videos"] == 3 and same["per_video"]["003"]["num_support"] == 5  # 24 frames, every 5th
    assert same["support_fraction"] == pytest.approx((6 + 6 + 5) / 84)
    cross = report["cross_actor"]
    assert cross["pairing"] == {"001": "003", "002": "003", "003": "001"}
    assert report["best_mode"]["same_video"]["valence_ccc"] in same["pooled"]
    # the prepared dataset gives the same numbers
    from mtclar_hf.data.afew_va import prepare_afew_va

    prepared = tmp_path / "prepared"
    prepare_afew_va(afew_raw, prepared, folds=2)
    out2 = tmp_path / "metrics2.json"
    assert (
        cli(
            "evaluate",
            "--model",
            tiny_model_dir,
            "--afew-va",
            prepared,
            "--k",
            "5",
            "--anchor",
            "latest",
            "fused",
            "mean",
            "--out",
            out2,
            "--quiet",
        )
        == 0
    )
    report2 = json.loads(out2.read_text())
    for mode in ("latest", "fused", "hold"):
        for key, value in same["pooled"][mode].items():
            assert report2["same_video"]["pooled"][mode][key] == pytest.approx(value, abs=1e-4, nan_ok=True)


def test_evaluate_scores_query_frames_only(tmp_path, afew_raw, tiny_labeler_parts):
    """Independent check of the protocol: hold/interpolate recomputed by hand from the ground truth."""
    from mtclar_hf.data.afew_va import load_afew_va_clips
    from mtclar_hf.labeling import FewShotVideoLabeler
    from mtclar_hf.labeling.evaluation import Protocol, evaluate_afew_va

    model, processor = tiny_labeler_parts
    clips = list(load_afew_va_clips(afew_raw))
    report = evaluate_afew_va(
        FewShotVideoLabeler(model, processor, detector=None), clips, Protocol(k=10, modes=["latest"], cross_actor=False)
    )
    truth, predicted = [], []
    for clip in clips:
        support = list(range(0, len(clip), 10))
        for t in range(len(clip)):
            if t in support:
                continue
            truth.append(clip.valence[t])
            predicted.append(clip.valence[max(s for s in support if s <= t)])
    truth, predicted = np.array(truth, np.float64), np.array(predicted, np.float64)
    assert report["same_video"]["pooled"]["hold"]["valence_rmse"] == pytest.approx(
        np.sqrt(np.mean((truth - predicted) ** 2))
    )
    assert "cross_actor" not in report


def test_label_real_face_video(tmp_path, tiny_model_dir, real_faces_dir):
    support = write_support(tmp_path / "support.csv", [(0, 0.4, 0.1), (40, -0.2, 0.3)])
    out = tmp_path / "single.csv"
    assert (
        cli(
            "label",
            real_faces_dir / "single_face.mp4",
            "--model",
            tiny_model_dir,
            "--support",
            support,
            "--out",
            out,
            "--quiet",
        )
        == 0
    )
    table = pd.read_csv(out)
    assert len(table) == 72 and table.face_found.mean() > 0.9
    assert table.timestamp.iloc[-1] == pytest.approx(71 / 30, abs=1e-3)
    found = table[table.face_found]
    assert found.valence.notna().all() and (found.box_w > 50).all()


def test_label_video_without_faces(tmp_path, tiny_model_dir, real_faces_dir, caplog):
    support = write_support(tmp_path / "support.csv", [(0, 0.4, 0.1)])
    out = tmp_path / "none.csv"
    with caplog.at_level("WARNING"):
        code = cli(
            "label",
            real_faces_dir / "no_face.mp4",
            "--model",
            tiny_model_dir,
            "--support",
            support,
            "--out",
            out,
            "--quiet",
        )
    assert code == 0 and "no face found" in caplog.text
    table = pd.read_csv(out)
    assert len(table) > 90 and not table.face_found.any()
    predicted = table[~table.is_support]
    assert predicted.valence.isna().all() and predicted.arousal.isna().all()


def _batch_worker(rank, port, argv, log_dir):
    """One process of a 2-process launch, as `accelerate launch --num_processes 2` would start it."""
    import os

    from accelerate.state import PartialState

    from mtclar_hf.labeling import batch as labeling_batch

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE="2",
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE="2",
        GLOO_SOCKET_IFNAME="lo",
    )
    PartialState._reset_state()  # forked from the test process: start from a clean accelerate state
    label_source = labeling_batch.label_source

    def logged_label_source(labeler, source, *rest, **kwargs):
        with open(os.path.join(log_dir, f"rank{rank}.log"), "a") as log:
            log.write(source.name + "\n")
        return label_source(labeler, source, *rest, **kwargs)

    labeling_batch.label_source = logged_label_source
    code = main(argv)
    with open(os.path.join(log_dir, f"rank{rank}.code"), "w") as handle:
        handle.write(str(code))


def test_batch_is_shared_between_processes(tmp_path, tiny_model_dir, face_video):
    import socket

    import torch.multiprocessing as mp

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(face_video, videos / f"{name}.mp4")
    support = tmp_path / "support.csv"
    support.write_text("video,frame,valence,arousal\na,0,0.1,0.1\nb,0,0.2,0.2\nc.mp4,0,0.3,0.3\n")
    out, logs = tmp_path / "labels", tmp_path / "logs"
    logs.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [
        "label",
        str(videos),
        "--model",
        str(tiny_model_dir),
        "--support",
        str(support),
        "--out",
        str(out),
        "--no-detect",
        "--quiet",
    ]
    mp.start_processes(_batch_worker, args=(port, argv, str(logs)), nprocs=2, start_method="fork")
    assert (logs / "rank0.code").read_text() == "0" and (logs / "rank1.code").read_text() == "0"
    shares = [(logs / f"rank{r}.log").read_text().split() for r in (0, 1)]
    assert shares == [["a.mp4", "b.mp4"], ["c.mp4"]]  # each video labelled once, by one process
    assert sorted(p.name for p in out.glob("*.csv")) == ["a.csv", "b.csv", "c.csv"]
    assert sorted(p.name for p in out.glob("*.summary.json")) == ["a.summary.json", "b.summary.json", "c.summary.json"]
    assert pd.read_csv(out / "c.csv").valence[0] == 0.3


def test_evaluate_and_label_on_synthaffect(tmp_path, tiny_model_dir):
    """The SynthAffect renderer's AFEW-VA layout goes straight into `mtclar evaluate` and `mtclar label`."""
    from mtclar_hf.data.synth import write_synthaffect

    write_synthaffect(
        tmp_path / "synth",
        seed=0,
        num_identities=4,
        train_images=4,
        val_images=2,
        num_clips=2,
        frames_per_clip=41,
        image_size=64,
        num_workers=1,
    )
    afew = tmp_path / "synth" / "afew_va"
    out = tmp_path / "metrics.json"
    assert (
        cli("evaluate", "--model", tiny_model_dir, "--afew-va", afew, "--anchor", "fused", "--out", out, "--quiet") == 0
    )
    same = json.loads(out.read_text())["same_video"]
    assert same["num_videos"] == 2 and same["support_fraction"] == pytest.approx(6 / 82)  # frames 0, 20, 40 of each
    assert set(same["pooled"]) == {"fused", "hold", "interpolate"}
    clip = sorted(p for p in afew.iterdir() if p.is_dir())[0]
    labels = tmp_path / "clip.csv"
    assert cli("label", clip, "--model", tiny_model_dir, "--strategy", "every-k", "--out", labels, "--quiet") == 0
    table = pd.read_csv(labels)
    assert len(table) == 41 and table.is_support.sum() == 3 and table.valence.notna().all()

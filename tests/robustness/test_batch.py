"""`mtclar label VIDEO_DIR`: a bad video does not stop the batch, finished outputs are never rewritten or
lost, `--resume` skips what is done and `--overwrite` is the only way to redo it."""

import shutil

import pandas as pd
import pytest

from mtclar_hf.cli import main


@pytest.fixture
def batch(tmp_path, good_video, tiny_model_dir):
    """videos/a.mp4, b.mp4 (a text file), c.mp4 and one support CSV; returns a function running the batch."""
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(good_video, videos / "a.mp4")
    (videos / "b.mp4").write_text("not a video")
    shutil.copy(good_video, videos / "c.mp4")
    support = tmp_path / "support.csv"
    support.write_text("video,frame,valence,arousal\na,0,0.1,0.1\nb,0,0.2,0.2\nc,0,0.3,0.3\n")
    out = tmp_path / "labels"

    def run(*flags):
        argv = ["label", str(videos), "--model", str(tiny_model_dir), "--support", str(support)]
        return main([*argv, "--out", str(out), "--no-detect", "--quiet", "--device", "cpu", *flags])

    run.videos, run.out = videos, out
    return run


def fingerprint(folder):
    """Name -> (inode, mtime_ns, bytes) of every file: any rewrite changes the inode (atomic replace)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_bad_video_is_reported_and_the_batch_goes_on(batch, capsys):
    assert batch() == 1
    err = capsys.readouterr().err
    assert "b.mp4: cannot open as a video" in err
    assert "2 labelled, 0 already done, 1 failed: b.mp4" in err.splitlines()[-1]
    assert sorted(p.name for p in batch.out.iterdir()) == ["a.csv", "a.summary.json", "c.csv", "c.summary.json"]


def test_finished_outputs_are_kept_resume_skips_them_overwrite_redoes_them(batch, good_video, capsys):
    batch()
    done = fingerprint(batch.out)

    # Re-running without a choice refuses before touching anything.
    assert batch() == 1
    assert "pass --resume to skip finished videos or --overwrite" in capsys.readouterr().err
    assert fingerprint(batch.out) == done

    # The bad video is fixed; an interrupted earlier run left a temporary file, which is not a result.
    shutil.copy(good_video, batch.videos / "b.mp4")
    (batch.out / ".b.csv.abc123.tmp.csv").write_text("frame,val")
    assert batch("--resume") == 0
    assert "1 labelled, 2 already done, 0 failed" in capsys.readouterr().err
    after = fingerprint(batch.out)
    assert {name: after[name] for name in done} == done  # a.csv and c.csv untouched
    assert pd.read_csv(batch.out / "b.csv").valence[0] == pytest.approx(0.2)

    assert batch("--resume", "--overwrite") == 1
    assert "either --resume or --overwrite" in capsys.readouterr().err

    assert batch("--overwrite") == 0
    assert "3 labelled, 0 already done, 0 failed" in capsys.readouterr().err
    redone = fingerprint(batch.out)
    assert all(redone[name][0] != after[name][0] for name in ("a.csv", "b.csv", "c.csv"))  # replaced, atomically


def test_an_unexpected_error_is_logged_and_the_batch_goes_on(batch, monkeypatch, capsys, caplog):
    """A bug (not bad input) in one video keeps its traceback in the log, but the other videos still finish."""
    from mtclar_hf.labeling import batch as labeling_batch

    shutil.copy(batch.videos / "a.mp4", batch.videos / "b.mp4")
    original = labeling_batch.label_source

    def label_source(labeler, source, *rest, **kwargs):
        if source.name == "b.mp4":
            raise RuntimeError("simulated bug")
        return original(labeler, source, *rest, **kwargs)

    monkeypatch.setattr(labeling_batch, "label_source", label_source)
    assert batch() == 1
    assert "2 labelled, 0 already done, 1 failed: b.mp4" in capsys.readouterr().err
    assert "simulated bug" in caplog.text
    assert sorted(p.name for p in batch.out.iterdir()) == ["a.csv", "a.summary.json", "c.csv", "c.summary.json"]

"""`mtclar synth` and `mtclar prepare` end to end, the way a user runs them."""

import sys
import types

import numpy as np
import pytest
from test_afew_va import six_clips
from test_affectnet import affectnet_row, standard_train_rows, write_original_affectnet

from mtclar_hf.cli import main
from mtclar_hf.data.afew_va import afew_va_features
from mtclar_hf.data.affectnet import AFFECTNET_NAMES, affectnet_features


def test_prepare_affectnet_cli_prints_summary(tmp_path, capsys):
    from datasets import load_from_disk

    raw = write_original_affectnet(tmp_path / "raw", standard_train_rows(), [affectnet_row("4/v.jpg", 2, -0.3, 0.1)])
    assert main(["prepare", "affectnet", str(raw), "--out", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "AffectNet (original layout)" in out
    assert "train: kept 4 rows, dropped 4" in out and "dropped 1: expression 10 (No-Face)" in out
    assert "valence/arousal not annotated (-2)" in out
    ds = load_from_disk(str(tmp_path / "ds"))
    assert len(ds["train"]) == 4 and len(ds["validation"]) == 1


def test_prepare_errors_are_one_line(tmp_path, capsys):
    rows = [affectnet_row("1/a.jpg", 0, 0.1, 0.1), affectnet_row("1/b.jpg", 1, 3.0, 0.2)]
    raw = write_original_affectnet(tmp_path / "raw", rows, [])
    assert main(["prepare", "affectnet", str(raw), "--out", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("mtclar prepare: error:") and "training.csv, line 3: valence 3 is outside [-1, 1]" in err
    assert not (tmp_path / "ds").exists()  # nothing half-written

    good = write_original_affectnet(
        tmp_path / "raw2", [affectnet_row("1/a.jpg", 0, 0.1, 0.1)], [affectnet_row("2/b.jpg", 1, 0.1, 0.1)]
    )
    (good / "Manually_Annotated_Images" / "2" / "b.jpg").unlink()
    assert main(["prepare", "affectnet", str(good), "--out", str(tmp_path / "ds")]) == 1
    assert "validation.csv, line 2: image" in capsys.readouterr().err
    assert main(["prepare", "affectnet", str(good), "--out", str(tmp_path / "ds"), "--skip-missing"]) == 0
    assert "dropped 1: image file missing" in capsys.readouterr().out


def test_prepare_afew_va_cli(tmp_path, capsys):
    from datasets import load_from_disk

    raw, clips = six_clips(tmp_path / "raw")
    assert main(["prepare", "afew-va", str(raw), "--out", str(tmp_path / "ds"), "--folds", "2", "--seed", "3"]) == 0
    assert "6 clips, 4 actors" in capsys.readouterr().out
    train = load_from_disk(str(tmp_path / "ds"))["train"]
    assert len(train) == sum(len(labels) for _, labels in clips.values())
    assert set(train["fold_clip"][:]) == {0, 1} and set(train["fold_actor"][:]) == {0, 1}


def test_push_to_hub_calls_the_hub_module(tmp_path, monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("mtclar_hf.hub.push")
    fake.push_dataset = lambda dataset_dir, repo_id, private=False: (
        calls.append((dataset_dir, repo_id, private)) or "https://hf.co/x"
    )
    monkeypatch.setitem(sys.modules, "mtclar_hf.hub.push", fake)
    raw, _ = six_clips(tmp_path / "raw")
    out = str(tmp_path / "ds")
    assert main(["prepare", "afew-va", str(raw), "--out", out, "--push-to-hub", "me/afew", "--private"]) == 0
    assert calls == [(out, "me/afew", True)]
    assert "pushed to https://hf.co/x" in capsys.readouterr().out


def test_synth_then_prepare_both_layouts(tmp_path, capsys):
    """The issue's "done when": mtclar synth + mtclar prepare -> load_from_disk with the right content."""
    from datasets import load_from_disk

    synth = tmp_path / "synth"
    args = [
        "synth",
        "--out",
        str(synth),
        "--seed",
        "1",
        "--identities",
        "8",
        "--train-images",
        "24",
        "--val-images",
        "8",
    ]
    assert main(args + ["--clips", "4", "--frames", "6", "--size", "48"]) == 0
    assert main(["prepare", "affectnet", str(synth / "affectnet"), "--out", str(tmp_path / "affectnet")]) == 0
    assert main(["prepare", "afew-va", str(synth / "afew_va"), "--out", str(tmp_path / "afew_va"), "--folds", "2"]) == 0
    capsys.readouterr()

    affectnet = load_from_disk(str(tmp_path / "affectnet"))
    assert affectnet["train"].features == affectnet_features()
    assert len(affectnet["train"]) == 24 and len(affectnet["validation"]) == 8  # SynthAffect writes no dropped codes
    train = affectnet["train"]
    assert set(train["expression"][:]) <= set(range(len(AFFECTNET_NAMES)))
    for column in ("valence", "arousal"):
        values = np.asarray(train[column][:])
        assert values.min() >= -1 and values.max() <= 1 and values.std() > 0.1
    assert all(train["identity"][:]) and not set(train["identity"][:]) & set(affectnet["validation"]["identity"][:])
    row = train[0]
    assert row["image"].size == (48, 48)
    x, y, w, h = row["face_box"]
    assert w > 0 and h > 0 and x + w <= 48 + 1 and y + h <= 48 + 1
    # SynthAffect says it is synthetic; the prepared splits and their card carry that on to training.
    from mtclar_hf.data.affectnet import SYNTHETIC_MARKER, dataset_provenance

    assert dataset_provenance(train) == {"dataset": "SynthAffect", "synthetic": True}
    assert "data: SynthAffect (synthetic faces)" in (tmp_path / "affectnet" / "README.md").read_text()
    (synth / "affectnet" / SYNTHETIC_MARKER).unlink()  # as real AffectNet: no marker
    assert main(["prepare", "affectnet", str(synth / "affectnet"), "--out", str(tmp_path / "real")]) == 0
    assert dataset_provenance(load_from_disk(str(tmp_path / "real"))["train"]) == {"dataset": "AffectNet", "synthetic": False}

    afew = load_from_disk(str(tmp_path / "afew_va"))["train"]
    assert afew.features == afew_va_features()
    assert len(afew) == 4 * 6 and len(set(afew["clip_id"][:])) == 4
    assert sorted(set(afew["frame_index"][:])) == list(range(6))
    valence = np.asarray(afew["valence"][:])
    assert valence.min() >= -1 and valence.max() <= 1
    folds = dict(zip(afew["clip_id"][:], afew["fold_clip"][:]))
    assert set(folds.values()) == {0, 1}
    assert all(fold == folds[clip] for clip, fold in zip(afew["clip_id"][:], afew["fold_clip"][:]))


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    out = capsys.readouterr().out
    assert "affectnet" in out and "afew-va" in out

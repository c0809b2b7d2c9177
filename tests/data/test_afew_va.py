"""AFEW-VA loader, clip access (raw and prepared), group k-fold splits, malformed input."""

import json

import numpy as np
import pytest
from PIL import Image

from mtclar_hf.data.afew_va import (
    afew_va_features,
    build_afew_va,
    iter_prepared_clips,
    load_afew_va_clips,
    prepare_afew_va,
)
from mtclar_hf.data.splits import assign_group_folds, kfold_splits
from mtclar_hf.errors import ConfigError, InputFileError

SIZE = 40


def clip_landmarks(frame: int):
    t = np.linspace(0, 1, 68)
    points = np.stack([5 + 20 * t + frame, 6 + 25 * np.abs(np.sin(5 * t))], axis=1)
    points[0] = [5 + frame, 6]
    points[1] = [25 + frame, 31]
    return points.round(2).tolist()  # box (5 + frame, 6, 20, 25)


def write_afew_va(root, clips, json_beside=False):
    """AFEW-VA layout: <clip>/<00000>.png + <clip>/<clip>.json (or <clip>.json beside the folder).

    ``clips``: {clip_id: (actor, [(valence, arousal) per frame in [-10, 10]])}.
    """
    for clip_id, (actor, labels) in clips.items():
        folder = root / clip_id
        folder.mkdir(parents=True)
        frames = {}
        for index, (valence, arousal) in enumerate(labels):
            name = f"{index:05d}"
            Image.fromarray(np.full((SIZE, SIZE, 3), (index * 20) % 255, dtype=np.uint8)).save(folder / f"{name}.png")
            frames[name] = {"valence": valence, "arousal": arousal, "landmarks": clip_landmarks(index)}
        annotation = {"actor": actor, "video_id": clip_id, "frames": frames}
        json_path = (root if json_beside else folder) / f"{clip_id}.json"
        json_path.write_text(json.dumps(annotation, indent=1))
    return root


def six_clips(root, json_beside=False):
    actors = ["ann", "ann", "bob", "bob", "cid", "dee"]
    clips = {
        f"{c + 1:03d}": (actors[c], [((c + f) % 21 - 10, 10 - (c * f) % 21) for f in range(3 + c % 3)])
        for c in range(6)
    }
    return write_afew_va(root, clips, json_beside=json_beside), clips


@pytest.mark.parametrize("json_beside", [False, True])
def test_raw_clips_are_read_and_rescaled(tmp_path, json_beside):
    raw, clips = six_clips(tmp_path / "raw", json_beside=json_beside)
    loaded = list(load_afew_va_clips(raw))
    assert [clip.clip_id for clip in loaded] == sorted(clips)
    first = loaded[0]
    assert first.actor == "ann" and first.frame_names == ["00000", "00001", "00002"]
    np.testing.assert_allclose(first.valence, np.array([v for v, _ in clips["001"][1]]) / 10)
    np.testing.assert_allclose(first.arousal, np.array([a for _, a in clips["001"][1]]) / 10)
    assert first.landmarks.shape == (3, 68, 2)
    np.testing.assert_allclose(first.face_boxes[2], [7, 6, 20, 25], atol=1e-4)
    frames = first.load_frames()
    assert len(frames) == 3 and frames[1].shape == (SIZE, SIZE, 3) and frames[1][0, 0, 0] == 20


def test_prepared_dataset_features_counts_folds(tmp_path):
    from datasets import load_from_disk

    raw, clips = six_clips(tmp_path / "raw")
    summary = prepare_afew_va(raw, tmp_path / "out", folds=3, seed=1)
    ds = load_from_disk(str(tmp_path / "out"))
    assert list(ds) == ["train"]
    train = ds["train"]
    assert train.features == afew_va_features()
    total = sum(len(labels) for _, labels in clips.values())
    assert len(train) == total == summary.kept["train"]
    valence = np.asarray(train["valence"][:])
    assert valence.min() >= -1 and valence.max() <= 1
    np.testing.assert_allclose(
        sorted(valence), sorted(v / 10 for _, labels in clips.values() for v, _ in labels), atol=1e-6
    )
    row = train[4]
    assert (row["clip_id"], row["actor"], row["frame_index"], row["frame_name"]) == ("002", "ann", 1, "00001")
    np.testing.assert_allclose(row["face_box"], [6, 6, 20, 25], atol=1e-4)
    assert row["image"].size == (SIZE, SIZE)

    # Every clip (and every actor) sits in exactly one fold of its column; 3 folds each.
    for column, group in (("fold_clip", "clip_id"), ("fold_actor", "actor")):
        pairs = set(zip(train[group][:], train[column][:]))
        assert len(pairs) == len({g for g, _ in pairs})
        assert {fold for _, fold in pairs} == {0, 1, 2}
    # Users filter without our code: no frame of a test actor is in training.
    test_actors = set(train.filter(lambda r: r["fold_actor"] == 0)["actor"][:])
    train_actors = set(train.filter(lambda r: r["fold_actor"] != 0)["actor"][:])
    assert test_actors and not test_actors & train_actors


def test_fewer_actors_than_folds_is_noted(tmp_path):
    raw, _ = six_clips(tmp_path / "raw")
    dataset, summary = build_afew_va(raw, folds=5)
    assert set(dataset["train"]["fold_actor"][:]) == {0, 1, 2, 3}
    assert set(dataset["train"]["fold_clip"][:]) == {0, 1, 2, 3, 4}
    assert any("only 4 actors" in note for note in summary.notes)


def test_prepared_clips_match_raw_clips(tmp_path):
    raw, _ = six_clips(tmp_path / "raw")
    dataset, _ = build_afew_va(raw, folds=3)
    train = dataset["train"].shuffle(seed=0)  # order of rows must not matter
    prepared = {clip.clip_id: clip for clip in iter_prepared_clips(train)}
    for raw_clip in load_afew_va_clips(raw):
        clip = prepared[raw_clip.clip_id]
        assert clip.actor == raw_clip.actor and clip.frame_names == raw_clip.frame_names
        np.testing.assert_array_equal(clip.frame_indices, raw_clip.frame_indices)
        np.testing.assert_allclose(clip.valence, raw_clip.valence)
        np.testing.assert_allclose(clip.landmarks, raw_clip.landmarks)
        for from_dataset, from_raw in zip(clip.load_frames(), raw_clip.load_frames()):
            np.testing.assert_array_equal(from_dataset, from_raw)
    fold = dataset["train"].filter(lambda r: r["fold_clip"] == 1)
    assert {clip.clip_id for clip in iter_prepared_clips(fold)} == set(fold["clip_id"][:])


@pytest.mark.parametrize("by", ["clip", "actor"])
def test_kfold_splits_are_group_disjoint_and_partition(tmp_path, by):
    groups = {"clip": "clip_id", "actor": "actor"}[by]
    raw, _ = six_clips(tmp_path / "raw")
    dataset = build_afew_va(raw, folds=2)[0]["train"]
    splits = kfold_splits(dataset, k=3, by=by, seed=0)
    values = np.asarray(dataset[groups][:])
    assert len(splits) == 3
    all_test = np.concatenate([test for _, test in splits])
    np.testing.assert_array_equal(np.sort(all_test), np.arange(len(dataset)))  # test sets partition the rows
    for train_idx, test_idx in splits:
        assert len(test_idx) and not set(values[train_idx]) & set(values[test_idx])
        assert len(train_idx) + len(test_idx) == len(dataset)
    again = kfold_splits(dataset, k=3, by=by, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))


def test_group_folds_balance_and_seed():
    groups = [f"clip{g}" for g in range(40) for _ in range(g % 5 + 1)]
    folds = assign_group_folds(groups, k=5, seed=0)
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 5  # within one group's size
    assert not np.array_equal(folds, assign_group_folds(groups, k=5, seed=1))
    with pytest.raises(ConfigError, match="cannot make 50 disjoint folds from 40 groups"):
        assign_group_folds(groups, k=50)
    with pytest.raises(ConfigError, match="needs a 'actor' column"):
        kfold_splits({"clip_id": groups}, k=2, by="actor")


def test_malformed_json_names_file_and_line(tmp_path):
    raw, _ = six_clips(tmp_path / "raw")
    path = raw / "002" / "002.json"
    text = path.read_text().splitlines()
    text[3] = text[3] + ",,"
    path.write_text("\n".join(text))
    with pytest.raises(InputFileError, match=r"002.json: line 4: invalid JSON"):
        build_afew_va(raw)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda data: data["frames"]["00001"].pop("arousal"), r"line \d+: frame 00001: missing field 'arousal'"),
        (
            lambda data: data["frames"]["00002"].update(valence=11),
            r"line \d+: frame 00002: valence 11 is outside \[-10, 10\]",
        ),
        (lambda data: data["frames"]["00000"].update(landmarks=[[1, 2]] * 5), r"frame 00000: landmarks must be 68"),
        (lambda data: data.pop("actor"), r"missing or non-string 'actor'"),
        (
            lambda data: data["frames"].update({"00009": data["frames"]["00000"]}),
            r"frame 00009 is listed but .*00009.png does not exist",
        ),
    ],
)
def test_bad_annotation_entries(tmp_path, edit, problem):
    raw, _ = six_clips(tmp_path / "raw")
    path = raw / "003" / "003.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=1))
    with pytest.raises(InputFileError, match=problem) as caught:
        build_afew_va(raw)
    assert "003.json" in str(caught.value)


def test_unmatched_frames_error_or_counted_skip(tmp_path):
    raw, clips = six_clips(tmp_path / "raw")
    (raw / "001" / "00001.png").unlink()  # listed in the JSON, no PNG
    Image.new("RGB", (SIZE, SIZE)).save(raw / "002" / "00007.png")  # PNG, no JSON entry
    with pytest.raises(InputFileError, match=r"(00001.png does not exist|no entry for frame\(s\) 00007)"):
        build_afew_va(raw)
    dataset, summary = build_afew_va(raw, skip_missing=True)
    total = sum(len(labels) for _, labels in clips.values())
    assert len(dataset["train"]) == total - 1
    assert summary.dropped["train"] == {"frame listed in JSON without its PNG": 1, "PNG frame without a JSON entry": 1}


def test_clip_folder_without_json_and_empty_folder(tmp_path):
    raw, _ = six_clips(tmp_path / "raw")
    (raw / "004" / "004.json").unlink()
    with pytest.raises(InputFileError, match=r"004: clip folder has PNG frames but no 004.json"):
        build_afew_va(raw)
    with pytest.raises(InputFileError, match="no AFEW-VA clips found"):
        build_afew_va(tmp_path / "raw" / "004")

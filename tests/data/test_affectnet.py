"""AffectNet loader: both raw layouts, drops, identities, malformed input, save/load round trip."""

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from mtclar_hf.data.affectnet import (
    AFFECTNET_NAMES,
    affectnet_features,
    build_affectnet,
    detect_layout,
    prepare_affectnet,
)
from mtclar_hf.errors import InputFileError

HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
IMAGE_SIZE = 48


def face_landmarks(x0, y0, w, h):
    """68 points spread over a box (x0, y0, w, h): their bounding box is exactly that box."""
    t = np.linspace(0.0, 1.0, 68)
    xs = x0 + w * t
    ys = y0 + h * (0.5 + 0.5 * np.sin(7 * t * np.pi))
    ys[0], ys[1] = y0, y0 + h  # the extremes, exactly
    return np.stack([xs, ys], axis=1).reshape(-1)


def write_image(path, value, fmt="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), value, dtype=np.uint8)
    Image.fromarray(array).save(path, format=fmt)


def affectnet_row(name, expression, valence, arousal, box=(4, 6, 30, 34)):
    landmarks = ";".join(f"{value:.3f}" for value in face_landmarks(*box))
    return [name, *[str(v) for v in box], landmarks, str(expression), str(valence), str(arousal)]


def write_original_affectnet(root, train_rows, val_rows, identities=None, validation_header=True, write_images=True):
    """The original release: Manually_Annotated_Images/<subdir>/<name>.jpg + training.csv / validation.csv."""
    root.mkdir(parents=True, exist_ok=True)
    for file_name, rows, header in (
        ("training.csv", train_rows, True),
        ("validation.csv", val_rows, validation_header),
    ):
        with open(root / file_name, "w", newline="") as handle:
            if header:
                handle.write(HEADER + "\n")
            csv.writer(handle).writerows(rows)
        if write_images:
            for index, row in enumerate(rows):
                write_image(root / "Manually_Annotated_Images" / row[0], 10 * index % 250)
    if identities is not None:
        with open(root / "identities.csv", "w", newline="") as handle:
            handle.write("subDirectory_filePath,identity\n")
            csv.writer(handle).writerows(identities.items())
    return root


def standard_train_rows():
    return [
        affectnet_row("1/a.jpg", 0, 0.1, -0.2),
        affectnet_row("1/b.jpg", 1, 0.8, 0.3),
        affectnet_row("2/c.jpg", 7, -0.5, 0.4),  # Contempt is kept
        affectnet_row("2/d.jpg", 8, -2, -2),  # None
        affectnet_row("2/e.jpg", 9, -2, -2),  # Uncertain
        affectnet_row("3/f.jpg", 10, -2, -2),  # No-Face
        affectnet_row("3/g.jpg", 3, -2, 0.5),  # valence not annotated
        affectnet_row("3/h.jpg", 6, -1.0, 1.0),  # bounds are inclusive
    ]


def write_redistributed_affectnet(root, entries, as_strings=True):
    """The redistributed layout: <split>_set/images/<id>.jpg + annotations/<id>_{exp,val,aro,lnd}.npy."""
    for split_dir, rows in entries.items():
        annotations = root / split_dir / "annotations"
        annotations.mkdir(parents=True, exist_ok=True)
        for image_id, expression, valence, arousal, box in rows:
            write_image(root / split_dir / "images" / f"{image_id}.jpg", 100)
            for kind, value in (("exp", expression), ("val", valence), ("aro", arousal)):
                # Redistributions store the numbers as strings (dtype '<U8'); numbers must work too.
                np.save(annotations / f"{image_id}_{kind}.npy", np.array(str(value) if as_strings else value))
            landmarks = face_landmarks(*box)
            np.save(annotations / f"{image_id}_lnd.npy", landmarks.astype(str) if as_strings else landmarks)
    return root


def test_original_layout_round_trip(tmp_path):
    from datasets import load_from_disk

    raw = write_original_affectnet(
        tmp_path / "raw",
        standard_train_rows(),
        [affectnet_row("4/v.jpg", 2, -0.3, 0.1, box=(0, 0, 48, 40))],
        identities={"1/a.jpg": "person_1", "1/b.jpg": "person_2"},
        validation_header=False,  # the real validation.csv has no header line
    )
    # Excel-made CSVs start with a byte-order mark; it must not hide the header.
    (raw / "training.csv").write_text("\ufeff" + (raw / "training.csv").read_text())
    summary = prepare_affectnet(raw, tmp_path / "out")
    shutil.rmtree(raw)  # the saved dataset must hold the image bytes, not paths into the raw folder
    ds = load_from_disk(str(tmp_path / "out"))

    assert set(ds) == {"train", "validation"}
    assert ds["train"].features == affectnet_features()
    assert ds["train"].features["expression"].names == list(AFFECTNET_NAMES) and len(AFFECTNET_NAMES) == 8
    assert len(ds["train"]) == 4 and len(ds["validation"]) == 1
    train = ds["train"]
    assert train["image_id"][:] == ["1/a.jpg", "1/b.jpg", "2/c.jpg", "3/h.jpg"]
    assert train["expression"][:] == [0, 1, 7, 6]
    np.testing.assert_allclose(train["valence"][:], [0.1, 0.8, -0.5, -1.0], atol=1e-6)
    np.testing.assert_allclose(train["arousal"][:], [-0.2, 0.3, 0.4, 1.0], atol=1e-6)
    assert train["identity"][:] == ["person_1", "person_2", "", ""]
    np.testing.assert_allclose(train[0]["face_box"], [4, 6, 30, 34])
    np.testing.assert_allclose(train[0]["landmarks"], face_landmarks(4, 6, 30, 34), atol=1e-3)
    image = train[1]["image"]
    assert image.size == (IMAGE_SIZE, IMAGE_SIZE)
    assert abs(int(np.asarray(image)[10, 10, 0]) - 10) <= 3  # the bytes of 1/b.jpg (value 10), not another file

    assert summary.kept == {"train": 4, "validation": 1}
    drops = summary.dropped["train"]
    assert drops == {
        "expression 8 (None)": 1,
        "expression 9 (Uncertain)": 1,
        "expression 10 (No-Face)": 1,
        "valence/arousal not annotated (-2)": 1,
    }
    text = summary.format()
    assert "kept 4 rows, dropped 4" in text and "dropped 1: expression 9 (Uncertain)" in text


def test_redistributed_layout_uses_landmark_boxes(tmp_path):
    raw = write_redistributed_affectnet(
        tmp_path / "raw",
        {
            "train_set": [
                ("10", 1, 0.5, 0.25, (2, 3, 20, 30)),
                ("2", 4, -0.5, 0.75, (5, 5, 10, 12)),
                ("3", 8, 0.0, 0.0, (1, 1, 5, 5)),
            ],
            "val_set": [("7", 5, -0.1, 0.2, (0, 0, 40, 44))],
        },
    )
    assert detect_layout(raw) == "redistributed"
    ds, summary = build_affectnet(raw)
    assert ds["train"]["image_id"][:] == ["2", "10"]  # numeric order, code 8 dropped
    assert ds["train"]["expression"][:] == [4, 1]
    np.testing.assert_allclose(ds["train"][0]["face_box"], [5, 5, 10, 12], atol=1e-4)
    np.testing.assert_allclose(ds["validation"][0]["face_box"], [0, 0, 40, 44], atol=1e-4)
    np.testing.assert_allclose(ds["validation"]["arousal"][:], [0.2], atol=1e-6)
    assert summary.dropped["train"] == {"expression 8 (None)": 1}
    assert ds["train"]["identity"][:] == ["", ""]


def test_redistributed_numeric_npy_and_forced_layout(tmp_path):
    raw = write_redistributed_affectnet(
        tmp_path / "raw",
        {"train_set": [("1", 2, 0.1, 0.2, (1, 2, 3, 4))], "val_set": [("2", 3, 0.3, 0.4, (1, 2, 3, 4))]},
        as_strings=False,
    )
    ds, _ = build_affectnet(raw, layout="redistributed")
    assert ds["train"]["expression"][:] == [2]
    with pytest.raises(InputFileError, match="training.csv"):
        build_affectnet(raw, layout="original")


def test_detect_layout_rejects_other_folders(tmp_path):
    with pytest.raises(InputFileError, match="not an AffectNet folder"):
        detect_layout(tmp_path)
    with pytest.raises(InputFileError, match="not found"):
        detect_layout(tmp_path / "nope")


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        (affectnet_row("1/x.jpg", 1, 1.5, 0.0), "valence 1.5 is outside"),
        (affectnet_row("1/x.jpg", 1, 0.0, "nan"), "arousal is nan"),
        (affectnet_row("1/x.jpg", 11, 0.0, 0.0), "expression code 11"),
        (affectnet_row("1/x.jpg", "happy", 0.0, 0.0), "expression 'happy' is not a number"),
        (affectnet_row("1/x.jpg", 1, 0.0, 0.0)[:5] + ["1;2;3", "1", "0", "0"], "facial_landmarks holds 3"),
        (affectnet_row("1/x.jpg", 1, 0.0, 0.0)[:8], "expected 9 comma-separated fields, found 8"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, bad_row, problem):
    rows = [affectnet_row("1/a.jpg", 0, 0.1, 0.1), affectnet_row("1/b.jpg", 1, 0.2, 0.2), bad_row]
    raw = write_original_affectnet(tmp_path / "raw", rows, [affectnet_row("4/v.jpg", 2, 0.0, 0.0)])
    with pytest.raises(InputFileError) as caught:
        build_affectnet(raw)
    message = str(caught.value)
    assert "training.csv, line 4:" in message  # header is line 1, the bad row the 4th line
    assert problem in message
    assert "\n" not in message


def test_bad_header_and_identities_file(tmp_path):
    raw = write_original_affectnet(tmp_path / "raw", [affectnet_row("1/a.jpg", 0, 0.1, 0.1)], [])
    (raw / "identities.csv").write_text("path,person\n1/a.jpg,p\n")
    with pytest.raises(InputFileError, match=r"identities.csv: line 1: expected the header"):
        build_affectnet(raw)
    (raw / "identities.csv").unlink()
    (raw / "training.csv").write_text("subDirectory_filePath,face_x\n")
    with pytest.raises(InputFileError, match=r"training.csv: line 1: expected the header"):
        build_affectnet(raw)


def test_missing_image_is_reported_unless_skipped(tmp_path):
    rows = [affectnet_row("1/a.jpg", 0, 0.1, 0.1), affectnet_row("1/b.jpg", 1, 0.2, 0.2)]
    raw = write_original_affectnet(tmp_path / "raw", rows, [affectnet_row("4/v.jpg", 2, 0.0, 0.0)])
    (raw / "Manually_Annotated_Images" / "1" / "b.jpg").unlink()
    with pytest.raises(InputFileError, match=r"training.csv, line 3: image .*b.jpg not found \(pass --skip-missing"):
        build_affectnet(raw)
    ds, summary = build_affectnet(raw, skip_missing=True)
    assert len(ds["train"]) == 1
    assert summary.dropped["train"] == {"image file missing": 1}


def test_redistributed_malformed_npy(tmp_path):
    raw = write_redistributed_affectnet(
        tmp_path / "raw",
        {"train_set": [("1", 2, 0.1, 0.2, (1, 2, 3, 4))], "val_set": [("2", 3, 0.3, 0.4, (1, 2, 3, 4))]},
    )
    np.save(raw / "train_set" / "annotations" / "1_lnd.npy", np.zeros(10))
    with pytest.raises(InputFileError, match=r"1_lnd.npy: expected 136 finite landmark values, found 10"):
        build_affectnet(raw)
    np.save(raw / "train_set" / "annotations" / "1_val.npy", np.array("high"))
    with pytest.raises(InputFileError, match=r"1_val.npy: not a numeric .npy array"):
        build_affectnet(raw)
    np.save(raw / "train_set" / "annotations" / "1_val.npy", np.array("0.5"))
    (raw / "train_set" / "annotations" / "1_aro.npy").unlink()
    with pytest.raises(InputFileError, match=r"1_aro.npy: annotation file not found"):
        build_affectnet(raw)


def test_many_rows_bulk_landmark_parsing(tmp_path):
    """1k rows go through the bulk (Arrow) landmark parser; every row keeps its own values."""
    boxes = [(i % 7, i % 5, 20 + i % 11, 25 + i % 13) for i in range(1_000)]
    rows = [affectnet_row(f"{i % 50}/{i}.jpg", i % 8, 0.1, -0.1, box=box) for i, box in enumerate(boxes)]
    rows[567][5] += ";"  # a trailing separator, as seen in the wild
    raw = write_original_affectnet(tmp_path / "raw", rows, rows[:3], write_images=False)
    for row in rows:  # build does not decode images: placeholder files are enough
        path = raw / "Manually_Annotated_Images" / row[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"jpg")
    ds, summary = build_affectnet(raw)
    assert summary.kept["train"] == 1_000
    columns = ds["train"].select_columns(["landmarks", "face_box"]).with_format("numpy")[:]
    landmarks = columns["landmarks"]
    for index in (0, 567, 999):
        np.testing.assert_allclose(landmarks[index], face_landmarks(*boxes[index]), atol=1e-3)
    np.testing.assert_allclose(columns["face_box"][999], boxes[999])

"""One face crop on every path: datasets, frame folders and raw video all crop around the 68 landmarks.

Covers: every box source seeding the same landmark crop on a real face; an AffectNet row and an AFEW-VA
frame of the same face preparing to the same crop; the detector path on a real video; the recorded
box source (dataset -> processor) and the warning when a model was trained on other boxes.
"""

import csv
import json
import logging

import numpy as np
from PIL import Image

from mtclar_hf import MTCLARImageProcessor
from mtclar_hf.cli import main
from mtclar_hf.data.afew_va import build_afew_va
from mtclar_hf.data.affectnet import build_affectnet, dataset_box_source
from mtclar_hf.data.synth import render_clip
from mtclar_hf.image_processing_mtclar import LANDMARK_BOX, landmark_boxes, square_crop_region
from mtclar_hf.labeling import FewShotVideoLabeler
from mtclar_hf.labeling.faces import HogDetector, LandmarkPredictor, OpenCVCascadeDetector
from mtclar_hf.labeling.video import read_image_rgb

CSV_HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"


def test_every_box_source_seeds_the_same_crop_on_a_real_face(real_faces_dir):
    """A detector's box, a taller AffectNet-style box and the landmark box itself all lead to one crop."""
    image = read_image_rgb(real_faces_dir / "single_face.jpg")
    predictor = LandmarkPredictor()
    hog = max(HogDetector(fallback=None).detect(image), key=lambda d: d[4])[:4]
    haar = max(OpenCVCascadeDetector().detect(image), key=lambda d: d[2] * d[3])[:4]
    x, y, w, h = landmark_boxes(predictor.predict(image, hog))[0]
    affectnet_style = (x - 0.05 * w, y - 0.35 * h, 1.1 * w, 1.35 * h)  # reaches the forehead, as face_* does
    crops = [
        square_crop_region(landmark_boxes(predictor.predict(image, seed))[0], 0.25)
        for seed in (hog, haar, affectnet_style, (x, y, w, h))
    ]
    assert np.ptp(np.asarray(crops), axis=0).max() <= 4, crops


def _one_rendered_face(size=96):
    clip = render_clip(identity_seed=7, num_frames=1, image_size=size)
    return clip.frames[0], clip.landmarks[0], float(clip.valence[0]), float(clip.arousal[0])


def _write_as_affectnet(root, image, landmarks, valence, arousal, box):
    images = root / "Manually_Annotated_Images" / "1"
    images.mkdir(parents=True)
    Image.fromarray(image).save(images / "face.png")
    row = ["1/face.png", *(f"{v:.2f}" for v in box), ";".join(f"{v:.3f}" for v in landmarks.reshape(-1)), "1",
           f"{valence:.4f}", f"{arousal:.4f}"]
    for name in ("training.csv", "validation.csv"):
        with open(root / name, "w", newline="") as handle:
            handle.write(CSV_HEADER + "\n")
            csv.writer(handle).writerow(row)


def _write_as_afew_va(root, image, landmarks, valence, arousal):
    clip = root / "001"
    clip.mkdir(parents=True)
    Image.fromarray(image).save(clip / "00000.png")
    frames = {"00000": {"valence": round(10 * valence), "arousal": round(10 * arousal), "landmarks": landmarks.tolist()}}
    (clip / "001.json").write_text(json.dumps({"actor": "a", "video_id": "001", "frames": frames}))


def test_an_affectnet_row_and_an_afew_va_frame_of_one_face_give_one_crop(tmp_path):
    image, landmarks, valence, arousal = _one_rendered_face()
    x, y, w, h = landmark_boxes(landmarks)[0]
    taller = (x - 0.05 * w, y - 0.3 * h, 1.1 * w, 1.3 * h)  # a detector-style face_* box reaches the forehead
    _write_as_affectnet(tmp_path / "affectnet", image, landmarks, valence, arousal, taller)
    _write_as_afew_va(tmp_path / "afew_va", image, landmarks, valence, arousal)

    affectnet, summary = build_affectnet(tmp_path / "affectnet")
    afew_va, _ = build_afew_va(tmp_path / "afew_va")
    row, frame = affectnet["train"][0], afew_va["train"][0]
    np.testing.assert_allclose(row["face_box"], frame["face_box"], atol=1e-3)
    processor = MTCLARImageProcessor(resize_size=72, crop_size=64)
    crops = [processor(r["image"], face_boxes=r["face_box"], return_tensors="np")["pixel_values"] for r in (row, frame)]
    np.testing.assert_allclose(crops[0], crops[1], atol=1e-6)
    assert dataset_box_source(affectnet["train"]) == LANDMARK_BOX and summary.box_source == LANDMARK_BOX

    # `--face-box csv` keeps the detector-style box, and says so.
    csv_boxes, csv_summary = build_affectnet(tmp_path / "affectnet", face_box="csv")
    assert dataset_box_source(csv_boxes["train"]) == "affectnet_face_box"
    assert not np.allclose(csv_boxes["train"][0]["face_box"], frame["face_box"], atol=1)


def test_the_detector_path_finds_a_real_face_and_its_landmarks(real_faces_dir, tiny_labeler_parts):
    model, processor = tiny_labeler_parts
    encoded = FewShotVideoLabeler(model, processor).encode(real_faces_dir / "single_face.mp4")
    assert encoded.face_found.mean() >= 0.99
    found = encoded.landmarks[encoded.face_found]
    assert found.shape[1:] == (68, 2) and np.isfinite(found).all()
    np.testing.assert_allclose(encoded.boxes[encoded.face_found], landmark_boxes(found))


def test_the_detector_path_finds_nothing_in_a_video_without_faces(real_faces_dir, tiny_labeler_parts):
    model, processor = tiny_labeler_parts
    encoded = FewShotVideoLabeler(model, processor).encode(real_faces_dir / "no_face.mp4")
    assert not encoded.face_found.any()


def test_a_model_trained_on_other_boxes_warns(tiny_labeler_parts, caplog):
    model, processor = tiny_labeler_parts
    with caplog.at_level(logging.WARNING):
        FewShotVideoLabeler(model, processor, detector=None)
    assert "trained on" not in caplog.text  # a folder saved before the source was recorded: no warning
    other = MTCLARImageProcessor(resize_size=72, crop_size=64, face_box_source="affectnet_face_box")
    with caplog.at_level(logging.WARNING):
        FewShotVideoLabeler(model, other, detector=None)
    assert "trained on 'affectnet_face_box' face boxes" in caplog.text


def test_the_box_source_travels_with_the_processor(tmp_path):
    processor = MTCLARImageProcessor(resize_size=72, crop_size=64, face_box_source=LANDMARK_BOX)
    processor.save_pretrained(tmp_path)
    assert MTCLARImageProcessor.from_pretrained(tmp_path).face_box_source == LANDMARK_BOX
    config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    del config["face_box_source"]  # a folder saved before it was recorded
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    assert MTCLARImageProcessor.from_pretrained(tmp_path).face_box_source == "unknown"


def test_the_processor_crops_from_landmarks():
    image, landmarks, _, _ = _one_rendered_face()
    processor = MTCLARImageProcessor(resize_size=72, crop_size=64)
    by_points = processor(image, landmarks=[landmarks], return_tensors="np")["pixel_values"]
    by_box = processor(image, face_boxes=landmark_boxes(landmarks)[0].tolist(), return_tensors="np")["pixel_values"]
    np.testing.assert_array_equal(by_points, by_box)


def test_prepare_cli_records_the_box_source(tmp_path, capsys):
    image, landmarks, valence, arousal = _one_rendered_face()
    x, y, w, h = landmark_boxes(landmarks)[0]
    _write_as_affectnet(tmp_path / "raw", image, landmarks, valence, arousal, (x, y - 0.3 * h, w, 1.3 * h))
    assert main(["prepare", "affectnet", str(tmp_path / "raw"), "--out", str(tmp_path / "csv"), "--face-box", "csv"]) == 0
    assert "face boxes: affectnet_face_box" in capsys.readouterr().out
    assert "face_box_source: `affectnet_face_box`" in (tmp_path / "csv" / "README.md").read_text()
    import datasets

    assert dataset_box_source(datasets.load_from_disk(str(tmp_path / "csv"))["train"]) == "affectnet_face_box"


def test_label_cli_writes_the_landmarks_it_cropped_around(real_faces_dir, tiny_model_dir, tmp_path):
    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.2,0.1\n40,0.5,0.3\n")
    out = tmp_path / "labels.csv"
    args = ["label", real_faces_dir / "single_face.mp4", "--model", tiny_model_dir, "--support", support]
    assert main([str(a) for a in [*args, "--landmarks", "--out", out, "--quiet"]]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    points = table[[f"lm{i}_{axis}" for i in range(68) for axis in ("x", "y")]].to_numpy().reshape(-1, 68, 2)
    assert table["face_found"].all() and np.isfinite(points).all()
    np.testing.assert_allclose(table[["box_x", "box_y", "box_w", "box_h"]], landmark_boxes(points), atol=1e-6)


def test_evaluate_scores_both_face_paths_on_the_same_support_frames(tiny_model_dir, tmp_path):
    from mtclar_hf.data.synth import write_synthaffect

    write_synthaffect(tmp_path / "synth", num_identities=20, train_images=4, val_images=4, num_clips=4,
                      frames_per_clip=30, num_workers=1)
    reports = {}
    for faces in ("landmarks", "detector"):
        out = tmp_path / f"{faces}.json"
        args = ["evaluate", "--model", tiny_model_dir, "--afew-va", tmp_path / "synth" / "afew_va", "--faces", faces,
                "--k", 10, "--no-cross-actor", "--out", out, "--quiet"]
        assert main([str(a) for a in args]) == 0
        reports[faces] = json.loads(out.read_text())
    assert reports["detector"]["faces"] == "detector" and reports["detector"]["protocol"]["faces"] == "detector"
    assert reports["detector"]["same_video"]["num_videos"] >= 1  # the drawn faces of some clips are found
    for clip, entry in reports["detector"]["same_video"]["per_video"].items():
        landmark_entry = reports["landmarks"]["same_video"]["per_video"][clip]
        assert landmark_entry["num_faces_found"] == landmark_entry["num_frames"]
        # The same support positions: those where the detector found no face are counted, not replaced.
        assert entry["num_support"] + entry["support_without_face"] == landmark_entry["num_support"]

"""How well the face paths reproduce the landmark crop, and where each detector finds faces.

    python -m benchmarks.face_crop [--clips 8] [--frames 150] [--afew-va DIR] [--detect-every N]
                                   [--out results.json] [--figure docs/images/face_crop.png]

* SynthAffect clips (rendered at 128 px as the quick recipe does; `--afew-va DIR` reads AFEW-VA-layout
  clips instead, e.g. the quickstart's held-out clips in `outputs/cache/synthaffect-*/raw/afew_va`): the
  share of frames where a face is found by the boxes-only Haar path (OpenCV's cascade + tracker, no
  landmarks) and by the labeller's detector paths (boxes -> 68 predicted landmarks, the detector on every
  `--detect-every`-th frame of a followed face, and HOG on every frame), and how well the predicted landmark box matches the true one (IoU).
* Real video (`--real-faces DIR` or $MTCLAR_REAL_FACES, holding single_face.mp4 and no_face.mp4): frames with a face in a face clip, and frames
  where a detector fires in a clip without any face (false alarms).
* `--figure`: one rendered face seeded by each box source (its landmark box, a detector-style box reaching
  the forehead, OpenCV's Haar box, dlib's HOG box), with the crop that each seed leads to (docs/FACES.md).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from . import machine, print_table, write_json

CLIP_SIZE = 128  # the quick recipe's render size


def haar_boxes_only(frames):
    """(found (T,), boxes (T, 4)) of the boxes-only Haar path (cascade + tracker with gap bridging)."""
    from mtclar_hf.labeling.faces import FaceTracker, OpenCVCascadeDetector

    detector, tracker = OpenCVCascadeDetector(), FaceTracker(smoothing=0.5)
    boxes = [tracker.update(detector.detect(frame)) for frame in frames]
    found = np.array([box is not None for box in boxes])
    return found, np.array([box if box is not None else (np.nan,) * 4 for box in boxes], dtype=np.float64)


def labeller_path(frames, detector: str, detect_every: int):
    """(found (T,), landmark boxes (T, 4)) of the labeller's face stage with `detector`, detecting on every
    `detect_every`-th frame of a followed face."""
    from mtclar_hf import MTCLARImageProcessor, MTCLARModel
    from mtclar_hf.labeling import FewShotVideoLabeler
    from mtclar_hf.labeling.video import VideoFrame
    from mtclar_hf.testing_utils import tiny_config

    # The face stage alone: the model only has to exist.
    processor = MTCLARImageProcessor(resize_size=72, crop_size=64)
    labeler = FewShotVideoLabeler(MTCLARModel(tiny_config()), processor, detector=detector, detect_every=detect_every)
    video = [VideoFrame(index=i, timestamp=i / 25.0, image=frame) for i, frame in enumerate(frames)]
    records = labeler.find_faces(video)
    found = np.array([r.pixels is not None for r in records])
    boxes = np.array([r.box if r.box is not None else (np.nan,) * 4 for r in records], dtype=np.float64)
    return found, boxes


def box_iou_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from mtclar_hf.labeling.faces import box_iou

    return np.array([box_iou(tuple(x), tuple(y)) for x, y in zip(a, b)])


def rendered_clips(num_clips: int, num_frames: int):
    """(frames (T, S, S, 3), landmarks (T, 68, 2)) of freshly rendered SynthAffect clips."""
    from mtclar_hf.data.synth import _identity_seed, render_clip

    for index in range(num_clips):
        clip = render_clip(_identity_seed(0, index), num_frames, image_size=CLIP_SIZE)
        yield clip.frames, clip.landmarks


def afew_va_clips(folder: Path, num_frames: int):
    """(frames, landmarks) of AFEW-VA-layout clips, their first `num_frames` frames."""
    from mtclar_hf.data.afew_va import load_afew_va_clips

    for clip in load_afew_va_clips(folder):
        frames = [np.asarray(image) for _, image in zip(range(num_frames), clip.iter_images())]
        yield np.stack(frames), clip.landmarks[: len(frames)]


HOG_THRESHOLDS = (0.0, -0.5)


def hog_fires(frames, threshold: float) -> int:
    """Frames where dlib's HOG detector alone (no fallback) returns a face at this decision threshold."""
    from mtclar_hf.labeling.faces import HogDetector

    detector = HogDetector(threshold=threshold, fallback=None)
    return sum(bool(detector.detect(frame)) for frame in frames)


EVERY_FRAME = "hog + landmarks, detect every frame"


def labeller_paths(frames, detect_every: int) -> dict:
    """(found, boxes) of each labeller path: both detectors at `detect_every`, and HOG detecting every frame."""
    paths = {f"{name} + landmarks": labeller_path(frames, name, detect_every) for name in ("hog", "haar")}
    paths[EVERY_FRAME] = labeller_path(frames, "hog", 1)
    return paths


def synth_clips(clips, detect_every: int) -> dict:
    from mtclar_hf.image_processing_mtclar import landmark_boxes

    names = ("haar boxes only", "hog + landmarks", "haar + landmarks", EVERY_FRAME)
    counts = {"frames": 0, **dict.fromkeys(names, 0)}
    fires = dict.fromkeys(HOG_THRESHOLDS, 0)
    ious = {name: [] for name in names}
    num_clips = 0
    for frames, landmarks in clips:
        num_clips += 1
        truth = landmark_boxes(landmarks)
        counts["frames"] += len(frames)
        paths = {"haar boxes only": haar_boxes_only(frames)}
        paths.update(labeller_paths(frames, detect_every))
        for name, (found, boxes) in paths.items():
            counts[name] += int(found.sum())
            ious[name] += box_iou_rows(boxes[found], truth[found]).tolist()
        for threshold in HOG_THRESHOLDS:
            fires[threshold] += hog_fires(frames, threshold)
    return {
        "clips": num_clips,
        "frames": counts["frames"],
        "found_fraction": {k: v / counts["frames"] for k, v in counts.items() if k != "frames"},
        "hog_alone_fires_fraction": {f"threshold {t:g}": n / counts["frames"] for t, n in fires.items()},
        "landmark_box_iou_mean": {k: float(np.mean(v)) if v else None for k, v in ious.items()},
        "landmark_box_iou_p10": {k: float(np.percentile(v, 10)) if v else None for k, v in ious.items()},
    }


def real_videos(folder: Path, detect_every: int) -> dict:
    from mtclar_hf.labeling.video import iter_video_frames

    result = {}
    for clip in ("single_face", "no_face"):
        frames = [f.image for f in iter_video_frames(folder / f"{clip}.mp4")]
        result[clip] = {"frames": len(frames), "haar boxes only": float(haar_boxes_only(frames)[0].mean())}
        for threshold in HOG_THRESHOLDS:
            result[clip][f"hog alone, threshold {threshold:g}"] = hog_fires(frames, threshold) / len(frames)
        for name, (found, _) in labeller_paths(frames, detect_every).items():
            result[clip][name] = float(found.mean())
    return result


def seed_figure(path: Path, identity: int = 6, size: int = 256) -> dict:
    """One rendered face, each box source drawn (thin) with the landmark crop it seeds (thick)."""
    from PIL import Image, ImageDraw

    from mtclar_hf.data.synth import _identity_seed
    from mtclar_hf.data.synth_render import head_box, random_pose, random_scene, render_face, sample_identity
    from mtclar_hf.image_processing_mtclar import MTCLARImageProcessor, landmark_boxes, square_crop_region
    from mtclar_hf.io_utils import atomic_path
    from mtclar_hf.labeling.faces import HogDetector, LandmarkPredictor, OpenCVCascadeDetector

    rng = np.random.default_rng(identity)
    face_identity = sample_identity(_identity_seed(0, identity))
    pose = random_pose(rng, size)
    image, landmarks = render_face(face_identity, 0.3, 0.2, pose, random_scene(rng, size), rng)
    seeds = {
        "68 landmarks": tuple(landmark_boxes(landmarks)[0]),
        "face_* (forehead)": head_box(face_identity, pose),
        "Haar": max(OpenCVCascadeDetector().detect(image), key=lambda d: d[2] * d[3])[:4],
        "HOG": max(HogDetector(fallback=None).detect(image), key=lambda d: d[4])[:4],
    }
    predictor, margin = LandmarkPredictor(), MTCLARImageProcessor.face_margin
    colours = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")
    panels, crops = [], {}
    for (name, seed), colour in zip(seeds.items(), colours):
        box = seed if name == "68 landmarks" else tuple(landmark_boxes(predictor.predict(image, seed))[0])
        left, top, side = square_crop_region(box, margin)
        crops[name] = [left, top, side]
        panel = Image.fromarray(image).convert("RGB")
        draw = ImageDraw.Draw(panel)
        x, y, w, h = seed
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=1)
        draw.rectangle((left, top, left + side, top + side), outline=colour, width=3)
        draw.text((4, 4), f"seed: {name}", fill=colour)
        panels.append(panel)
    sheet = Image.new("RGB", (size * len(panels), size), "white")
    for index, panel in enumerate(panels):
        sheet.paste(panel, (index * size, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return {"figure": str(path), "identity": identity, "crops_left_top_side": crops}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="held-out SynthAffect clips (default 8)")
    parser.add_argument("--frames", type=int, default=150, help="frames per clip (default 150)")
    parser.add_argument("--afew-va", default=None, help="AFEW-VA-layout clips to use instead of rendering new ones")
    parser.add_argument("--figure", default=None, help="also draw the box-source figure to this PNG")
    parser.add_argument("--real-faces", default=os.environ.get("MTCLAR_REAL_FACES"),
                        help="folder holding real clips single_face.mp4 and no_face.mp4 (default: $MTCLAR_REAL_FACES)")
    parser.add_argument("--detect-every", type=int, default=None,
                        help="detector interval of the labeller paths (default: the labeller's own)")
    parser.add_argument("--out", default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    from mtclar_hf.labeling.faces import DEFAULT_DETECT_EVERY

    detect_every = args.detect_every or DEFAULT_DETECT_EVERY

    clips = afew_va_clips(Path(args.afew_va), args.frames) if args.afew_va else rendered_clips(args.clips, args.frames)
    result = {"benchmark": "face_crop", "machine": machine(), "detect_every": detect_every}
    result["synthaffect"] = synth_clips(clips, detect_every)
    result["synthaffect"]["source"] = args.afew_va or f"rendered ({CLIP_SIZE} px)"
    result["real_video"] = real_videos(Path(args.real_faces), detect_every) if args.real_faces else None
    if args.figure:
        result["figure"] = seed_figure(Path(args.figure))
    synth = result["synthaffect"]
    rows = [
        (f"found: {name}", fraction, f"IoU with the true landmark box {synth['landmark_box_iou_mean'].get(name) or 0:.2f}")
        for name, fraction in synth["found_fraction"].items()
    ]
    rows += [(f"HOG alone fires, {name}", value, "no tracking, no fallback") for name, value in synth["hog_alone_fires_fraction"].items()]
    print_table(f"SynthAffect clips ({synth['clips']} clips, {synth['frames']} frames, {synth['source']})", rows)
    if result["real_video"]:
        print_table(
            "Real video: share of frames with a face (no_face: false alarms)",
            [(f"{clip}: {name}", value, "") for clip, row in result["real_video"].items()
             for name, value in row.items() if name != "frames"],
        )
    if args.out:
        write_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

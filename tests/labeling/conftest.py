"""Fixtures for the labelling tests: a tiny saved model, small generated videos, a small AFEW-VA layout."""

import json

import numpy as np
import pytest

FPS = 25.0


def face_like_frames(num_frames: int, size: int = 64, seed: int = 0, mood: np.ndarray | None = None):
    """Frames with a drawn face whose mouth curve follows `mood` (one value in [-1, 1] per frame)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(40, 90, size=3)
    mood = np.sin(np.linspace(0, 3 * np.pi, num_frames)) if mood is None else mood
    centre = size // 2
    for t in range(num_frames):
        image = np.full((size, size, 3), base, dtype=np.uint8)
        cv2.ellipse(image, (centre, centre), (size // 3, size * 2 // 5), 0, 0, 360, (210, 180, 150), -1)
        for dx in (-size // 8, size // 8):
            cv2.circle(image, (centre + dx, centre - size // 10), max(1, size // 20), (30, 30, 30), -1)
        curve = int(mood[t] * size / 10)
        cv2.ellipse(
            image,
            (centre, centre + size // 6),
            (size // 6, abs(curve) + 1),
            0,
            0 if curve >= 0 else 180,
            180 if curve >= 0 else 360,
            (120, 20, 20),
            2,
        )
        yield image


@pytest.fixture(name="face_like_frames")
def face_like_frames_fixture():
    """The frame generator above, for tests that build their own videos."""
    return face_like_frames


@pytest.fixture(scope="session")
def tiny_labeler_parts(tiny_model_dir):
    from mtclar_hf.labeling.loading import load_model_and_processor

    return load_model_and_processor(tiny_model_dir)


@pytest.fixture(scope="session")
def face_video(tmp_path_factory):
    """A 60-frame 64x64 h264 video of a drawn face (use --no-detect: it is a crop already)."""
    from mtclar_hf.labeling.video import write_video

    path = tmp_path_factory.mktemp("videos") / "face.mp4"
    return write_video(face_like_frames(60), path, fps=FPS)


def write_afew_clip(root, clip_id: str, actor: str, num_frames: int, seed: int, size: int = 64):
    """One AFEW-VA clip folder: PNG frames + <clip>.json with integer labels in [-10, 10] and 68 landmarks."""
    from PIL import Image

    folder = root / clip_id
    folder.mkdir(parents=True)
    mood = np.sin(np.linspace(0, 2 * np.pi, num_frames) + seed)
    frames = {}
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 68)), np.sin(np.linspace(0, 2 * np.pi, 68))], axis=1)
    for t, image in enumerate(face_like_frames(num_frames, size=size, seed=seed, mood=mood)):
        name = f"{t:05d}"
        Image.fromarray(image).save(folder / f"{name}.png")
        landmarks = (size / 2 + ring * size / 3).round(2).tolist()
        frames[name] = {
            "valence": int(round(mood[t] * 10)),
            "arousal": int(round(np.cos(t / 5 + seed) * 5)),
            "landmarks": landmarks,
        }
    (folder / f"{clip_id}.json").write_text(json.dumps({"actor": actor, "video_id": clip_id, "frames": frames}))
    return folder


@pytest.fixture(scope="session")
def afew_raw(tmp_path_factory):
    """A raw AFEW-VA layout: 3 clips of 30 frames, 2 actors."""
    root = tmp_path_factory.mktemp("afew_va")
    write_afew_clip(root, "001", "actor_a", 30, seed=1)
    write_afew_clip(root, "002", "actor_a", 30, seed=2)
    write_afew_clip(root, "003", "actor_b", 24, seed=3)
    return root

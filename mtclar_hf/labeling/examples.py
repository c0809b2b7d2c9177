"""SynthAffect example clips for a labelling front end: short face-crop videos whose true labels are known.

They let the demo run with no video at hand, and its summary score the labels against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXAMPLE_SEEDS = (3, 11, 27)  # SynthAffect identities of the example clips
EXAMPLE_FRAMES = 60
EXAMPLE_SIZE = 96


@dataclass
class ExampleClip:
    path: Path
    digest: str  # SHA-256 of the video file: how an upload of it is recognised
    valence: np.ndarray
    arousal: np.ndarray


def write_example_clips(folder: Path, seeds=EXAMPLE_SEEDS, num_frames=EXAMPLE_FRAMES, size=EXAMPLE_SIZE) -> list[ExampleClip]:
    """Render SynthAffect clips as face-crop mp4 videos into `folder`, keeping their true labels."""
    from ..data.synth import face_crop_frames, render_clip
    from ..io_utils import sha256_of
    from .video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for seed in seeds:
        clip = render_clip(seed, num_frames, image_size=size, seed=0)
        path = write_video(face_crop_frames(clip, size), folder / f"synthaffect_{seed}.mp4", fps=clip.fps)
        examples.append(ExampleClip(path, sha256_of([path]), clip.valence.astype(np.float64), clip.arousal.astype(np.float64)))
    return examples


def example_with_digest(examples: list[ExampleClip], digest: str) -> ExampleClip | None:
    return next((example for example in examples if example.digest == digest), None)

"""Which frames of a video to label next, as the support CSV template `mtclar suggest` writes.

The template has one row per frame to label (rank 1 first) with its decoded index and timestamp, and empty
valence and arousal for the user to fill in; filled in, it is a support CSV for `mtclar label --support`.
How the frames are chosen is `support.suggest_frames`.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from .anchors import label_range
from .support import check_support, suggest_frames, support_table
from .video import DEFAULT_FOLDER_FPS


def suggestion_table(
    labeler,
    source,
    *,
    support: dict | None = None,
    support_source: str = "support",
    count: int | None = None,
    budget: float = 0.06,
    fps: float = DEFAULT_FOLDER_FPS,
    progress: bool = False,
):
    """The frames of `source` to label next: `count` of them, or `budget` of its face frames; given the labels
    made so far (`support`, read from `support_source`), the frames they leave least known."""
    encoded = labeler.encode(source, fps=fps, progress=progress)
    if support is not None and encoded.face_found.any():
        check_support(support, encoded.face_found, source=support_source, drop_faceless=True,
                      label_range=label_range(labeler.model))
    if count is not None and count < 1:
        raise ConfigError(f"--count must be >= 1, got {count}")
    chosen = suggest_frames(labeler.model, encoded, count, budget, support)
    return support_table({frame: (math.nan, math.nan) for frame in chosen}, timestamps=encoded.timestamps, ranked=True)

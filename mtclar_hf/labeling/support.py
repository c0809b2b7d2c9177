"""Which frames carry labels (the support set, or anchors), and reading the user's support CSV.

Strategies (all return sorted 0-based frame indices among the frames where a face was found,
because a frame without a face cannot serve as an anchor):

* ``first``     the first face frame only.
* ``every-k``   the first face frame and every k-th frame after it (the reference protocol, k = 20,
                about 5-6 % of frames). A position without a face moves to the next face frame before
                the following position.
* ``fraction``  a labelling budget: ``ceil(budget * n)`` frames spread evenly over the face frames,
                the first one included (budget 0.06 = 6 %).
* ``random``    ``ceil(budget * n)`` face frames drawn at random (seeded).
* ``diverse``   ``ceil(budget * n)`` frames chosen by greedy k-centre (farthest-point) covering of the
                embedding space, starting from the first face frame; the order of choice is a labelling
                priority (`mtclar suggest` prints it), sorted only by `select_support`.
* ``given``     the user's own frames (a support CSV), see `read_support_csv`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError, LabelError

STRATEGIES = ("first", "every-k", "fraction", "random", "diverse", "given")


def budget_count(num_frames: int, budget: float) -> int:
    """How many frames a budget (fraction of frames, in (0, 1]) buys: at least one."""
    if not 0 < budget <= 1:
        raise ConfigError(f"--budget must be a fraction in (0, 1], got {budget}")
    return max(1, math.ceil(budget * num_frames - 1e-9))


def every_k_frames(face_found: np.ndarray, k: int) -> list[int]:
    """First face frame, then every k-th position, each moved forward to a face frame within its stride."""
    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    valid = np.flatnonzero(face_found)
    if not len(valid):
        return []
    chosen = []
    for start in range(int(valid[0]), len(face_found), k):
        candidates = valid[(valid >= start) & (valid < start + k)]
        if len(candidates):
            chosen.append(int(candidates[0]))
    return chosen


def evenly_spaced_frames(face_found: np.ndarray, count: int) -> list[int]:
    valid = np.flatnonzero(face_found)
    count = min(count, len(valid))
    positions = (np.arange(count) * len(valid)) // max(count, 1)
    return [int(valid[p]) for p in positions]


def random_frames(face_found: np.ndarray, count: int, seed: int) -> list[int]:
    valid = np.flatnonzero(face_found)
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(valid, size=min(count, len(valid)), replace=False))


def k_centre_frames(embeddings, face_found: np.ndarray, count: int) -> list[int]:
    """Greedy k-centre on cosine distance: each new frame is the one worst covered by those chosen so far.

    Returns frames in the order chosen, which is the order a user should label them in: every
    prefix covers the embedding space as well as the greedy method can.
    """
    valid = np.flatnonzero(face_found)
    if not len(valid):
        return []
    vectors = np.asarray(embeddings, dtype=np.float32)[valid]
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    chosen = [0]
    distance = 1.0 - vectors @ vectors[0]
    for _ in range(min(count, len(valid)) - 1):
        nxt = int(np.argmax(distance))
        if distance[nxt] <= 0:  # everything left is a duplicate of a chosen frame
            break
        chosen.append(nxt)
        distance = np.minimum(distance, 1.0 - vectors @ vectors[nxt])
    return [int(valid[i]) for i in chosen]


def select_support(
    strategy: str,
    face_found,
    *,
    k: int = 20,
    budget: float = 0.06,
    seed: int = 0,
    embeddings=None,
) -> list[int]:
    """Support frame indices (sorted) chosen by `strategy` among the face frames.

    `given` is not handled here: the user's CSV names the frames itself (`read_support_csv`).
    """
    face_found = np.asarray(face_found, dtype=bool)
    num_valid = int(face_found.sum())
    if strategy == "first":
        return every_k_frames(face_found, len(face_found) + 1)
    if strategy == "every-k":
        return every_k_frames(face_found, k)
    if strategy == "fraction":
        return evenly_spaced_frames(face_found, budget_count(num_valid, budget))
    if strategy == "random":
        return random_frames(face_found, budget_count(num_valid, budget), seed)
    if strategy == "diverse":
        if embeddings is None:
            raise ConfigError("strategy 'diverse' needs the video's embeddings")
        return sorted(k_centre_frames(embeddings, face_found, budget_count(num_valid, budget)))
    if strategy == "given":
        raise ConfigError("strategy 'given' takes its frames from a support CSV (--support)")
    raise ConfigError(f"unknown support strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")


def _check_label(path, frame: int, name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise LabelError(f"{path}: frame {frame}: {name} {value!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelError(f"{path}: frame {frame}: {name} is empty or not finite (fill in every support frame's label)")
    if not -1.0 <= value <= 1.0:
        raise LabelError(f"{path}: frame {frame}: {name} {value} is outside [-1, 1]")
    return value


def read_support_csv(path, video: str | None = None) -> dict[int, tuple[float, float]]:
    """The user's labels: a CSV with columns `frame,valence,arousal` (frame = 0-based decoded index).

    Extra columns are ignored (so a `mtclar suggest` output, once filled in, works as it is). With a
    `video` column, only rows whose video matches `video` (file name or stem) are kept: one CSV can
    carry the labels of a whole batch.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "support CSV not found")
    try:
        table = pd.read_csv(path, dtype={"video": str}) if path.stat().st_size else None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"cannot parse CSV: {err}") from None
    if table is None:
        raise InputFileError(path, "empty support CSV (needs columns frame,valence,arousal)")
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("frame", "valence", "arousal") if c not in table.columns]
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(missing)} (needs frame,valence,arousal)")
    if video is not None and "video" in table.columns:
        names = table["video"].astype(str)
        table = table[(names == Path(video).name) | (names == Path(video).stem)]
    support = {}
    for line, row in zip(table.index + 2, table.itertuples(index=False)):
        try:
            frame = float(row.frame)
        except (TypeError, ValueError):
            frame = math.nan
        if not math.isfinite(frame) or frame != int(frame) or frame < 0:
            raise LabelError(f"{path}: line {line}: frame {row.frame!r} is not a 0-based frame index")
        frame = int(frame)
        if frame in support:
            raise LabelError(f"{path}: line {line}: frame {frame} is listed twice")
        support[frame] = (
            _check_label(path, frame, "valence", row.valence),
            _check_label(path, frame, "arousal", row.arousal),
        )
    return support


def check_support(
    support: dict, face_found, source: str = "video", drop_faceless: bool = False
) -> tuple[dict, list[int]]:
    """Validate support frames against a decoded video; returns (usable anchors, dropped faceless frames).

    A frame index past the end is always an error. A support frame where no face was found cannot be
    an anchor: an error naming it, unless `drop_faceless` (then it is left out of the anchors, with
    the caller warning about it).
    """
    face_found = np.asarray(face_found, dtype=bool)
    for frame, labels in support.items():  # a support dict built in Python skips read_support_csv's checks
        try:
            valence, arousal = labels
        except (TypeError, ValueError):
            raise LabelError(f"{source}: support frame {frame}: expected (valence, arousal), got {labels!r}") from None
        _check_label(source, frame, "valence", valence)
        _check_label(source, frame, "arousal", arousal)
    negative = sorted(f for f in support if f < 0)
    if negative:
        raise LabelError(f"{source}: support frame {negative[0]} is not a 0-based frame index")
    too_far = sorted(f for f in support if f >= len(face_found))
    if too_far:
        raise LabelError(f"{source}: support frame {too_far[0]} is past the last frame ({len(face_found) - 1})")
    faceless = sorted(f for f in support if not face_found[f])
    if faceless and not drop_faceless:
        shown = ", ".join(str(f) for f in faceless[:5])
        raise LabelError(
            f"{source}: no face found in support frame(s) {shown}; pick frames with a face, or leave out --strict to "
            "label from the other support frames"
        )
    usable = {f: support[f] for f in sorted(support) if face_found[f]}
    return usable, faceless

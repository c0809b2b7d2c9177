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
* ``active``    frames chosen from the labels already made (`active_frames`): needs a model and labels,
                so it is simulated by `mtclar evaluate` (`mtclar_hf.labeling.evaluation.active_support`)
                and offered by `mtclar suggest --support`, not picked by `select_support`.
* ``given``     the user's own frames (a support CSV), see `read_support_csv`.

Active selection scores every face frame q that is not yet labelled with

    score(q) = (T(q) + E(q)) / 2 * (1 + D(q))

* T: seconds to the nearest labelled frame, divided by its largest value over the candidates;
* E: cosine distance of q's embedding to the nearest labelled frame's, divided likewise;
* D: how much the two labelled frames nearest in time disagree about q
  (`mtclar_hf.labeling.labeler.anchor_disagreement`), divided likewise (0 with fewer than two labels).

Labelling a frame helps most where no label is near, in time or in appearance (T, E); disagreement
between the anchors marks the stretches the labels there are least sure of, and can at most double
a frame's score, so a frame next to a labelled one (T and E near 0) is never worth labelling however
much the anchors disagree there. Frames are picked greedily: each pick counts as labelled for T and
E (its label is not known yet, so D stays as it was), which spreads the picks out instead of
stacking them on the one stretch where the anchors disagree most.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError, LabelError

STRATEGIES = ("first", "every-k", "fraction", "random", "diverse", "active", "given")


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


def _unit_rows(embeddings) -> np.ndarray:
    vectors = np.asarray(embeddings, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _scaled(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """`values` divided by their largest value over the rows in `among` (all zeros when that is 0)."""
    top = float(values[among].max()) if among.any() else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def active_frames(model, encoded, support: dict, count: int, candidates=None) -> list[int]:
    """The next `count` frames to label given the labelled ones (`support`: {frame: (valence, arousal)}), in
    the order picked: each the best by the score of this module's docstring.

    `encoded` is the video's `EncodedVideo`; `candidates` (a bool mask, default: the face frames) limits
    where frames may be picked, and only face frames ever are. Support frames without a face label
    nothing and count as neither anchors nor candidates. With no usable support frame, the first
    candidate comes first. Fewer than `count` frames come back when the candidates run out.
    """
    from .labeler import anchor_disagreement, anchors_from_support

    face_found = np.asarray(encoded.face_found, dtype=bool)
    allowed = face_found.copy() if candidates is None else face_found & np.asarray(candidates, dtype=bool)
    labelled = sorted(f for f in support if 0 <= f < len(face_found) and face_found[f])
    allowed[[f for f in support if 0 <= f < len(face_found)]] = False
    times = np.asarray(encoded.timestamps, dtype=np.float64)
    vectors = _unit_rows(encoded.embeddings)
    picks: list[int] = []
    if count < 1:
        return picks
    if not labelled and allowed.any():
        first = int(np.flatnonzero(allowed)[0])
        picks.append(first)
        allowed[first] = False
    reference = labelled + picks
    if not reference:
        return []
    time_gap, look_gap = np.full(len(times), np.inf), np.full(len(times), np.inf)
    for frame in reference:  # one labelled frame at a time: memory stays O(frames) on long videos
        time_gap = np.minimum(time_gap, np.abs(times - times[frame]))
        look_gap = np.minimum(look_gap, 1.0 - vectors @ vectors[frame])
    disagreement = np.zeros(len(face_found))
    rows = np.flatnonzero(allowed)
    if len(labelled) >= 2 and len(rows):
        anchors = anchors_from_support(encoded, {f: support[f] for f in labelled})
        values = anchor_disagreement(model, encoded.embeddings[rows], times[rows], anchors)
        disagreement[rows] = np.nan_to_num(values, nan=0.0)
    boost = 1.0 + _scaled(disagreement, allowed)
    while len(picks) < count and allowed.any():
        score = 0.5 * (_scaled(time_gap, allowed) + _scaled(look_gap, allowed)) * boost
        score[~allowed] = -np.inf
        pick = int(np.argmax(score))
        picks.append(pick)
        allowed[pick] = False
        time_gap = np.minimum(time_gap, np.abs(times - times[pick]))
        look_gap = np.minimum(look_gap, 1.0 - vectors @ vectors[pick])
    return picks


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
    if strategy == "active":
        raise ConfigError(
            "strategy 'active' picks frames from the labels already made: `mtclar suggest --support` for a video, "
            "`mtclar evaluate --strategy active` to simulate it"
        )
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


def _read_frame_table(path, what: str):
    """A CSV with columns frame,valence,arousal (names trimmed, any case) as a DataFrame; one-line errors naming it."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, f"{what} not found")
    try:
        table = pd.read_csv(path, dtype={"video": str}) if path.stat().st_size else None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"cannot parse CSV: {err}") from None
    if table is None:
        raise InputFileError(path, f"empty {what} (needs columns frame,valence,arousal)")
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("frame", "valence", "arousal") if c not in table.columns]
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(missing)} (needs frame,valence,arousal)")
    return table


def _frames_and_labels(path, table, keep_unlabelled: bool) -> dict[int, tuple[float, float]]:
    """{frame: (valence, arousal)} of the table's rows, each checked; with `keep_unlabelled`, rows whose valence
    and arousal are both empty are left out instead of refused."""
    labels = {}
    for line, row in zip(table.index + 2, table.itertuples(index=False)):
        try:
            frame = float(row.frame)
        except (TypeError, ValueError):
            frame = math.nan
        if not math.isfinite(frame) or frame != int(frame) or frame < 0:
            raise LabelError(f"{path}: line {line}: frame {row.frame!r} is not a 0-based frame index")
        frame = int(frame)
        if frame in labels:
            raise LabelError(f"{path}: line {line}: frame {frame} is listed twice")
        if keep_unlabelled and _is_empty(row.valence) and _is_empty(row.arousal):
            continue
        labels[frame] = (
            _check_label(path, frame, "valence", row.valence),
            _check_label(path, frame, "arousal", row.arousal),
        )
    return labels


def _is_empty(value) -> bool:
    return value is None or isinstance(value, float) and math.isnan(value)


def read_support_csv(path, video: str | None = None) -> dict[int, tuple[float, float]]:
    """The user's labels: a CSV with columns `frame,valence,arousal` (frame = 0-based decoded index).

    Extra columns are ignored (so a `mtclar suggest` output, once filled in, works as it is). With a
    `video` column, only rows whose video matches `video` (file name or stem) are kept: one CSV can
    carry the labels of a whole batch.
    """
    table = _read_frame_table(path, "support CSV")
    if video is not None and "video" in table.columns:
        names = table["video"].astype(str)
        table = table[(names == Path(video).name) | (names == Path(video).stem)]
    return _frames_and_labels(Path(path), table, keep_unlabelled=False)


def read_label_csv(path) -> dict[int, tuple[float, float]]:
    """A video's ground truth for `mtclar evaluate --videos`: CSV `frame,valence,arousal`, one row per labelled
    frame (0-based decoded index), values in [-1, 1]. Frames without a row, or with both values empty, are
    unlabelled: never support, never scored. Extra columns are ignored."""
    labels = _frames_and_labels(Path(path), _read_frame_table(path, "label CSV"), keep_unlabelled=True)
    if not labels:
        raise LabelError(f"{path}: no labelled frame (needs rows frame,valence,arousal)")
    return labels


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

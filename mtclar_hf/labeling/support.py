"""Which frames carry labels (the support set, or anchors), and the support tables and CSVs that list them:
read, checked against the model's label range (`split_support_rows`) and written (`write_support_csv`).

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

Active selection measures how far each face frame q is from the labelled frames,

    d(q, r) = |t(q) - t(r)| / S + L (1 - cos(e(q), e(r))),    d(q) = min over labelled r of d(q, r),

in time (seconds, over the span S of the face frames) and in look (cosine distance of the embeddings,
weighed by L = `ACTIVE_LOOK_WEIGHT`, chosen on SynthAffect's validation clips: docs/LABELLING.md),
and weighs each frame by w(q) = 1 + D(q), where D is how much the two labelled frames nearest in time
disagree about q (`mtclar_hf.labeling.anchors.anchor_disagreement`, divided by its largest value over
the video; 0 with fewer than two labels). Labelling a frame p brings every frame q that is nearer to
p than to any label closer to one, so its score is that gain summed over the video:

    score(p) = sum over face frames q of w(q) * max(0, d(q) - d(q, p)).

A frame far from every label in time and in look, among many frames like it, scores highest, and
more where the labels disagree; a frame next to a label gains nothing however much they disagree
there. Frames are picked greedily, each pick counting as labelled for d before the next (its label
is not known yet, so D stays as it was): the picks spread out over the video instead of piling up
on one stretch. Summing the gain over the frames (rather than taking the farthest frame, as k-centre
does) weighs how many frames a label would serve, so an outlying frame or the very last frame is not
preferred to the middle of a long unlabelled stretch. Long videos are scored on at most
`ACTIVE_CANDIDATES` candidates and `ACTIVE_COVERED` covered frames, each evenly spaced.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError, LabelError
from .tables import read_csv_table

STRATEGIES = ("first", "every-k", "fraction", "random", "diverse", "active", "given")
ACTIVE_CANDIDATES = 1000  # frames one pick chooses among; with ACTIVE_COVERED, bounds the work on long videos
ACTIVE_COVERED = 4000  # frames whose distance to a label is counted
ACTIVE_LOOK_WEIGHT = 0.5  # look (embedding) distance against time distance in d(q, r)


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
    vectors = _unit_rows(np.asarray(embeddings, dtype=np.float32)[valid])
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


def _evenly(rows: np.ndarray, most: int) -> np.ndarray:
    """At most `most` of `rows`, evenly spaced (all of them when they are few enough)."""
    if len(rows) <= most:
        return rows
    return rows[np.linspace(0, len(rows) - 1, most).round().astype(int)]


def suggest_frames(model, encoded, count: int | None = None, budget: float = 0.06, support: dict | None = None) -> list[int]:
    """The frames to label (what `mtclar suggest` and the demo propose): `count` of them, else the `budget` share of
    the frames with a face. Without `support`, k-centre over the embeddings; with the labels made so far
    ({frame: (v, a)}), the next frames given them (`active_frames`). One-line errors when there is nothing to
    suggest."""
    num_faces = int(encoded.face_found.sum())
    if num_faces == 0:
        raise InputFileError(encoded.source, "no face found in any frame: nothing to label")
    count = count if count is not None else budget_count(num_faces, budget)
    if count < 1:
        raise ConfigError(f"the number of frames to suggest must be >= 1, got {count}")
    if support is None:
        return k_centre_frames(encoded.embeddings, encoded.face_found, count)
    chosen = active_frames(model, encoded, support, count)
    if not chosen:
        raise ConfigError(f"{encoded.source}: every frame with a face is labelled already: nothing left to suggest")
    return chosen


def active_frames(model, encoded, support: dict, count: int, candidates=None) -> list[int]:
    """The next `count` frames to label given the labelled ones (`support`: {frame: (valence, arousal)}), in
    the order picked: each the best by the score of this module's docstring.

    `encoded` is the video's `EncodedVideo`; `candidates` (a bool mask, default: the face frames) limits
    where frames may be picked, and only face frames ever are. Support frames without a face label
    nothing and count as neither anchors nor candidates. With no usable support frame, the first
    candidate comes first. Fewer than `count` frames come back when the candidates run out.
    """
    from .anchors import anchor_disagreement, anchors_from_support

    face_found = np.asarray(encoded.face_found, dtype=bool)
    allowed = face_found.copy() if candidates is None else face_found & np.asarray(candidates, dtype=bool)
    allowed[[f for f in support if 0 <= f < len(face_found)]] = False
    labelled = sorted(f for f in support if 0 <= f < len(face_found) and face_found[f])
    picks: list[int] = []
    if count < 1 or not allowed.any():
        return picks
    if not labelled:
        picks.append(int(np.flatnonzero(allowed)[0]))
        allowed[picks[0]] = False
    times = np.asarray(encoded.timestamps, dtype=np.float64)
    vectors = _unit_rows(encoded.embeddings)
    faces = np.flatnonzero(face_found)
    span = max(float(times[faces[-1]] - times[faces[0]]), 1e-9)
    covered = _evenly(faces, ACTIVE_COVERED)

    def distance(frames) -> np.ndarray:
        """d(q, r) (len(frames), covered frames)."""
        frames = np.asarray(frames, dtype=int)
        seconds = np.abs(times[frames][:, None] - times[covered][None, :]) / span
        return seconds + ACTIVE_LOOK_WEIGHT * (1.0 - vectors[frames] @ vectors[covered].T)

    nearest = distance(labelled + picks).min(axis=0)
    weight = np.ones(len(covered))
    if len(labelled) >= 2:
        anchors = anchors_from_support(encoded, {f: support[f] for f in labelled})
        disagreement = np.nan_to_num(anchor_disagreement(model, encoded.embeddings[covered], times[covered], anchors))
        if disagreement.max() > 0:
            weight += disagreement / disagreement.max()
    pool = _evenly(np.flatnonzero(allowed), ACTIVE_CANDIDATES)
    to_pool = distance(pool)
    gain = (weight * np.maximum(0.0, nearest[None, :] - to_pool)).sum(axis=1)
    for _ in range(min(count - len(picks), len(pool))):
        row = int(np.argmax(gain))
        picks.append(int(pool[row]))
        # Only the covered frames the pick is now nearest to change anyone's gain: update those columns, not
        # the whole (candidates, covered) matrix, at every pick.
        closer = to_pool[row] < nearest
        served = to_pool[:, closer]
        gain -= (weight[closer] * (np.maximum(0.0, nearest[closer] - served) - np.maximum(0.0, to_pool[row, closer] - served))).sum(axis=1)
        nearest[closer] = to_pool[row, closer]
        gain[row] = -np.inf
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


def parse_cell(value) -> float | str:
    """A table cell as a float (NaN when empty), or the text when it is not a number: Gradio hands edited cells
    over as text, and a CSV column with one word in it is read as text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _is_empty(cell) -> bool:
    return isinstance(cell, float) and math.isnan(cell)


def _check_label(source, frame: int, name: str, value, label_range, place=None) -> float:
    """`value` as a float in `label_range` (None: any finite number; the labeller checks the model's range), or a
    one-line error naming the frame (at `place`, a row or line of `source`, for a missing label)."""
    value, place = parse_cell(value), place or source
    if isinstance(value, str):
        raise LabelError(f"{place}: frame {frame} has no {name}: {value!r} is not a number")
    if not math.isfinite(value):
        raise LabelError(f"{place}: frame {frame} has no {name} (it is empty or not finite): fill it in or remove the row")
    if label_range is not None:
        low, high = label_range
        if not low <= value <= high:
            raise LabelError(f"{source}: frame {frame}: {name} {value} is outside [{low:g}, {high:g}]")
    return value


def split_support_rows(
    table, source: str, row_place, num_frames: int | None = None, label_range=None
) -> tuple[dict[int, tuple[float, float]], list[int]]:
    """(labelled {frame: (valence, arousal)}, frames listed with neither label yet) of a frame,valence,arousal table.

    Every support table and CSV is checked here. `row_place(i)` names the row of index i in messages. Fully
    empty rows are skipped (Gradio adds one with "Add row"). A frame must be a 0-based index, of the video when
    `num_frames` is given, and listed once; a row with one label of two, or a label outside `label_range`, is an
    error naming the row.
    """
    support, unlabelled = {}, []
    for index, frame, valence, arousal in table[["frame", "valence", "arousal"]].itertuples():
        cells = [parse_cell(frame), parse_cell(valence), parse_cell(arousal)]
        if all(map(_is_empty, cells)):
            continue
        number = cells[0] if isinstance(cells[0], float) else math.nan
        end = num_frames if num_frames is not None else math.inf
        if not (math.isfinite(number) and number == int(number) and 0 <= number < end):
            what = f"a frame of this video (0-{num_frames - 1})" if num_frames is not None else "a 0-based frame index"
            raise LabelError(f"{row_place(index)}: frame {frame!r} is not {what}")
        number = int(number)
        if number in support or number in unlabelled:
            raise LabelError(f"{row_place(index)}: frame {number} is listed twice")
        if all(map(_is_empty, cells[1:])):
            unlabelled.append(number)
            continue
        support[number] = tuple(
            _check_label(source, number, name, value, label_range, row_place(index))
            for name, value in (("valence", valence), ("arousal", arousal))
        )
    return support, sorted(unlabelled)


def split_support_table(table, num_frames: int | None, label_range=None):
    """`split_support_rows` of the table a user edits (a DataFrame, or what Gradio hands over), rows numbered from 1."""
    import pandas as pd

    if table is None or pd.DataFrame(table).empty:
        return {}, []
    table = pd.DataFrame(table).reset_index(drop=True)
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("frame", "valence", "arousal") if c not in table.columns]
    if missing:
        raise LabelError(f"support table: missing column(s) {', '.join(missing)}")
    return split_support_rows(table, "support table", lambda i: f"support table row {i + 1}", num_frames, label_range)


def _read_frame_table(path, what: str):
    """A CSV with columns frame,valence,arousal (a batch's may add `video`) as a DataFrame."""
    return read_csv_table(path, what, ("frame", "valence", "arousal"), dtype={"video": str})


def _split_csv(path, table, label_range) -> tuple[dict[int, tuple[float, float]], list[int]]:
    """`split_support_rows` of a CSV's table, rows named by their line in the file (the header is line 1)."""
    return split_support_rows(table, str(path), lambda i: f"{path}: line {i + 2}", label_range=label_range)


def read_support_csv(path, video: str | None = None, label_range=None) -> dict[int, tuple[float, float]]:
    """The user's labels: a CSV with columns `frame,valence,arousal` (frame = 0-based decoded index).

    Extra columns are ignored (so a `mtclar suggest` output, once filled in, works as it is). With a
    `video` column, only rows whose video matches `video` (file name or stem) are kept: one CSV can
    carry the labels of a whole batch. Every listed frame needs both labels, in `label_range`.
    """
    table = _read_frame_table(path, "support CSV")
    if video is not None and "video" in table.columns:
        names = table["video"].astype(str)
        table = table[(names == Path(video).name) | (names == Path(video).stem)]
    support, unlabelled = _split_csv(path, table, label_range)
    if unlabelled:
        raise LabelError(f"{path}: frame {unlabelled[0]} has no labels (they are empty): fill them in or remove the row")
    return support


def read_label_csv(path, label_range=None) -> dict[int, tuple[float, float]]:
    """A video's ground truth for `mtclar evaluate --videos`: CSV `frame,valence,arousal`, one row per labelled
    frame (0-based decoded index), values in `label_range`. Frames without a row, or with both values empty, are
    unlabelled: never support, never scored. Extra columns are ignored."""
    labels, _ = _split_csv(path, _read_frame_table(path, "label CSV"), label_range)
    if not labels:
        raise LabelError(f"{path}: no labelled frame (needs rows frame,valence,arousal)")
    return labels


def read_support_rows(path, num_frames: int | None = None, label_range=None) -> dict:
    """A support CSV as the rows of the table a user edits ({frame: (valence, arousal)}, NaN for frames not
    labelled yet), checked like that table (`split_support_table`); errors name the file."""
    table = _read_frame_table(path, "support CSV")
    try:
        support, unlabelled = split_support_table(table, num_frames, label_range)
    except LabelError as err:
        raise InputFileError(path, str(err)) from None
    return {**support, **{frame: (math.nan, math.nan) for frame in unlabelled}}


def support_table(rows: dict, timestamps=None, ranked: bool = False):
    """Support rows {frame: (valence, arousal)} as a table in the dict's order, NaN (an empty cell) where not
    labelled yet: `frame,valence,arousal`, with `timestamps` (per frame of the video) a `timestamp` column after
    the frame, and when `ranked` a 1-based `rank` first (the order to label them in)."""
    import pandas as pd

    frames = list(rows)
    columns = {"rank": range(1, len(frames) + 1)} if ranked else {}
    columns["frame"] = np.array(frames, dtype=np.int64)
    if timestamps is not None:
        columns["timestamp"] = np.asarray(timestamps, dtype=np.float64)[frames].round(4)
    columns["valence"] = np.array([rows[f][0] for f in frames], dtype=np.float64)
    columns["arousal"] = np.array([rows[f][1] for f in frames], dtype=np.float64)
    return pd.DataFrame(columns)


def write_support_csv(rows: dict, path) -> Path:
    """Support rows as a CSV sorted by frame (empty cells for frames not labelled yet), atomically: what
    `read_support_rows` reads back, and, once filled in, `read_support_csv`."""
    from ..io_utils import atomic_write_text

    atomic_write_text(path, support_table(dict(sorted(rows.items()))).to_csv(index=False))
    return Path(path)


def check_support(
    support: dict, face_found, source: str = "video", drop_faceless: bool = False, label_range=None
) -> tuple[dict, list[int]]:
    """Validate support frames against a decoded video; returns (usable anchors, dropped faceless frames).

    Labels must be in `label_range`. A frame index past the end is always an error. A support frame where no face was found cannot be
    an anchor: an error naming it, unless `drop_faceless` (then it is left out of the anchors, with
    the caller warning about it).
    """
    face_found = np.asarray(face_found, dtype=bool)
    for frame, labels in support.items():  # a support dict built in Python skips read_support_csv's checks
        try:
            valence, arousal = labels
        except (TypeError, ValueError):
            raise LabelError(f"{source}: support frame {frame}: expected (valence, arousal), got {labels!r}") from None
        _check_label(source, frame, "valence", valence, label_range)
        _check_label(source, frame, "arousal", arousal, label_range)
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

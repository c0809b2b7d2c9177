"""On-the-fly image pairs for MT-CLAR training, over any prepared dataset.

A pair (A, B) carries the targets the model needs: ``similarity_labels`` (1 similar, 0 dissimilar),
``valence_diff_labels = v(A) - v(B)`` and ``arousal_diff_labels = a(A) - a(B)``.

Similarity modes:

- ``"category"`` (the reference default): similar when A and B have the same AffectNet category. As in
  the authors' code, the anchor's category is drawn uniformly, so rare categories are not drowned out.
- ``"wheel"``: similar when the two categories are the same or neighbours on an emotion wheel. The paper
  says it used Mikels' Wheel of emotions, but its exact rule is NOT public; the rule here is our own,
  documented one: the seven non-neutral AffectNet categories sit on an open arc in the order of their
  angle on the valence/arousal circumplex, ``Happy - Surprise - Fear - Anger - Disgust - Contempt - Sad``,
  and a category is similar to itself and to the ``wheel_radius`` categories on either side (Sad and
  Happy are NOT neighbours: the arc is open between them). Neutral is only similar to itself. Pass
  ``wheel_order`` / ``wheel_radius`` to change it.
- ``"va-distance"``: similar when the Euclidean distance between the two (valence, arousal) points is
  below ``va_threshold`` (works without categories, e.g. on AFEW-VA). Partners are drawn from the rows
  within / beyond the threshold using a grid over the VA plane with cells of the threshold's size, so
  a draw looks at nine cells, not the whole dataset.

Every epoch has exactly ``ceil(n/2)`` similar and ``floor(n/2)`` dissimilar pairs, in a seeded random
order. Pair ``i`` of epoch ``e`` is a pure function of (seed, e, i) — identical in every DataLoader
worker and every run — and :meth:`PairDataset.set_epoch` draws new pairs for a new epoch.

``identity="same"`` takes B from A's identity (column ``identity``, or ``actor`` for AFEW-VA),
``"cross"`` from another identity; ``"any"`` ignores identities. The reference's known weakness is
anchors from a different person, which ``"cross"`` lets one train against.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError
from .transforms import as_image_transform

MODES = ("category", "wheel", "va-distance")
IDENTITY_MODES = ("any", "same", "cross")
WHEEL_ORDER = ("Happy", "Surprise", "Fear", "Anger", "Disgust", "Contempt", "Sad")
IDENTITY_COLUMNS = ("identity", "actor")
# Anchors tried before concluding that no pair of the requested kind exists (va-distance only; the
# category modes know exactly which anchors have partners).
MAX_ANCHOR_TRIES = 200
# Uniform draws tried for a va-distance partner before scanning the candidates exactly.
MAX_REJECTION_TRIES = 64


def wheel_similarity(names, order=WHEEL_ORDER, radius: int = 1) -> np.ndarray:
    """(C, C) bool: category i similar to j under the wheel rule described in the module docstring."""
    position = {name: index for index, name in enumerate(order)}
    similar = np.eye(len(names), dtype=bool)
    for i, first in enumerate(names):
        for j, second in enumerate(names):
            if first in position and second in position:
                similar[i, j] |= abs(position[first] - position[second]) <= radius
    return similar


def _read_columns(dataset, names: list[str]) -> dict:
    """Label columns as numpy arrays, without decoding images."""
    return dataset.select_columns(names).with_format("numpy")[:]


class PairDataset(torch.utils.data.Dataset):
    """Balanced, seeded similar/dissimilar image pairs drawn on the fly from a prepared dataset.

    Args:
        dataset: a `datasets.Dataset` with ``image``, ``valence``, ``arousal`` (and ``expression`` for the
            category modes, ``face_box`` to crop faces, ``identity``/``actor`` for identity pairing).
        mode: "category", "wheel" or "va-distance".
        num_pairs: pairs per epoch (default: the number of rows).
        seed: base seed; pairs and augmentations depend only on (seed, epoch, index).
        transform: a :class:`~mtclar_hf.data.transforms.TrainAugment`, an image processor (eval), or a
            callable ``(image, face_box, rng) -> (3, S, S) float array``; default: the image processor.
        identity: "any", "same" or "cross".
        va_threshold: the similarity threshold of "va-distance".
        categories: class ids to draw from in the category modes (default: all present).
    """

    def __init__(
        self,
        dataset,
        mode: str = "category",
        num_pairs: int | None = None,
        seed: int = 0,
        transform=None,
        identity: str = "any",
        va_threshold: float = 0.3,
        categories=None,
        wheel_order=WHEEL_ORDER,
        wheel_radius: int = 1,
    ):
        if mode not in MODES:
            raise ConfigError(f"pair mode must be one of {list(MODES)}, not {mode!r}")
        if identity not in IDENTITY_MODES:
            raise ConfigError(f"identity must be one of {list(IDENTITY_MODES)}, not {identity!r}")
        if hasattr(dataset, "keys") and not hasattr(dataset, "column_names"):
            raise ConfigError("PairDataset needs one split (e.g. dataset['train']), not a DatasetDict")
        for column in ("image", "valence", "arousal"):
            if column not in dataset.column_names:
                raise ConfigError(f"PairDataset needs a {column!r} column; the dataset has {dataset.column_names}")
        if mode == "va-distance" and not va_threshold > 0:
            raise ConfigError(f"va_threshold must be > 0, got {va_threshold}")
        self.dataset = dataset
        self.mode = mode
        self.num_pairs = len(dataset) if num_pairs is None else int(num_pairs)
        if self.num_pairs < 1:
            raise ConfigError(f"num_pairs must be >= 1, got {num_pairs}")
        self.seed = int(seed)
        self.epoch = 0
        self.identity = identity
        self.va_threshold = float(va_threshold)
        self.transform = as_image_transform(transform)
        self._images = dataset.select_columns([name for name in ("image", "face_box") if name in dataset.column_names])
        labels = _read_columns(dataset, ["valence", "arousal"])
        self.valence = np.asarray(labels["valence"], dtype=np.float32)
        self.arousal = np.asarray(labels["arousal"], dtype=np.float32)
        self.identity_codes = self._identity_codes(dataset)
        self._epoch_labels = None
        if mode == "va-distance":
            self._build_va_grid()
        else:
            self._build_category_pools(dataset, categories, wheel_order, wheel_radius)

    # ----------------------------------------------------------------------------------- set-up

    def _identity_codes(self, dataset) -> np.ndarray:
        """Integer identity per row (all zeros for identity="any")."""
        if self.identity == "any":
            return np.zeros(len(dataset), dtype=np.int64)
        column = next((name for name in IDENTITY_COLUMNS if name in dataset.column_names), None)
        if column is None:
            raise ConfigError(f"identity={self.identity!r} needs an 'identity' or 'actor' column; the dataset has none")
        values = np.asarray(_read_columns(dataset, [column])[column]).astype(str)
        unknown = int((values == "").sum())
        if unknown:
            raise ConfigError(
                f"identity={self.identity!r} needs a known {column!r} for every row; {unknown} of {len(values)} rows have none "
                "(real AffectNet has no identities: use identity='any')"
            )
        return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)

    def _build_category_pools(self, dataset, categories, wheel_order, wheel_radius) -> None:
        if "expression" not in dataset.column_names:
            raise ConfigError(
                f"pair mode {self.mode!r} needs an 'expression' column; use mode='va-distance' for this dataset"
            )
        expression = np.asarray(_read_columns(dataset, ["expression"])["expression"], dtype=np.int64)
        present = np.unique(expression)
        self.categories = np.array(sorted(present if categories is None else categories), dtype=np.int64)
        missing = sorted(set(self.categories.tolist()) - set(present.tolist()))
        if missing:
            raise ConfigError(f"categories {missing} have no rows in the dataset")
        if len(self.categories) < 2:
            raise ConfigError(f"pair mode {self.mode!r} needs at least 2 categories, found {self.categories.tolist()}")
        lookup = np.full(max(expression.max(), self.categories.max()) + 1, -1, dtype=np.int64)
        lookup[self.categories] = np.arange(len(self.categories))
        self.row_category = lookup[expression]  # -1: category not used
        if self.mode == "category":
            self.relation = np.eye(len(self.categories), dtype=bool)
        else:
            feature = dataset.features["expression"]
            names = [
                feature.int2str(int(code)) if hasattr(feature, "int2str") else str(code) for code in self.categories
            ]
            self.relation = wheel_similarity(names, wheel_order, wheel_radius)

        used = np.flatnonzero(self.row_category >= 0)
        num_identities = int(self.identity_codes.max()) + 1 if len(used) else 1
        # Rows of each category sorted by identity, so one identity is a contiguous block.
        self.counts = np.zeros((num_identities, len(self.categories)), dtype=np.int64)
        np.add.at(self.counts, (self.identity_codes[used], self.row_category[used]), 1)
        self.block_start = np.cumsum(self.counts, axis=0) - self.counts
        self.members = []
        for category in range(len(self.categories)):
            rows = used[self.row_category[used] == category]
            self.members.append(rows[np.argsort(self.identity_codes[rows], kind="stable")])

        # Anchors that have at least one partner of each kind, per category: the draws never dead-end.
        self.eligible = {}
        available = self._available(used)
        for similar in (True, False):
            partners = available * self._relation_mask(self.row_category[used], similar)
            rows = used[partners.sum(axis=1) > 0]
            per_category = [rows[self.row_category[rows] == c] for c in range(len(self.categories))]
            anchor_categories = [c for c, members in enumerate(per_category) if len(members)]
            if not anchor_categories:
                kind = "similar" if similar else "dissimilar"
                raise ConfigError(
                    f"no {kind} pair exists with mode={self.mode!r}, identity={self.identity!r} in this dataset"
                )
            self.eligible[similar] = (anchor_categories, per_category)

    def _available(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), C) number of possible partners of each row in each category (itself excluded)."""
        own = np.zeros((len(rows), len(self.categories)), dtype=np.int64)
        own[np.arange(len(rows)), self.row_category[rows]] = 1
        total = self.counts.sum(axis=0)[None, :]
        same_identity = self.counts[self.identity_codes[rows]]
        if self.identity == "same":
            return same_identity - own
        if self.identity == "cross":
            return total - same_identity
        return total - own

    def _relation_mask(self, row_categories: np.ndarray, similar: bool) -> np.ndarray:
        mask = self.relation[row_categories]
        return mask if similar else ~mask

    def _build_va_grid(self) -> None:
        points = np.stack([self.valence, self.arousal], axis=1).astype(np.float64)
        self.va_points = points
        cells = np.floor(points / self.va_threshold).astype(np.int64)
        self.row_cell = cells
        order = np.lexsort((cells[:, 1], cells[:, 0]))
        keys = cells[order]
        boundaries = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
        groups = (order[begin:end] for begin, end in _spans(boundaries, len(order)))
        self.grid = {(int(cells[group[0], 0]), int(cells[group[0], 1])): group for group in groups}

    # ----------------------------------------------------------------------------------- sampling

    def __len__(self) -> int:
        return self.num_pairs

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of pairs (and augmentations) for ``epoch``."""
        self.epoch = int(epoch)
        self._epoch_labels = None

    def similarity_labels(self) -> np.ndarray:
        """This epoch's similarity label of every pair: exactly ceil(n/2) ones, in a seeded order."""
        if self._epoch_labels is None or self._epoch_labels[0] != self.epoch:
            order = np.random.default_rng([self.seed, self.epoch, 0]).permutation(self.num_pairs)
            self._epoch_labels = (self.epoch, (order < math.ceil(self.num_pairs / 2)).astype(np.int64))
        return self._epoch_labels[1]

    def pair_indices(self, index: int) -> tuple[int, int, int]:
        """(row of A, row of B, similarity label) of pair ``index`` this epoch, without loading images."""
        if not 0 <= index < self.num_pairs:
            raise IndexError(f"pair index {index} out of range for {self.num_pairs} pairs")
        similar = bool(self.similarity_labels()[index])
        rng = np.random.default_rng([self.seed, self.epoch, 1, index])
        if self.mode == "va-distance":
            anchor, partner = self._draw_va_pair(rng, similar)
        else:
            anchor, partner = self._draw_category_pair(rng, similar)
        return int(anchor), int(partner), int(similar)

    def _draw_category_pair(self, rng: np.random.Generator, similar: bool) -> tuple[int, int]:
        anchor_categories, per_category = self.eligible[similar]
        category = anchor_categories[rng.integers(len(anchor_categories))]
        anchor = per_category[category][rng.integers(len(per_category[category]))]
        available = (
            self._available(np.array([anchor]))[0] * self._relation_mask(self.row_category[[anchor]], similar)[0]
        )
        partner_categories = np.flatnonzero(available > 0)
        partner_category = partner_categories[rng.integers(len(partner_categories))]
        return anchor, self._draw_member(rng, anchor, partner_category)

    def _draw_member(self, rng: np.random.Generator, anchor: int, category: int) -> int:
        """A uniform row of ``category`` other than ``anchor``, under the identity rule."""
        members = self.members[category]
        identity = self.identity_codes[anchor]
        start, count = self.block_start[identity, category], self.counts[identity, category]
        if self.identity == "cross":
            position = rng.integers(len(members) - count)
            return members[position + count if position >= start else position]
        low, high = (start, start + count) if self.identity == "same" else (0, len(members))
        while True:  # at least one other member exists (eligibility), so this ends quickly
            candidate = members[rng.integers(low, high)]
            if candidate != anchor:
                return candidate

    def _identity_ok(self, anchor: int, rows: np.ndarray) -> np.ndarray:
        if self.identity == "same":
            return self.identity_codes[rows] == self.identity_codes[anchor]
        if self.identity == "cross":
            return self.identity_codes[rows] != self.identity_codes[anchor]
        return np.ones(len(rows), dtype=bool)

    def _draw_va_pair(self, rng: np.random.Generator, similar: bool) -> tuple[int, int]:
        for _ in range(MAX_ANCHOR_TRIES):
            anchor = int(rng.integers(len(self.va_points)))
            partner = self._va_similar_partner(rng, anchor) if similar else self._va_dissimilar_partner(rng, anchor)
            if partner is not None:
                return anchor, partner
        kind = "similar (closer than" if similar else "dissimilar (at least"
        raise ConfigError(
            f"could not find {kind} va_threshold={self.va_threshold} in valence/arousal) pairs with identity={self.identity!r} "
            f"after {MAX_ANCHOR_TRIES} anchors; change va_threshold"
        )

    def _va_similar_partner(self, rng: np.random.Generator, anchor: int) -> int | None:
        """A uniform row closer than the threshold: rejection sampling over the 3x3 cells around the anchor.

        The threshold circle covers pi/9 of those cells, so a few uniform draws usually suffice; after
        MAX_REJECTION_TRIES the cells are scanned exactly (sparse neighbourhoods, identity filters).
        """
        cell_v, cell_a = self.row_cell[anchor]
        cells = [self.grid.get((cell_v + dv, cell_a + da)) for dv in (-1, 0, 1) for da in (-1, 0, 1)]
        cells = [rows for rows in cells if rows is not None]
        ends = np.cumsum([len(rows) for rows in cells])
        point = self.va_points[anchor]
        for _ in range(MAX_REJECTION_TRIES):
            position = int(rng.integers(ends[-1]))
            cell = int(np.searchsorted(ends, position, side="right"))
            candidate = int(cells[cell][position - (ends[cell - 1] if cell else 0)])
            if (
                candidate != anchor
                and self._va_close(point, candidate)
                and self._identity_ok(anchor, np.array([candidate]))[0]
            ):
                return candidate
        rows = np.concatenate(cells)
        distance = np.linalg.norm(self.va_points[rows] - point, axis=1)
        rows = rows[(distance < self.va_threshold) & (rows != anchor) & self._identity_ok(anchor, rows)]
        return None if len(rows) == 0 else int(rows[rng.integers(len(rows))])

    def _va_close(self, point: np.ndarray, row: int) -> bool:
        delta_v, delta_a = self.va_points[row] - point
        return math.hypot(delta_v, delta_a) < self.va_threshold

    def _va_dissimilar_partner(self, rng: np.random.Generator, anchor: int) -> int | None:
        point = self.va_points[anchor]
        for _ in range(MAX_REJECTION_TRIES):
            candidate = int(rng.integers(len(self.va_points)))
            if not self._va_close(point, candidate) and self._identity_ok(anchor, np.array([candidate]))[0]:
                return candidate
        # Most rows are close to this anchor: scan them all once.
        rows = np.flatnonzero(np.linalg.norm(self.va_points - point, axis=1) >= self.va_threshold)
        rows = rows[self._identity_ok(anchor, rows)]
        return None if len(rows) == 0 else int(rows[rng.integers(len(rows))])

    # ----------------------------------------------------------------------------------- items

    def _pixels(self, row: int, rng: np.random.Generator) -> torch.Tensor:
        example = self._images[row]
        pixels = self.transform(example["image"], example.get("face_box"), rng)
        return torch.as_tensor(np.asarray(pixels, dtype=np.float32))

    def __getitem__(self, index: int) -> dict:
        anchor, partner, similar = self.pair_indices(int(index))
        rng = np.random.default_rng([self.seed, self.epoch, 2, int(index)])
        return {
            "pixel_values_a": self._pixels(anchor, rng),
            "pixel_values_b": self._pixels(partner, rng),
            "similarity_labels": torch.tensor(similar, dtype=torch.long),
            "valence_diff_labels": torch.tensor(self.valence[anchor] - self.valence[partner], dtype=torch.float32),
            "arousal_diff_labels": torch.tensor(self.arousal[anchor] - self.arousal[partner], dtype=torch.float32),
        }


def _spans(boundaries: np.ndarray, length: int):
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [length]])
    return zip(starts.tolist(), ends.tolist())


__all__ = ["MODES", "WHEEL_ORDER", "PairDataset", "wheel_similarity"]

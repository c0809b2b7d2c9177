"""Group k-fold splits: no frame of a test clip (or of a test actor) is ever in training.

AFEW-VA has no official split, and frames of one clip are near-duplicates, so a random frame split
leaks (one public repository reports CCC > 0.95 by testing on training frames). Every split here
keeps whole groups — clips, or actors, which implies clips — on one side.

Folds are assigned by visiting the groups in a seeded random order and giving each to the fold with
the fewest frames so far, which keeps fold sizes within one group of each other while the seed still
changes which groups go together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

GROUP_COLUMNS = {"clip": "clip_id", "actor": "actor", "identity": "identity"}


def fold_column_name(by: str) -> str:
    """The column of a prepared dataset that stores the folds of mode ``by`` (e.g. "fold_clip")."""
    _check_by(by)
    return f"fold_{by}"


def _check_by(by: str) -> None:
    if by not in GROUP_COLUMNS:
        raise ConfigError(f"split mode must be one of {sorted(GROUP_COLUMNS)}, not {by!r}")


def assign_group_folds(groups: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """Fold index (0..k-1) for every row, with all rows of one group in the same fold."""
    if k < 2:
        raise ConfigError(f"k-fold needs k >= 2, got {k}")
    unique, inverse, counts = np.unique(
        np.asarray(groups, dtype=object).astype(str), return_inverse=True, return_counts=True
    )
    if len(unique) < k:
        raise ConfigError(f"cannot make {k} disjoint folds from {len(unique)} groups; use k <= {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_group = np.empty(len(unique), dtype=np.int32)
    load = np.zeros(k, dtype=np.int64)
    for group in order:
        fold = int(np.argmin(load))  # ties go to the lowest fold index: deterministic
        fold_of_group[group] = fold
        load[fold] += counts[group]
    return fold_of_group[inverse.reshape(-1)]


def _group_values(dataset, by: str) -> list[str]:
    column = GROUP_COLUMNS[by]
    names = getattr(dataset, "column_names", None) or list(dataset.keys())
    if column not in names:
        raise ConfigError(f"split by {by!r} needs a {column!r} column; the dataset has {sorted(names)}")
    return list(dataset[column])


def kfold_splits(dataset, k: int = 5, by: str = "clip", seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group k-fold over a prepared dataset: a list of k ``(train_indices, test_indices)`` pairs.

    ``by`` is "clip" (groups = ``clip_id``), "actor" (``actor``) or "identity" (``identity``).
    ``dataset`` is a `datasets.Dataset` or any mapping of column name -> values. Indices are sorted
    int64 arrays into ``dataset``; the test sets partition all rows.
    """
    _check_by(by)
    folds = assign_group_folds(_group_values(dataset, by), k, seed)
    rows = np.arange(len(folds), dtype=np.int64)
    return [(rows[folds != fold], rows[folds == fold]) for fold in range(k)]


__all__ = ["assign_group_folds", "fold_column_name", "kfold_splits"]

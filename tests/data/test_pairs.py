"""PairDataset: balance, determinism, similarity rules, identity pairing, targets, scale."""

import time

import numpy as np
import pytest
import torch
from PIL import Image

from mtclar_hf.data.affectnet import AFFECTNET_NAMES, affectnet_features, dataset_from_columns
from mtclar_hf.data.pairs import PairDataset, wheel_similarity
from mtclar_hf.data.transforms import TrainAugment
from mtclar_hf.errors import ConfigError
from mtclar_hf.training.data import collate


def make_dataset(tmp_path, expressions, identities=None, valence=None, arousal=None):
    """An AffectNet-featured dataset over a few tiny PNGs (rows share image files)."""
    n = len(expressions)
    paths = []
    for index in range(4):
        path = tmp_path / f"img{index}.png"
        if not path.exists():
            Image.fromarray(np.full((32, 32, 3), 40 * index + 20, dtype=np.uint8)).save(path)
        paths.append(path)
    rng = np.random.default_rng(0)
    columns = {
        "image": [paths[i % 4] for i in range(n)],
        "expression": np.asarray(expressions, dtype=np.int64),
        "valence": np.asarray(valence if valence is not None else rng.uniform(-1, 1, n), dtype=np.float32),
        "arousal": np.asarray(arousal if arousal is not None else rng.uniform(-1, 1, n), dtype=np.float32),
        "face_box": np.tile([2, 2, 28, 28], (n, 1)),
        "landmarks": np.zeros((n, 136)),
        "image_id": [str(i) for i in range(n)],
        "identity": identities if identities is not None else [""] * n,
    }
    return dataset_from_columns(columns, affectnet_features())


@pytest.fixture
def dataset(tmp_path):
    # Category 7 (Contempt) has a single image: it can never be the anchor of a similar pair.
    expressions = [0] * 10 + [1] * 8 + [2] * 6 + [3] * 5 + [7]
    identities = [f"p{i % 3}" for i in range(len(expressions))]
    return make_dataset(tmp_path, expressions, identities)


@pytest.mark.parametrize("mode", ["category", "wheel", "va-distance"])
@pytest.mark.parametrize("num_pairs", [41, 60])
def test_exact_balance_each_epoch(dataset, mode, num_pairs):
    pairs = PairDataset(dataset, mode=mode, num_pairs=num_pairs, seed=0, va_threshold=0.5)
    for epoch in range(3):
        pairs.set_epoch(epoch)
        labels = [pairs.pair_indices(i)[2] for i in range(num_pairs)]
        assert sum(labels) == (num_pairs + 1) // 2


def test_deterministic_in_seed_epoch_index(dataset):
    first = PairDataset(dataset, num_pairs=30, seed=5)
    second = PairDataset(dataset, num_pairs=30, seed=5)
    draws = [first.pair_indices(i) for i in range(30)]
    assert draws == [second.pair_indices(i) for i in reversed(range(30))][::-1]  # order of access is irrelevant
    assert draws != [PairDataset(dataset, num_pairs=30, seed=6).pair_indices(i) for i in range(30)]
    first.set_epoch(1)
    assert draws != [first.pair_indices(i) for i in range(30)]
    first.set_epoch(0)
    assert draws == [first.pair_indices(i) for i in range(30)]


def test_category_rule_and_single_image_category(dataset):
    expression = np.asarray(dataset["expression"][:])
    pairs = PairDataset(dataset, mode="category", num_pairs=400, seed=1)
    seen_contempt = False
    for i in range(400):
        a, b, similar = pairs.pair_indices(i)
        assert a != b
        assert (expression[a] == expression[b]) == bool(similar)
        seen_contempt |= 7 in (expression[a], expression[b])
    assert seen_contempt  # the single-image category still takes part, in dissimilar pairs


def test_anchor_categories_drawn_uniformly(dataset):
    expression = np.asarray(dataset["expression"][:])
    pairs = PairDataset(dataset, mode="category", num_pairs=2000, seed=2)
    anchors = np.array([expression[pairs.pair_indices(i)[0]] for i in range(2000)])
    share = np.mean(anchors == 0)  # 10 of 30 rows, but 1 of 5 categories (~1/4 of similar, 1/5 of dissimilar)
    assert 0.17 < share < 0.28


def test_wheel_rule():
    names = list(AFFECTNET_NAMES)
    similar = wheel_similarity(names)
    index = {name: i for i, name in enumerate(names)}
    assert similar[index["Happy"], index["Surprise"]] and similar[index["Surprise"], index["Fear"]]
    assert similar[index["Disgust"], index["Contempt"]] and similar[index["Contempt"], index["Sad"]]
    assert not similar[index["Happy"], index["Sad"]]  # the arc is open between them
    assert not similar[index["Neutral"], index["Happy"]] and similar[index["Neutral"], index["Neutral"]]
    assert (similar == similar.T).all()
    wide = wheel_similarity(names, radius=2)
    assert wide[index["Happy"], index["Fear"]] and not similar[index["Happy"], index["Fear"]]


def test_wheel_pairs_follow_the_rule(dataset):
    expression = np.asarray(dataset["expression"][:])
    rule = wheel_similarity(list(AFFECTNET_NAMES))
    pairs = PairDataset(dataset, mode="wheel", num_pairs=200, seed=0)
    for i in range(200):
        a, b, similar = pairs.pair_indices(i)
        assert rule[expression[a], expression[b]] == bool(similar)


def test_va_distance_pairs_respect_threshold(dataset):
    valence, arousal = np.asarray(dataset["valence"][:]), np.asarray(dataset["arousal"][:])
    pairs = PairDataset(dataset, mode="va-distance", num_pairs=300, seed=0, va_threshold=0.6)
    for i in range(300):
        a, b, similar = pairs.pair_indices(i)
        distance = np.hypot(valence[a] - valence[b], arousal[a] - arousal[b])
        assert a != b and (distance < 0.6) == bool(similar)


@pytest.mark.parametrize("mode", ["category", "va-distance"])
def test_identity_same_and_cross(dataset, mode):
    identity = np.asarray(dataset["identity"][:])
    for rule in ("same", "cross"):
        pairs = PairDataset(dataset, mode=mode, identity=rule, num_pairs=200, seed=3, va_threshold=0.8)
        for i in range(200):
            a, b, _ = pairs.pair_indices(i)
            assert (identity[a] == identity[b]) == (rule == "same")


def test_identity_needs_known_identities(tmp_path):
    unknown = make_dataset(tmp_path, [0, 0, 1, 1])
    with pytest.raises(ConfigError, match="needs a known 'identity' for every row"):
        PairDataset(unknown, identity="same")
    with pytest.raises(ConfigError, match="needs an 'identity' or 'actor' column"):
        PairDataset(unknown.remove_columns("identity"), identity="cross")


def test_impossible_requests_fail_clearly(tmp_path):
    one_category = make_dataset(tmp_path, [1, 1, 1])
    with pytest.raises(ConfigError, match="at least 2 categories"):
        PairDataset(one_category)
    singletons = make_dataset(tmp_path, [0, 1, 2])
    with pytest.raises(ConfigError, match="no similar pair exists"):
        PairDataset(singletons)
    with pytest.raises(ConfigError, match="needs an 'expression' column; use mode='va-distance'"):
        PairDataset(singletons.remove_columns("expression"))
    far = make_dataset(tmp_path, [0, 1, 2], valence=[-1, 0, 1], arousal=[0, 0, 0])
    with pytest.raises(ConfigError, match="could not find similar"):
        PairDataset(far, mode="va-distance", va_threshold=0.5, num_pairs=2).pair_indices(0)
    with pytest.raises(ConfigError, match="pair mode must be one of"):
        PairDataset(far, mode="emotion")


def test_items_targets_and_dataloader(dataset):
    valence, arousal = np.asarray(dataset["valence"][:]), np.asarray(dataset["arousal"][:])
    pairs = PairDataset(dataset, num_pairs=8, seed=0, transform=TrainAugment(resize_size=36, crop_size=32))
    item = pairs[3]
    a, b, similar = pairs.pair_indices(3)
    assert item["pixel_values_a"].shape == (3, 32, 32) and item["pixel_values_a"].dtype == torch.float32
    assert item["similarity_labels"].dtype == torch.long and int(item["similarity_labels"]) == similar
    assert item["valence_diff_labels"].item() == pytest.approx(valence[a] - valence[b], abs=1e-6)
    assert item["arousal_diff_labels"].item() == pytest.approx(arousal[a] - arousal[b], abs=1e-6)
    torch.testing.assert_close(pairs[3]["pixel_values_b"], item["pixel_values_b"])  # augmentation is seeded too
    loader = torch.utils.data.DataLoader(pairs, batch_size=4, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["pixel_values_b"].shape == (4, 3, 32, 32) and batch["similarity_labels"].shape == (4,)


def test_eval_transform_is_default(dataset):
    pairs = PairDataset(dataset, num_pairs=2, seed=0)
    assert pairs[0]["pixel_values_a"].shape == (3, 256, 256)


def test_large_dataset_sampling_is_fast(tmp_path):
    """100k rows: set-up and 2,000 draws stay quick in every mode (no O(N) work per pair)."""
    n = 100_000
    rng = np.random.default_rng(0)
    columns = {
        "image": [str(tmp_path / "unused.png")] * n,
        "expression": rng.integers(0, 8, n),
        "valence": rng.uniform(-1, 1, n).astype(np.float32),
        "arousal": rng.uniform(-1, 1, n).astype(np.float32),
        "face_box": np.zeros((n, 4)),
        "landmarks": np.zeros((n, 136)),
        "image_id": [""] * n,
        "identity": [f"p{i % 500}" for i in range(n)],
    }
    dataset = dataset_from_columns(columns, affectnet_features())
    for mode, identity in (("category", "cross"), ("va-distance", "any")):
        start = time.perf_counter()
        pairs = PairDataset(dataset, mode=mode, identity=identity, seed=0, va_threshold=0.3)
        labels = [pairs.pair_indices(i)[2] for i in range(2000)]
        assert sum(labels) == 1000 or len(pairs) > 2000
        assert time.perf_counter() - start < 15, mode

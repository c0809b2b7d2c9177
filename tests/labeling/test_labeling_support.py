"""Support strategies and the user's support CSV."""

import numpy as np
import pytest

from mtclar_hf.errors import ConfigError, InputFileError, LabelError
from mtclar_hf.labeling.support import check_support, k_centre_frames, read_support_csv, select_support


def test_first_and_every_k():
    found = np.ones(50, bool)
    assert select_support("first", found) == [0]
    assert select_support("every-k", found, k=20) == [0, 20, 40]
    found[:3] = False
    found[20] = False
    assert select_support("first", found) == [3]
    # positions start at the first face frame; a faceless position moves to the next face frame
    assert select_support("every-k", found, k=20) == [3, 23, 43]
    found[23:43] = False
    assert select_support("every-k", found, k=20) == [3, 43]


def test_fraction_is_a_budget_spread_evenly():
    found = np.ones(100, bool)
    chosen = select_support("fraction", found, budget=0.06)
    assert len(chosen) == 6 and chosen[0] == 0
    assert np.diff(chosen).max() - np.diff(chosen).min() <= 1
    with pytest.raises(ConfigError):
        select_support("fraction", found, budget=0)


def test_random_is_seeded_and_uses_face_frames_only():
    found = np.zeros(200, bool)
    found[::2] = True
    a = select_support("random", found, budget=0.1, seed=3)
    assert a == select_support("random", found, budget=0.1, seed=3)
    assert a != select_support("random", found, budget=0.1, seed=4)
    assert len(a) == 10 and all(found[i] for i in a) and a == sorted(a)


def test_diverse_covers_the_embedding_space():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8) * 10
    cluster = np.repeat(np.arange(3), [40, 5, 15])
    embeddings = centres[cluster] + rng.normal(scale=0.1, size=(60, 8))
    order = k_centre_frames(embeddings, np.ones(60, bool), 3)
    assert order[0] == 0 and sorted(cluster[order]) == [0, 1, 2]  # one frame from each cluster, even the small one
    assert select_support("diverse", np.ones(60, bool), budget=0.05, embeddings=embeddings) == sorted(order)
    with pytest.raises(ConfigError, match="embeddings"):
        select_support("diverse", np.ones(60, bool))


def test_unknown_or_given_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown"):
        select_support("best", np.ones(5, bool))
    with pytest.raises(ConfigError, match="support CSV"):
        select_support("given", np.ones(5, bool))


def test_read_support_csv(tmp_path):
    path = tmp_path / "support.csv"
    path.write_text("rank,frame,valence,arousal,timestamp\n1,10,0.5,-0.25,0.4\n2,0,-1,1,0\n")
    assert read_support_csv(path) == {10: (0.5, -0.25), 0: (-1.0, 1.0)}
    batch = tmp_path / "batch.csv"
    batch.write_text("video,frame,valence,arousal\na.mp4,0,0.1,0.2\nb,3,0.3,0.4\n")
    assert read_support_csv(batch, video="b.mp4") == {3: (0.3, 0.4)}


@pytest.mark.parametrize(
    "body,error,match",
    [
        ("frame,valence\n0,0.1\n", InputFileError, "arousal"),
        ("frame,valence,arousal\n0,1.5,0\n", LabelError, "outside"),
        ("frame,valence,arousal\n0,0.1,0\n0,0.2,0\n", LabelError, "twice"),
        ("frame,valence,arousal\n4,,0.3\n", LabelError, "empty"),
        ("frame,valence,arousal\n-1,0.1,0.3\n", LabelError, "frame index"),
        ("frame,valence,arousal\n2.5,0.1,0.3\n", LabelError, "frame index"),
        ("", InputFileError, "empty"),
    ],
)
def test_bad_support_csv_is_a_one_line_error(tmp_path, body, error, match):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(error, match=match) as info:
        read_support_csv(path, label_range=(-1.0, 1.0))
    assert "\n" not in str(info.value) and "bad.csv" in str(info.value)


def test_support_labels_are_checked_in_the_range_given(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("frame,valence,arousal\n0,1.5,-2\n")
    assert read_support_csv(path, label_range=(-2.0, 2.0)) == {0: (1.5, -2.0)}  # a model with a wider range
    assert read_support_csv(path) == {0: (1.5, -2.0)}  # no model yet: the labeller checks its range later
    with pytest.raises(LabelError, match=r"valence 1.5 is outside \[-1, 1\]"):
        read_support_csv(path, label_range=(-1.0, 1.0))
    with pytest.raises(LabelError, match=r"outside \[-1, 1\]"):
        check_support({0: (1.5, -2.0)}, np.array([True]), label_range=(-1.0, 1.0))


def test_check_support():
    found = np.array([True, False, True])
    assert check_support({0: (0.1, 0.2), 2: (0.0, 0.0)}, found) == ({0: (0.1, 0.2), 2: (0.0, 0.0)}, [])
    with pytest.raises(LabelError, match="past the last frame"):
        check_support({3: (0.0, 0.0)}, found)
    with pytest.raises(LabelError, match="no face found in support frame"):
        check_support({1: (0.0, 0.0)}, found)
    assert check_support({0: (0.1, 0.2), 1: (0.0, 0.0)}, found, drop_faceless=True) == ({0: (0.1, 0.2)}, [1])

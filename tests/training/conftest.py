"""Fixtures for the training tests."""

import pytest
from training_helpers import build_tiny_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A tiny prepared AffectNet-like dataset, built once per test process."""
    return build_tiny_dataset(tmp_path_factory.mktemp("tiny_dataset") / "prepared")

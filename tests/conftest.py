"""Shared fixtures: tiny models and the demo dataset are built once per test session."""
from pathlib import Path

import pytest

from ChimeraPipe.datasets.demo import make_shapes_dataset
from ChimeraPipe.models.tiny import build_tiny_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for kind in ("diffusion", "clip", "grounding_dino", "sam"):
        build_tiny_model(kind, root)
    return root


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", seed=0)

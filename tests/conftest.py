"""Shared fixtures: tiny models and the demo dataset are built once per test session."""
from pathlib import Path

import pytest

from ChimeraPipe.datasets.demo import make_shapes_dataset
from ChimeraPipe.models.tiny import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
# The two end-to-end workflow runs hold most of `make test`'s time. First in the order, they start at once on
# make test's two pytest-xdist workers (`--dist loadfile`: a file's tests, and its module fixture, on one
# worker), and the unit tests fill in beside them, instead of one worker reaching them halfway through.
FIRST = ("test_mini_workflow.py", "test_workflow.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for kind in ("diffusion", "clip", "grounding_dino", "sam"):
        build_tiny_model(kind, root)
    return root


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", seed=0)

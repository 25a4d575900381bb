"""Small helpers the tests share: the demo ImageFolder's shots and splits, and a classifier trained the way
the classify stage trains one."""
from __future__ import annotations

import pandas as pd

from ChimeraPipe.classify.backends import make_backend
from ChimeraPipe.classify.loop import train_classifier
from ChimeraPipe.core.images import load_rgb
from ChimeraPipe.datasets import dataset_table, draw_shots, split_rows


def shots_of(root, classes: list[str], shots: int, seed: int) -> pd.DataFrame:
    """K seeded shots per class from an ImageFolder root's train split, each checked readable."""
    chosen = draw_shots(dataset_table("imagefolder", root), classes, shots, seed)
    for path in chosen["path"]:
        load_rgb(path)
    return chosen


def images_of(root, split: str, classes: list[str]) -> pd.DataFrame:
    """An ImageFolder split's images: class, label (index in `classes`), path."""
    return split_rows(dataset_table("imagefolder", root), split, classes)[["class", "label", "path"]]


def train(cfg, table: pd.DataFrame, classes: list[str], out, clip: str | None = None, prompts=None, val=None,
          device: str = "cpu") -> dict:
    """train_classifier with the backend cfg names (prompts default to 'a photo of a <class>')."""
    prompts = prompts or [f"a photo of a {c}" for c in classes]
    return train_classifier(lambda: make_backend(cfg, classes, prompts, clip, device), table, cfg, out, device,
                            val=val)

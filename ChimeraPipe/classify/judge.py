"""The dataset judge: the CNN backend trained on every real training image of a dataset and scored on its
evaluation split. Its features are a gap-metric space; its predictions say whether a synthetic image shows
its class."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.io import write_json
from ..core.runtime import resolve_precision
from .backends import CnnBackend
from .loop import predict, train_classifier


def fit_judge(train: pd.DataFrame, test: pd.DataFrame, classes: list[str], out_path: str | Path, cfg,
              device: str = "cpu") -> dict:
    """`train` / `test`: rows with path and label; cfg: classifier settings with backend 'cnn'. Writes the
    CNN (safetensors + JSON, `test_accuracy` in it)."""
    if cfg.backend != "cnn":
        raise ValueError(f"the judge is a CNN; got backend {cfg.backend!r}")
    rows = pd.DataFrame({"path": train["path"], "label": train["label"], "real": True})
    backend = None

    def make():
        nonlocal backend
        backend = CnnBackend(classes, cfg, device)
        return backend

    meta = train_classifier(make, rows, cfg, out_path, device)
    predicted = predict(backend, list(test["path"]), device, resolve_precision(device, cfg.precision),
                        num_workers=cfg.num_workers or 0)
    meta["test_accuracy"] = float((predicted == test["label"].to_numpy()).mean())
    write_json(Path(out_path).with_suffix(".json"), meta)
    return meta

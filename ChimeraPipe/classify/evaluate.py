"""Evaluation of a trained classifier on a dataset's test images: accuracy overall, per class and per group
of classes (e.g. a long-tail dataset's head and tail), with its predictions written beside."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.io import write_csv, write_json
from ..core.runtime import resolve_precision
from .backends import load_classifier
from .loop import predict


def evaluate_classifier(classifier_path: str | Path, test: pd.DataFrame, classes: list[str],
                        out_json: str | Path, out_predictions: str | Path, device: str = "cpu",
                        batch_size: int = 64, tags: dict | None = None, groups: dict[str, list[str]] | None = None,
                        num_workers: int = 0) -> dict:
    """`test`: rows with class, label (index in `classes`) and path; images decoded by `num_workers` workers."""
    backend, meta = load_classifier(classifier_path, device)
    precision = resolve_precision(device, meta["config"]["precision"])
    result = test[["class", "label", "path"]].copy()
    result["predicted"] = predict(backend, list(test["path"]), device, precision, batch_size, num_workers)
    correct = result["predicted"] == result["label"]
    per_class = {name: float(correct[result["label"] == i].mean()) if (result["label"] == i).any() else float("nan")
                 for i, name in enumerate(classes)}
    metrics = {"accuracy": float(correct.mean()),
               "mean_per_class_accuracy": float(np.nanmean(list(per_class.values()))),
               "per_class": per_class, "n_test": int(len(result)), "classifier": str(classifier_path),
               "group_accuracy": {name: float(correct[result["class"].isin(members)].mean())
                                  for name, members in (groups or {}).items()},
               "tags": tags or {}}
    write_csv(out_predictions, result)
    write_json(out_json, metrics)
    return metrics

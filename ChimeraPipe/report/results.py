"""Evaluation and gap-metric JSONs read into tidy tables (one row per file)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.names import split_eval_tag, tag_alpha


def _generation(tag: str) -> tuple[str, int | None, float | None]:
    gen, volume = split_eval_tag(tag)
    return gen, volume, tag_alpha(gen)


def collect_evaluations(paths: list[str]) -> pd.DataFrame:
    """dataset, method, synthetic (classifier tag), generation, volume, alpha, seed, shots, with_real,
    accuracy and mean per-class accuracy (%), and head / tail accuracy (%) where the dataset has groups."""
    rows = []
    for path in paths:
        metrics = json.loads(Path(path).read_text())
        tags = metrics["tags"]   # written by the evaluate rule: dataset, method, synthetic, shots, seed, ...
        gen, volume, alpha = _generation(tags["synthetic"])
        row = {"dataset": tags.get("dataset"), "method": tags.get("method"), "synthetic": tags.get("synthetic"),
               "generation": gen, "volume": volume, "alpha": alpha, "seed": tags.get("seed"),
               "shots": tags.get("shots"), "with_real": bool(tags["with_real"]),
               "eval_split": tags["eval_split"], "accuracy": 100 * metrics["accuracy"],
               "mean_per_class_accuracy": 100 * metrics["mean_per_class_accuracy"], "n_test": metrics["n_test"]}
        for group, value in metrics.get("group_accuracy", {}).items():
            row[f"{group}_accuracy"] = 100 * value
        rows.append(row)
    return pd.DataFrame(rows)


def collect_gap(paths: list[str]) -> pd.DataFrame:
    """One row per synthetic set: its tags and every summary metric."""
    rows = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        tags = result["tags"]
        gen, _, alpha = _generation(tags["synthetic"])
        rows.append({"dataset": tags.get("dataset"), "method": tags.get("method"), "generation": gen,
                     "alpha": alpha, "seed": tags.get("seed"), "features": result.get("features"),
                     **result["summary"]})
    return pd.DataFrame(rows)


def collect_spread(paths: list[str]) -> pd.DataFrame:
    """One row per (dataset, method, seed): the median heads' movement and spread of its class adapters."""
    rows = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        tags = result["tags"]
        rows.append({"dataset": tags["dataset"], "method": tags["method"], "seed": tags["seed"], **result["summary"]})
    return pd.DataFrame(rows, columns=["dataset", "method", "seed", "moved", "spread"])


def headline(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the main tables: each method at its largest synthetic volume (every alpha kept, as
    its own row); the real-only rows as they are."""
    if results.empty:
        return results
    volume = results["volume"].fillna(-1)
    largest = volume.groupby([results["dataset"], results["method"]]).transform("max")
    return results[volume == largest]


def mean_std(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna()
    n = len(values)
    return (float(values.mean()) if n else np.nan, float(values.std(ddof=1)) if n > 1 else np.nan, n)


def cell(mean: float, std: float, n: int, digits: int = 1) -> str:
    """'mean ± std (n)', n the number of seeds; a single seed has no spread to show."""
    if n == 0 or not np.isfinite(mean):
        return "–"
    if n == 1 or not np.isfinite(std):
        return f"{mean:.{digits}f} (1)"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({n})"

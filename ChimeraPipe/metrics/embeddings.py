"""Embedding files: one per image set (a dataset's test images, a run's shots, one synthetic set), so a
new method or a new metric embeds only what is new. `<name>.safetensors` holds the embeddings (row i =
image i of `<name>.csv`, which lists path and class)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.io import load_arrays, save_arrays, write_csv


def rows_path(embeddings_path: str | Path) -> Path:
    return Path(embeddings_path).with_suffix(".csv")


def write_embeddings(path: str | Path, rows: pd.DataFrame, embeddings: np.ndarray, extractor: str) -> None:
    if len(rows) != len(embeddings):
        raise ValueError(f"{path}: {len(rows)} images but {len(embeddings)} embeddings")
    write_csv(rows_path(path), rows[[c for c in ("path", "class", "predicted") if c in rows]].reset_index(drop=True))
    save_arrays(path, {"embeddings": np.asarray(embeddings, dtype=np.float32)}, metadata={"features": extractor})


def read_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    rows = pd.read_csv(rows_path(path))
    emb = load_arrays(path)["embeddings"]
    if len(rows) != len(emb):
        raise ValueError(f"{path}: {len(emb)} embeddings but {len(rows)} rows in {rows_path(path)}")
    return rows, emb


def features_of(path: str | Path) -> str:
    """The extractor that made an embeddings file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = f.metadata() or {}
    if "features" not in meta:
        raise ValueError(f"{path}: not an embeddings file (no 'features' in its metadata)")
    return meta["features"]

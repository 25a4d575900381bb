"""Box quality against ground truth: IoU of each detect backend's boxes, and how many cached crops
contain the whole ground-truth box (100% by construction for the annotations backend)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import safe_open

BOX = ["x0", "y0", "x1", "y1"]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of boxes [N, 4] (xyxy)."""
    x0, y0 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x1, y1 = np.minimum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda m: (m[:, 2] - m[:, 0]) * (m[:, 3] - m[:, 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def crops_containing(views_path: str | Path, truth: pd.DataFrame, eps: float = 1e-3) -> tuple[int, int]:
    """(crops whose region holds the whole ground-truth box, all crops) for one class's view cache."""
    with safe_open(str(views_path), "pt") as handle:
        regions = handle.get_tensor("regions").numpy()        # [K, V, 4]
        paths = json.loads(handle.metadata()["paths"])
    gt = truth.loc[paths, BOX].to_numpy()[:, None, :]          # [K, 1, 4]
    inside = ((regions[..., 0] <= gt[..., 0] + eps) & (regions[..., 1] <= gt[..., 1] + eps)
              & (regions[..., 2] >= gt[..., 2] - eps) & (regions[..., 3] >= gt[..., 3] - eps))
    return int(inside.sum()), int(inside.size)


def box_quality(boxes: dict[str, list[str]], views: dict[str, list[str]], truth: pd.DataFrame) -> pd.DataFrame:
    """One row per backend: mean IoU vs ground truth, box sources, and the fraction of GT-complete crops."""
    truth = truth.set_index("path")
    rows = []
    for backend, csvs in boxes.items():
        frame = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
        scores = iou(frame[BOX].to_numpy(float), truth.loc[frame["path"], BOX].to_numpy(float))
        contained = np.array([crops_containing(v, truth) for v in views[backend]])
        rows.append({"backend": backend, "images": len(frame), "mean_iou": float(scores.mean()),
                     "min_iou": float(scores.min()),
                     "sources": ", ".join(f"{k}:{v}" for k, v in frame["source"].value_counts().items()),
                     "crops_with_whole_gt_box": float(contained[:, 0].sum() / contained[:, 1].sum())})
    return pd.DataFrame(rows)

"""Grey thumbnails as vectors: the pixel space of the regime metrics, where a copy of a small image is a copy
whatever a feature extractor makes of it (meaningful for small images such as the laptop experiment's digits)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..core.images import load_rgb


def grey_thumbnails(paths: list[str], size: int) -> np.ndarray:
    """[len(paths), size * size] grey levels in [0, 1], each image area-averaged to size x size."""
    if not paths:
        return np.zeros((0, size * size), np.float32)
    return np.stack([np.asarray(load_rgb(p).convert("L").resize((size, size), Image.Resampling.BOX),
                                np.float32).ravel() / 255 for p in paths])

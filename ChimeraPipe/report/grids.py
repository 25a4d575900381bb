"""Image grids: real shots above each method's generated images, detected boxes drawn."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..core.images import load_rgb  # noqa: E402
from ..core.io import atomic_path  # noqa: E402


def write_sample_grid(out_png: str | Path, real: list[str], synth: dict[str, list[str]] | None = None) -> None:
    """One row of real shots, then one row of generated images per method."""
    write_image_grid(out_png, [("real", real)] + list((synth or {}).items()))


def write_image_grid(out_png: str | Path, rows: list[tuple[str, list[str]]], boxes: pd.DataFrame | None = None) -> None:
    """Labelled rows of images; an image listed in `boxes` (by path) gets its box and box source drawn."""
    cols = max(len(paths) for _, paths in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.6 * cols, 1.7 * len(rows)), squeeze=False)
    by_path = boxes.set_index("path") if boxes is not None else None
    for r, (label, paths) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(paths):
                continue
            ax.imshow(load_rgb(paths[c]))
            if by_path is not None and paths[c] in by_path.index:
                b = by_path.loc[paths[c]]
                ax.add_patch(Rectangle((b.x0, b.y0), b.x1 - b.x0, b.y1 - b.y0, fill=False, color="red", lw=1.5))
                ax.set_title(b.source, fontsize=7)
        axes[r][0].text(-0.1, 0.5, label, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)

"""A t-SNE map of one class: its real shots, real test images and each method's synthetic images."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..core.io import atomic_path  # noqa: E402


def tsne_map(groups: dict[str, np.ndarray], seed: int = 0, perplexity: float = 30.0) -> dict[str, np.ndarray]:
    """2-d t-SNE coordinates of every group's points, fitted jointly (cosine metric, PCA init, seeded);
    perplexity capped below a third of the points, as t-SNE needs."""
    from sklearn.manifold import TSNE

    names = [n for n, x in groups.items() if len(x)]
    points = np.concatenate([groups[n] for n in names])
    if len(points) < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {len(points)}")
    perplexity = min(perplexity, (len(points) - 1) / 3)
    coords = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed).fit_transform(points)
    out, start = {}, 0
    for n in names:
        out[n] = coords[start:start + len(groups[n])]
        start += len(groups[n])
    return out


def write_tsne_plot(out_png: str | Path, groups: dict[str, np.ndarray], title: str, seed: int = 0,
                    perplexity: float = 30.0) -> None:
    coords = tsne_map(groups, seed, perplexity)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    styles = {"real test": dict(c="0.6", marker="o", s=14), "real shots": dict(c="k", marker="*", s=120)}
    for name, xy in coords.items():
        ax.scatter(xy[:, 0], xy[:, 1], label=name, alpha=0.8, **styles.get(name, dict(marker="x", s=18)))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)

"""The report stage: the methods x datasets accuracy table and sample grids."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from .images import load_rgb  # noqa: E402
from .io import atomic_path, write_csv, write_text  # noqa: E402


def collect_results(eval_jsons: list[str]) -> pd.DataFrame:
    """One row per evaluation; a classifier trained on real shots + synthetic images is labelled so in
    the `synthetic` column, a row apart from synthetic-only results."""
    rows = []
    for path in eval_jsons:
        metrics = json.loads(Path(path).read_text())
        tags = dict(metrics.get("tags", {}))
        if tags.pop("with_real", False):
            tags["synthetic"] = f"{tags.get('synthetic', '')} + real shots"
        rows.append({**tags, "accuracy": 100 * metrics["accuracy"],
                     "mean_per_class_accuracy": 100 * metrics["mean_per_class_accuracy"], "n_test": metrics["n_test"]})
    return pd.DataFrame(rows)


def accuracy_table(results: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Rows: method (and its synthetic-set tag); columns: datasets (mean over seeds) and AVG."""
    table = results.pivot_table(index=["method", "synthetic"], columns="dataset", values=metric, aggfunc="mean")
    table["AVG"] = table.mean(axis=1)
    return table.round(1).reset_index()


def write_accuracy_table(eval_jsons: list[str], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    results = collect_results(eval_jsons)
    table = accuracy_table(results)
    write_csv(out_csv, table)
    seeds = ", ".join(str(int(s)) for s in sorted(results["seed"].unique()))
    shots = ", ".join(str(int(k)) for k in sorted(results["shots"].unique()))
    body = table.to_markdown(index=False, floatfmt=".1f")
    per_class = accuracy_table(results, "mean_per_class_accuracy").to_markdown(index=False, floatfmt=".1f")
    evaluated = ", ".join(f"{d}: {s}" for d, s in results.groupby("dataset")["eval_split"].first().items()) \
        if "eval_split" in results else "test"
    write_text(out_md, f"# Top-1 accuracy (%)\n\nShots per class: {shots}; seeds: {seeds} (mean over seeds). "
                       f"Evaluated on: {evaluated}.\n\n{body}\n\n"
                       "## Mean per-class accuracy (%)\n\nThe mean of the classes' accuracies: the figure to read "
                       f"on imbalanced test sets (ISIC 2018: NV is about two thirds of the images).\n\n{per_class}\n")
    return table


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

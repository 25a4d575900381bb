"""The paper's figures (matplotlib, PNG): accuracy along the alpha and volume sweeps, and alpha as a dial
between diversity and fidelity in the gap metrics."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..core.io import atomic_path  # noqa: E402


def _log_ticks(ax, values) -> None:
    """A log x axis labelled at the swept values only (plain numbers, no minor-tick clutter)."""
    ax.set_xscale("log")
    ax.minorticks_off()
    ticks = sorted({float(v) for v in values})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])


def _save(fig, out_png: str | Path) -> None:
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def sweep_plot(long: pd.DataFrame, by: str, out_png: str | Path, xlabel: str, log_x: bool = False) -> None:
    """Accuracy (mean ± std over seeds) along `by`, one panel per dataset, a line per series."""
    datasets = sorted(long["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for series, sub in long[long["dataset"] == dataset].groupby("series"):
            sub = sub.sort_values(by)
            ax.errorbar(sub[by], sub["mean"], yerr=sub["std"].fillna(0), marker="o", capsize=3, label=series)
        if log_x:
            _log_ticks(ax, long.loc[long["dataset"] == dataset, by])
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.legend(fontsize=7)
    _save(fig, out_png)


def alpha_dial_plot(gap: pd.DataFrame, out_png: str | Path) -> None:
    """Diversity of the synthetic set and its fidelity (centroid similarity and coverage of the real test
    images; the judge's class correctness when the features are a classifier's) against alpha: small alpha
    mixes few heads (image-wise), large alpha averages them (class-wise)."""
    dial = gap[gap["alpha"].notna()]
    panels = [("diversity", "diversity (1 - mean cos)"), ("centroid_similarity", "centroid similarity"),
              ("coverage", "coverage")]
    if "class_accuracy" in dial and dial["class_accuracy"].notna().any():
        panels.append(("class_accuracy", "judge: share showing its class"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.3), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels, strict=True):
        stats = dial.groupby(["dataset", "method", "alpha"])[metric].agg(["mean", "std"]).reset_index()
        for (dataset, method), sub in stats.groupby(["dataset", "method"]):
            sub = sub.sort_values("alpha")
            ax.errorbar(sub["alpha"], sub["mean"], yerr=sub["std"].fillna(0), marker="o", capsize=3,
                        label=f"{method}, {dataset}")
        _log_ticks(ax, dial["alpha"])
        ax.set_xlabel("Dirichlet α")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    _save(fig, out_png)

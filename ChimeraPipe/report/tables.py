"""The paper's tables, in its layout: rows = methods, columns = datasets + AVG, cells 'mean ± std (n seeds)'.

Each function returns (numbers, display): a long table of means, stds and seed counts for the CSV, and
the formatted wide table for Markdown / HTML.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.names import set_label
from .results import cell, headline, mean_std

# The component ablation in the paper's order: image-wise LoFT, + multi-head, + semantic boosting, both.
ABLATION = (("loft", "LoFT (image-wise LoRA)"), ("chimera_nobox", "+ multi-head"),
            ("loft_box", "+ semantic boosting"), ("chimera", "+ multi-head + semantic boosting (ChimeraLoRA)"))
GAP_COLUMNS = {"fd": "FD ↓", "fd_pooled": "FD (pooled) ↓", "clip_score": "CLIP score ↑",
               "centroid_similarity": "centroid sim. ↑", "coverage": "coverage ↑", "precision": "precision ↑",
               "recall": "recall ↑", "density": "density", "copy_rate": "copy rate ↓", "diversity": "diversity ↑",
               "class_accuracy": "judge: right class ↑"}
# How near each set sits to its shots (copy rate is the gap table's), and how far the heads moved and differ.
REGIME_COLUMNS = {"copy_rate": "copy rate", "nearest_shot": "nearest shot", "own_shot": "own shot (one head)",
                  "pixel_copy_rate": "pixels: copy rate", "pixel_nearest_shot": "pixels: nearest shot (RMS)",
                  "pixel_own_shot": "pixels: own shot (one head)", "moved": "mean head / |W0|",
                  "spread": "heads' spread / |W0|"}


def _labelled(results: pd.DataFrame) -> pd.DataFrame:
    out = results.copy()
    out["row"] = [set_label(m, g, w) for m, g, w in zip(out["method"], out["generation"], out["with_real"],
                                                       strict=True)]
    return out


def method_by_dataset(results: pd.DataFrame, value: str = "accuracy", rows: list[str] | None = None,
                      labels: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean ± std over seeds of `value` per (row, dataset), and AVG: the per-seed mean over the datasets
    (only for rows that have every dataset), then mean ± std over seeds."""
    results = _labelled(results)
    datasets = sorted(results["dataset"].unique())
    order = rows or list(dict.fromkeys(results.sort_values(["method", "generation"], kind="stable")["row"]))
    long, wide = [], []
    for row in order:
        sub = results[results["row"] == row]
        display = {"method": (labels or {}).get(row, row)}
        for dataset in datasets:
            mean, std, n = mean_std(sub.loc[sub["dataset"] == dataset, value])
            long.append({"row": row, "dataset": dataset, "mean": mean, "std": std, "n_seeds": n})
            display[dataset] = cell(mean, std, n) if n else "not run"
        per_seed = sub.groupby("seed").agg(v=(value, "mean"), d=("dataset", "nunique"))
        complete = per_seed[per_seed["d"] == len(datasets)]["v"]
        mean, std, n = mean_std(complete)
        long.append({"row": row, "dataset": "AVG", "mean": mean, "std": std, "n_seeds": n})
        display["AVG"] = cell(mean, std, n) if not sub.empty else "not run"
        wide.append(display)
    return pd.DataFrame(long), pd.DataFrame(wide)


def fewshot_table(evaluations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1: top-1 accuracy of every method (largest volume; each alpha its own row)."""
    return method_by_dataset(headline(evaluations))


def ablation_table(evaluations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The component ablation (rows in the paper's order; a component the config did not run says so)."""
    main = headline(evaluations)
    main = main[main["method"].isin([m for m, _ in ABLATION])]
    if main.empty:
        return None
    rows, labels = [], {}
    for method, label in ABLATION:
        present = _labelled(main[main["method"] == method])["row"].unique().tolist() or [method]
        for row in present:
            rows.append(row)
            labels[row] = label if row == method else f"{label} {row.removeprefix(method).strip()}"
    return method_by_dataset(main, rows=rows, labels=labels)


def longtail_table(evaluations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Long-tail: overall, head and tail accuracy per dataset (rows = methods)."""
    if "tail_accuracy" not in evaluations or evaluations["tail_accuracy"].isna().all():
        return None
    results = _labelled(headline(evaluations[evaluations["tail_accuracy"].notna()]))
    long, wide = [], []
    for row in dict.fromkeys(results.sort_values(["method", "generation"], kind="stable")["row"]):
        sub = results[results["row"] == row]
        display = {"method": row}
        for dataset in sorted(results["dataset"].unique()):
            for part, column in (("overall", "accuracy"), ("head", "head_accuracy"), ("tail", "tail_accuracy")):
                mean, std, n = mean_std(sub.loc[sub["dataset"] == dataset, column])
                long.append({"row": row, "dataset": dataset, "classes": part, "mean": mean, "std": std, "n_seeds": n})
                display[f"{dataset} {part}"] = cell(mean, std, n)
        wide.append(display)
    return pd.DataFrame(long), pd.DataFrame(wide)


def metric_table(frame: pd.DataFrame, columns: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A row per synthetic set: each metric's per-seed mean over datasets, then mean ± std over seeds."""
    if frame.empty:
        return None
    frame = _labelled(frame.assign(with_real=False))
    metrics = [c for c in columns if c in frame and frame[c].notna().any()]
    long, wide = [], []
    for row in dict.fromkeys(frame.sort_values(["method", "generation"], kind="stable")["row"]):
        sub = frame[frame["row"] == row]
        per_seed = sub.groupby("seed")[metrics].mean()
        display = {"method": row, "datasets": sub["dataset"].nunique()}
        for metric in metrics:
            mean, std, n = mean_std(per_seed[metric])
            digits = 1 if metric in ("clip_score", "centroid_similarity") else 3  # x100 scores; FD, shares
            long.append({"row": row, "metric": metric, "mean": mean, "std": std, "n_seeds": n})
            display[columns[metric]] = cell(mean, std, n, digits)
        wide.append(display)
    return pd.DataFrame(long), pd.DataFrame(wide)


def gap_table(gap: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The synthetic-to-real gap: each metric's per-seed mean over datasets, then mean ± std over seeds."""
    return metric_table(gap, GAP_COLUMNS)


def regime_table(gap: pd.DataFrame, spread: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The regime: each set's copy rate, nearest-shot distance and own-shot share (features, and pixels when
    measured), with its method's heads' movement and spread (the same on every set of a method)."""
    if gap.empty or not {"nearest_shot"} <= set(gap):
        return None
    if not spread.empty:
        gap = gap.merge(spread[["dataset", "method", "seed", "moved", "spread"]], on=["dataset", "method", "seed"],
                        how="left")
    return metric_table(gap, REGIME_COLUMNS)


def t_interval(diff: pd.Series) -> tuple[float, float, int]:
    """(mean, half-width of its 95 % t-interval, n) of paired differences."""
    from scipy import stats

    diff = diff.dropna()
    n = len(diff)
    mean = float(diff.mean()) if n else np.nan
    half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return mean, half, n


def alpha_regime_table(gap: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Alpha as a dial between image-wise and class-wise: each dial method's nearest-shot distance (pixels when
    measured, else features) per alpha, mean ± std over seeds, and the largest alpha minus the smallest, seed by
    seed (paired: the same shots, LoRA and noise), with its 95 % t-interval."""
    if gap.empty or "nearest_shot" not in gap:
        return None
    metric = "pixel_nearest_shot" if "pixel_nearest_shot" in gap and gap["pixel_nearest_shot"].notna().any() \
        else "nearest_shot"
    dial = gap[gap["alpha"].notna()]
    long, wide = [], []
    for (dataset, method), sub in dial.groupby(["dataset", "method"]):
        alphas = sorted(sub["alpha"].unique())
        if len(alphas) < 2:
            continue
        display = {"dataset": dataset, "method": method, "metric": REGIME_COLUMNS[metric]}
        for alpha in alphas:
            mean, std, n = mean_std(sub.loc[sub["alpha"] == alpha, metric])
            display[f"α={alpha:g}"] = cell(mean, std, n, 3)
            long.append({"dataset": dataset, "method": method, "alpha": alpha, "metric": metric, "mean": mean,
                         "std": std, "n_seeds": n})
        by_seed = sub.set_index(["alpha", "seed"])[metric]
        mean, half, n = t_interval(by_seed[alphas[-1]] - by_seed[alphas[0]])
        display[f"α={alphas[-1]:g} − α={alphas[0]:g}"] = (f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}] "
                                                          f"({n})") if n > 1 else "–"
        long.append({"dataset": dataset, "method": method, "alpha": "difference", "metric": metric,
                     "mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "n_seeds": n})
        wide.append(display)
    return (pd.DataFrame(long), pd.DataFrame(wide)) if wide else None


def paired_table(evaluations: pd.DataFrame, reference: str = "chimera") -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Each method minus the reference (ChimeraLoRA at α=1 when it ran, else its first alpha), seed by seed
    (the same shots, i.e. paired), per dataset: mean difference and its 95 % t-interval over seeds."""
    results = _labelled(headline(evaluations))
    refs = [r for r in dict.fromkeys(results.loc[results["method"] == reference, "row"])]
    if not refs or results["seed"].nunique() < 2:
        return None
    ref_row = f"{reference} (α=1)" if f"{reference} (α=1)" in refs else refs[0]
    ref = results[results["row"] == ref_row].set_index(["dataset", "seed"])["accuracy"]
    long, wide = [], []
    for row in dict.fromkeys(results.sort_values(["method", "generation"], kind="stable")["row"]):
        if row == ref_row:
            continue
        sub = results[results["row"] == row].set_index(["dataset", "seed"])["accuracy"]
        display = {"method": row}
        for dataset in sorted(results["dataset"].unique()):
            mean, half, n = t_interval(sub.get(dataset, pd.Series(dtype=float))
                                       - ref.get(dataset, pd.Series(dtype=float)))
            long.append({"row": row, "reference": ref_row, "dataset": dataset, "mean_difference": mean,
                         "ci95_low": mean - half, "ci95_high": mean + half, "n_seeds": n})
            display[dataset] = f"{mean:+.1f} [{mean - half:+.1f}, {mean + half:+.1f}] ({n})" if n > 1 else "–"
        wide.append(display)
    return pd.DataFrame(long), pd.DataFrame(wide)


def sweep_table(evaluations: pd.DataFrame, by: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Accuracy along a sweep (`by`: 'alpha' at the largest volume, or 'volume' for every synthetic set)."""
    results = evaluations[evaluations[by].notna()]
    if by == "alpha":
        results = headline(results)
        results = results.assign(series=results["method"])
    else:
        results = results.assign(series=[set_label(m, g) for m, g in zip(results["method"], results["generation"],
                                                                          strict=True)])
    if results.empty or results.groupby(["dataset", "series"])[by].nunique().max() < 2:
        return None
    long = (results.groupby(["dataset", "series", by])["accuracy"]
            .agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan, n_seeds="count")
            .reset_index())
    wide = long.assign(value=[cell(m, s, n) for m, s, n in zip(long["mean"], long["std"], long["n_seeds"],
                                                                strict=True)])
    wide = wide.pivot_table(index=["dataset", "series"], columns=by, values="value", aggfunc="first").reset_index()
    wide.columns = [c if isinstance(c, str) else (f"α={c:g}" if by == "alpha" else f"n={int(c)}")
                    for c in wide.columns]
    return long, wide

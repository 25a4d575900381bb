"""The laptop-scale experiment over several bases: each base's numbers and the pooled ones, side by side.

    .venv/bin/python bench/mini_bases.py results_mini results_mini_base1 [--out tables.md]

Reads each finished run's evaluation, gap-metric and LoRA-spread files (the report's inputs) and prints, as
Markdown: accuracy (mean ± std over seeds), each method's paired difference against ChimeraLoRA (alpha 1)
with its 95 % t-interval, the regime metrics, and alpha as a dial (largest minus smallest alpha, paired).
Per base the unit is a seed; pooled, a (base, seed) pair, so the pooled intervals count the base as a source
of variance too."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ChimeraPipe.report.results import collect_evaluations, collect_gap, collect_spread
from ChimeraPipe.report.tables import alpha_regime_table, method_by_dataset, paired_table, regime_table


def collect(results: Path, label: str, base: int) -> tuple[pd.DataFrame, ...]:
    """A run's evaluations, gap metrics and spreads, the dataset named after the base and the seed made unique
    across bases (base * 1000 + seed)."""
    frames = (collect_evaluations([str(p) for p in results.glob("*/shots*_seed*/eval/*/*.json")]),
              collect_gap([str(p) for p in results.glob("*/shots*_seed*/metrics/*/*.json")]),
              collect_spread([str(p) for p in results.glob("*/shots*_seed*/lora/*/spread.json")]))
    return tuple(f.assign(dataset=label, seed=f["seed"] + 1000 * base) for f in frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="finished runs' results folders, one per base")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    runs = [collect(path, f"base {i}", i) for i, path in enumerate(args.results)]
    pooled = [pd.concat([run[k] for run in runs], ignore_index=True).assign(dataset="pooled") for k in range(3)]
    evaluations, gap, spread = (pd.concat([*(run[k] for run in runs), pooled[k]], ignore_index=True)
                                for k in range(3))
    evaluations = evaluations[evaluations["eval_split"].notna()]
    labels = [*(f"base {i}" for i in range(len(runs))), "pooled"]
    sections = [("Accuracy (%), mean ± std (seeds or base-seed pairs)", method_by_dataset(evaluations)[1]),
                ("Each method minus ChimeraLoRA (α=1), paired, points [95 % t-interval]", paired_table(evaluations)),
                *((f"Regime, {label}", regime_table(gap[gap["dataset"] == label], spread[spread["dataset"] == label]))
                  for label in labels),
                ("Alpha as a dial", alpha_regime_table(gap))]
    out = [f"Runs: {', '.join(f'base {i} = {p}' for i, p in enumerate(args.results))}", ""]
    for title, table in sections:
        if isinstance(table, tuple):
            table = table[1]
        if table is None:
            continue
        out += [f"## {title}", "", table.to_markdown(index=False), ""]
    text = "\n".join(out)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

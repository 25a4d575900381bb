"""Wall time per rule of a finished run, from the benchmark files Snakemake wrote (one per job).

    .venv/bin/python bench/stage_times.py results_mini

Prints, per rule, the number of jobs, the summed job seconds and the mean; 'seed' splits the per-seed
stages from the shared ones (pretrain_base, train_judge, dataset-level embeddings)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd


def stage_times(results: str | Path) -> pd.DataFrame:
    rows = []
    for tsv in Path(results, "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(Path(results, "benchmarks")).parts[0]
        seconds = float(pd.read_csv(tsv, sep="\t")["s"].iloc[-1])
        seed = re.search(r"seed(\d+)", str(tsv))
        rows.append({"rule": rule, "seed": int(seed.group(1)) if seed else None, "s": seconds})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    times = stage_times(sys.argv[1] if len(sys.argv) > 1 else "results_mini")
    by_rule = times.groupby("rule")["s"].agg(jobs="count", total_s="sum", mean_s="mean").sort_values("total_s")
    print(by_rule.round(1).to_string())
    shared = times[times["seed"].isna()]["s"].sum()
    per_seed = times[times["seed"].notna()].groupby("seed")["s"].sum()
    print(f"\nshared (not per seed): {shared:.0f} job-s; per seed: " +
          ", ".join(f"seed {int(k)} {v:.0f} job-s" for k, v in per_seed.items()))
    print(f"all jobs: {times['s'].sum():.0f} job-s (2 jobs run at a time on 2 cores)")

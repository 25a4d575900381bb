"""Wall time per rule of a finished run, from the benchmark files Snakemake wrote (one per job).

    .venv/bin/python bench/stage_times.py results_mini

Prints, per rule, the number of jobs, the summed job seconds and the mean; 'seed' splits the per-seed
stages from the shared ones (pretrain_base, train_judge, dataset-level embeddings)."""
from __future__ import annotations

import sys

from ChimeraPipe.report.stage_times import stage_summary, stage_times

if __name__ == "__main__":
    times = stage_times(sys.argv[1] if len(sys.argv) > 1 else "results_mini")
    by_rule = stage_summary(times).assign(total_s=lambda t: t["job_hours"] * 3600).drop(columns="job_hours")
    print(by_rule.sort_values("total_s").set_index("rule")[["jobs", "total_s", "mean_s"]].round(1).to_string())
    shared = times[times["seed"].isna()]["s"].sum()
    per_seed = times[times["seed"].notna()].groupby("seed")["s"].sum()
    print(f"\nshared (not per seed): {shared:.0f} job-s; per seed: " +
          ", ".join(f"seed {int(k)} {v:.0f} job-s" for k, v in per_seed.items()))
    print(f"all jobs: {times['s'].sum():.0f} job-s (2 jobs run at a time on 2 cores)")

"""Job time per rule from the benchmark files Snakemake writes (`<results>/benchmarks/<rule>/...tsv`, one per
job, wall seconds in column `s`): what the report's provenance and bench/stage_times.py show."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

BENCHMARKS = "benchmarks"


def stage_times(results: str | Path) -> pd.DataFrame:
    """One row per job: rule, seed (None for the stages shared by seeds), s (the job's last recorded run)."""
    root = Path(results) / BENCHMARKS
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        with open(tsv, newline="") as handle:
            records = list(csv.DictReader(handle, delimiter="\t"))
        if not records or "s" not in records[-1]:
            continue
        seed = re.search(r"seed(\d+)", str(tsv.relative_to(root)))
        rows.append({"rule": tsv.relative_to(root).parts[0], "seed": int(seed.group(1)) if seed else None,
                     "s": float(records[-1]["s"])})
    times = pd.DataFrame(rows, columns=["rule", "seed", "s"])
    return times.astype({"seed": "Int64", "s": float})


def stage_summary(times: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, summed job hours and mean job seconds, the longest rules first."""
    if times.empty:
        return pd.DataFrame(columns=["rule", "jobs", "job_hours", "mean_s"])
    summary = times.groupby("rule")["s"].agg(jobs="count", total="sum", mean_s="mean").reset_index()
    summary["job_hours"] = summary.pop("total") / 3600
    return summary.sort_values("job_hours", ascending=False, ignore_index=True)[["rule", "jobs", "job_hours",
                                                                                  "mean_s"]]

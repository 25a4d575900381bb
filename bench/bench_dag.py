"""How long Snakemake takes to plan (`snakemake -n`) a paper-sized few-shot run; no images needed.

Uses config/paper_fewshot.yaml (9 datasets, all methods and ablations) as shipped, its data_root pointed
at metadata-only replicas of each dataset in its official layout (split files, variants.txt, ground
truth CSVs) at the real class counts, so the class lists are read from metadata as in a real run; compares
its `classes_per_job` with one job per class, side by side. Target: <= 10 s for one seed.

    python bench/bench_dag.py [--seeds 1 3] [--classes-per-job 1 8]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the dataset replicas are test fixtures
from replicas import write_replica  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASS_COUNTS = {"fgvc_aircraft": 100, "stanford_cars": 196, "dtd": 47, "eurosat": 10, "flowers102": 102,
                "oxford_pets": 37, "isic": 7, "caltech101": 100, "food101": 101}


def write_replicas(config: dict, data_root: Path) -> None:
    """Metadata-only replicas (one entry per class and split) of every dataset of the config."""
    for name, count in CLASS_COUNTS.items():
        settings = config["datasets"][name]
        write_replica(settings["kind"], data_root / settings["root"], n_classes=count, images=False,
                      counts={"train": 4, "val": 1, "test": 1})


def paper_config(seeds: int, results: str, data_root: str, classes_per_job: int | None = None) -> dict:
    config = yaml.safe_load((REPO / "config" / "paper_fewshot.yaml").read_text())
    assert set(config["datasets"]) == set(CLASS_COUNTS), "paper config and class counts disagree"
    config.update(results=results, seeds=list(range(seeds)), data_root=data_root)
    if classes_per_job is not None:
        config["classes_per_job"] = classes_per_job
    return config


def dry_run(seeds: int, classes_per_job: int | None) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "paper.yaml"
        settings = paper_config(seeds, str(Path(tmp) / "results"), str(Path(tmp) / "data"), classes_per_job)
        write_replicas(settings, Path(tmp) / "data")
        config.write_text(yaml.safe_dump(settings))
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1",
                              "--directory", str(REPO), "--configfile", str(config)],
                             capture_output=True, text=True, cwd=REPO)
        elapsed = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(out.stdout[-3000:] + out.stderr[-3000:])
    total = re.search(r"^total\s+(\d+)", out.stdout, re.M)
    return elapsed, int(total.group(1)) if total else -1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--classes-per-job", type=int, nargs="+", default=None,
                        help="values to compare (default: 1 and the paper config's)")
    args = parser.parse_args()
    shipped = yaml.safe_load((REPO / "config" / "paper_fewshot.yaml").read_text()).get("classes_per_job", 1)
    groupings = args.classes_per_job or sorted({1, shipped})
    print(f"paper few-shot DAG: {len(CLASS_COUNTS)} datasets, {sum(CLASS_COUNTS.values())} classes, "
          f"config/paper_fewshot.yaml (classes_per_job {shipped})")
    for seeds in args.seeds:
        timings = {}
        for per_job in groupings:
            elapsed, jobs = dry_run(seeds, per_job)
            timings[per_job] = elapsed
            print(f"  seeds={seeds} classes_per_job={per_job:2d}: {jobs:6d} jobs, snakemake -n {elapsed:6.1f} s")
        if len(timings) > 1:
            base = timings[min(timings)]
            print("    speed-up vs one job per class: " +
                  ", ".join(f"{k} per job {base / v:.1f}x" for k, v in timings.items() if k != min(timings)))
    print("target: <= 10 s for one seed")


if __name__ == "__main__":
    main()

"""How long Snakemake takes to build the DAG of a paper-sized few-shot config (no data needed: class lists).

The 9 datasets with their real class counts, every method and ablation, 1 and 3 seeds; prints job counts
and `snakemake -n` wall time.                                            Target: <= 10 s for one seed.

    python bench/bench_dag.py [--seeds 1 3]
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

REPO = Path(__file__).resolve().parents[1]
CLASS_COUNTS = {"fgvc_aircraft": 100, "stanford_cars": 196, "dtd": 47, "eurosat": 10, "flowers102": 102,
                "oxford_pets": 37, "isic": 7, "caltech101": 100, "food101": 101}
METHODS = ["real", "issynth", "datadream", "loft", "chimera", "chimera_nobox", "loft_box", "shared_b"]


def paper_config(seeds: int, results: str) -> dict:
    datasets = {name: {"root": f"/data/{name}", "classes": [f"class{i:03d}" for i in range(count)]}
                for name, count in CLASS_COUNTS.items()}
    return {"results": results, "datasets": datasets, "seeds": list(range(seeds)), "methods": METHODS,
            "num_images": 500, "models": {"diffusion": "stabilityai/stable-diffusion-2-1-base",
                                          "clip": "ViT-B-16:openai",
                                          "grounding_dino": "IDEA-Research/grounding-dino-tiny",
                                          "sam": "facebook/sam-vit-base"}}


def dry_run(seeds: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "paper.yaml"
        config.write_text(yaml.safe_dump(paper_config(seeds, str(Path(tmp) / "results"))))
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
    args = parser.parse_args()
    print(f"paper few-shot DAG: {len(CLASS_COUNTS)} datasets, {sum(CLASS_COUNTS.values())} classes, "
          f"{len(METHODS)} methods")
    for seeds in args.seeds:
        elapsed, jobs = dry_run(seeds)
        print(f"  seeds={seeds}: {jobs:6d} jobs, snakemake -n {elapsed:6.1f} s (target <= 10 s for 1 seed)")


if __name__ == "__main__":
    main()

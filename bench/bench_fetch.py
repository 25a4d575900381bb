"""Fetch time of one replica dataset from a local HTTP server (127.0.0.1): download, checksum, extract and move
into place, as `fetch_dataset` does it. The network is not in it; what is left is this project's own cost.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_fetch.py --kind eurosat --classes 10 --per-split 50
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the replicas are test fixtures
from ChimeraPipe import datasets  # noqa: E402
from ChimeraPipe.datasets import fetch  # noqa: E402

import replicas  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="eurosat", choices=["eurosat", "fgvc_aircraft", "caltech101", "dtd"])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-split", type=int, default=50, help="images per class and split (train/val/test)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    counts = {"train": args.per_split, "val": args.per_split, "test": args.per_split}
    with tempfile.TemporaryDirectory() as tmp:
        files = replicas.replica_downloads(args.kind, Path(tmp) / "src", n_classes=args.classes, counts=counts)
        plan = fetch.RECIPES[args.kind]
        fetch.RECIPES[args.kind] = dataclasses.replace(plan, downloads=tuple(
            dataclasses.replace(d, md5=hashlib.md5(files[d.file]).hexdigest() if d.md5 else None)
            for d in plan.downloads))
        server = replicas.FileServer(files, lifetime_s=600)
        megabytes = sum(map(len, files.values())) / 1e6
        times = []
        try:
            for i in range(args.repeats):
                root = Path(tmp) / f"root{i}"
                start = time.perf_counter()
                fetch.fetch_dataset(args.kind, root, urls=server.urls())
                times.append(time.perf_counter() - start)
                rows = len(datasets.dataset_table(args.kind, root))
        finally:
            server.stop()
    best = min(times)
    print(f"{args.kind}: {rows} images, {megabytes:.1f} MB in {len(files)} downloads; fetch "
          f"{best:.2f} s best of {args.repeats} ({megabytes / best:.0f} MB/s), all: {[round(t, 2) for t in times]}")


if __name__ == "__main__":
    main()

"""What the compressed default changes, on two finished runs that differ only in `generate.format` (the same
shots, LoRAs and noise: every synthetic image exists in both, encoded twice).

    .venv/bin/python bench/format_gap.py results_mini results_mini_png [--features judge]

Prints, as Markdown:
- bytes and files per class set in each run (shards, manifests, stamps: what `generate` leaves on disk);
- the Fréchet distance between the two encodings of the same set (per class, in the metrics' feature space)
  against the distances between the sets of two different methods in the same run (same seed and class);
- each set's gap metric (FD to the real test images) in both runs, and the classifier's accuracy in both,
  paired seed by seed (second run minus first) with 95 % t-intervals.

Only the synthetic sets encoded differently in the two runs are compared: a set whose shards are the same
bytes in both (copied into the second run rather than generated again) says nothing about the encoding and
is left out of every section, and named.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ChimeraPipe.metrics.embeddings import read_embeddings
from ChimeraPipe.metrics.gap import frechet_distance
from ChimeraPipe.report.results import collect_evaluations, collect_gap
from ChimeraPipe.report.tables import t_interval


def run_key(run_folder: Path) -> tuple[str, int]:
    """(dataset, seed) of a run's `<dataset>/shots<K>_seed<S>` folder."""
    return run_folder.parent.name, int(re.search(r"_seed(\d+)$", run_folder.name).group(1))


def set_sizes(results: Path) -> pd.DataFrame:
    """Bytes, files and images of every class set of a run (dataset, seed, method, generation tag, class)."""
    rows = []
    for manifest in results.glob("*/shots*_seed*/synth/*/*/*/manifest.csv"):
        folder = manifest.parent
        files = [p for p in folder.rglob("*") if p.is_file()]
        dataset, seed = run_key(folder.parents[3])
        rows.append({"dataset": dataset, "seed": seed, "method": folder.parent.parent.name,
                     "generation": folder.parent.name,
                     "images": len(pd.read_csv(manifest)), "files": len(files),
                     "bytes": sum(p.stat().st_size for p in files)})
    return pd.DataFrame(rows)


def set_digests(results: Path) -> dict[tuple[str, int, str, str], str]:
    """(dataset, seed, method, generation tag) -> a digest of the set's shards (every class): the same in two runs
    only when the set's encoded images are the same bytes."""
    digests = {}
    for folder in sorted(results.glob("*/shots*_seed*/synth/*/*")):
        digest = hashlib.sha256()
        for shard in sorted(folder.rglob("*.tar")):
            digest.update(str(shard.relative_to(folder)).encode() + b"\0" + shard.read_bytes())
        digests[(*run_key(folder.parents[2]), folder.parent.name, folder.name)] = digest.hexdigest()
    return digests


def reencoded(first: Path, second: Path) -> tuple[set, set]:
    """The sets of both runs whose shards differ (compared), and those that are the same bytes (left out)."""
    a, b = set_digests(first), set_digests(second)
    both = set(a) & set(b)
    return {k for k in both if a[k] != b[k]}, {k for k in both if a[k] == b[k]}


def keep(frame: pd.DataFrame, sets: set) -> pd.DataFrame:
    """The rows (dataset, seed, method, generation) of `sets`."""
    keys = zip(frame["dataset"], frame["seed"].astype(int), frame["method"], frame["generation"], strict=True)
    return frame[[key in sets for key in keys]]


def embeddings(results: Path, features: str) -> dict[tuple[str, int, str, str], dict[str, np.ndarray]]:
    """(dataset, seed, method, tag) -> class -> embeddings of that synthetic set."""
    sets = {}
    for path in results.glob(f"*/shots*_seed*/embeddings/{features}/synth/*/*.safetensors"):
        rows, emb = read_embeddings(path)
        key = (*run_key(path.parents[4]), path.parent.name, path.stem)
        sets[key] = {cls: emb[(rows["class"] == cls).to_numpy()] for cls in rows["class"].unique()}
    return sets


def paired(first: pd.DataFrame, second: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    both = first.merge(second, on=[*keys, "seed"], suffixes=("_a", "_b"))
    out = []
    for group, sub in both.groupby(keys):
        mean, half, n = t_interval(sub[f"{value}_b"] - sub[f"{value}_a"])
        out.append({**dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True)),
                    "first": round(sub[f"{value}_a"].mean(), 3), "second": round(sub[f"{value}_b"].mean(), 3),
                    "second − first [95 % CI]": f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}] ({n})"})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", type=Path, help="a finished run (e.g. the JPEG default)")
    parser.add_argument("second", type=Path, help="the same run with another generate.format")
    parser.add_argument("--features", default="judge", help="metrics.features of both runs")
    args = parser.parse_args()

    compared, copied = reencoded(args.first, args.second)
    print(f"## Sets compared\n\n{len(compared)} synthetic sets are encoded differently in the two runs; "
          f"{len(copied)} are the same bytes in both and left out of every section: "
          f"{', '.join(sorted({f'{m}/{g}' for _, _, m, g in copied})) or 'none'}\n")
    sizes = pd.concat([keep(set_sizes(args.first), compared).assign(run=str(args.first)),
                       keep(set_sizes(args.second), compared).assign(run=str(args.second))])
    per_set = sizes.groupby("run")[["images", "files", "bytes"]].mean()
    per_set["bytes_per_image"] = sizes.groupby("run")["bytes"].sum() / sizes.groupby("run")["images"].sum()
    print("## Per class set (mean over every method, tag and seed)\n")
    print(per_set.round(1).to_markdown(), "\n")

    first, second = embeddings(args.first, args.features), embeddings(args.second, args.features)
    same, between = [], []
    for key in sorted(set(first) & set(second) & compared):
        for cls in first[key]:
            same.append({"method": key[2], "tag": key[3], "fd": frechet_distance(first[key][cls], second[key][cls])})
    for (a, b) in itertools.combinations(sorted(first), 2):
        if a[:2] == b[:2] and a[2] != b[2]:        # same dataset and seed, different methods
            for cls in set(first[a]) & set(first[b]):
                between.append(frechet_distance(first[a][cls], first[b][cls]))
    same = pd.DataFrame(same)
    print(f"## Fréchet distance per class ({args.features} features)\n")
    print(f"- the same set, the two encodings: mean {same['fd'].mean():.4f}, max {same['fd'].max():.4f} "
          f"({len(same)} class sets)")
    between = np.array(between)
    print(f"- two methods' sets in the first run: median {np.median(between):.4f}, 5th percentile "
          f"{np.percentile(between, 5):.4f}, min {between.min():.4f} ({len(between)} pairs)")
    print(f"- the encodings' distance as a share of the median between methods: "
          f"{same['fd'].mean() / np.median(between):.2%}\n")
    print(same.groupby(["method", "tag"])["fd"].mean().round(4).to_frame("FD, encodings of the same set")
          .to_markdown(), "\n")

    gap = [collect_gap([str(p) for p in run.glob("*/shots*_seed*/metrics/*/*.json")]) for run in (args.first,
                                                                                              args.second)]
    print("## Gap metric: FD to the real test images, paired over seeds\n")
    gap = [keep(g, compared) for g in gap]
    print(paired(gap[0], gap[1], ["method", "generation"], "fd").to_markdown(index=False), "\n")
    evals = [collect_evaluations([str(p) for p in run.glob("*/shots*_seed*/eval/*/*.json")])
             for run in (args.first, args.second)]
    evals = [keep(e[e["method"] != "real"], compared) for e in evals]
    print("## Classifier accuracy (%), paired over seeds\n")
    print(paired(evals[0], evals[1], ["method", "synthetic"], "accuracy").to_markdown(index=False))


if __name__ == "__main__":
    main()

"""Two runs' output trees, file by file: which files are byte-identical, which are safetensors files with the same
tensors and metadata in another header order (safetensors writes its metadata from a hash map; files written through
ChimeraPipe.core.io since the metadata is sorted there never differ so), and which differ.

    .venv/bin/python bench/compare_runs.py OLD/digits/shots4_seed0 NEW/digits/shots4_seed0
"""
import argparse
import filecmp
from pathlib import Path


def same_tensors(a: Path, b: Path) -> bool:
    import torch
    from safetensors import safe_open

    with safe_open(str(a), "pt") as fa, safe_open(str(b), "pt") as fb:
        names = fa.keys()
        return (fa.metadata() == fb.metadata() and sorted(names) == sorted(fb.keys())
                and all(torch.equal(fa.get_tensor(k), fb.get_tensor(k)) for k in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--skip", nargs="*", default=[".log"], help="suffixes left out (default: .log)")
    args = parser.parse_args()
    counts = {"identical": 0, "same tensors": 0, "differ": 0, "missing": 0}
    differing = []
    for path in sorted(p for p in args.old.rglob("*") if p.is_file() and p.suffix not in args.skip):
        rel = path.relative_to(args.old)
        other = args.new / rel
        if not other.is_file():
            kind = "missing"
        elif filecmp.cmp(path, other, shallow=False):
            kind = "identical"
        elif path.suffix == ".safetensors" and same_tensors(path, other):
            kind = "same tensors"
        else:
            kind = "differ"
        counts[kind] += 1
        if kind in ("differ", "missing"):
            differing.append(f"{kind:8s} {rel}")
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    print("\n".join(differing))


if __name__ == "__main__":
    main()

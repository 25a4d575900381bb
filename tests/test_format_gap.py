"""bench/format_gap.py compares only the synthetic sets the two runs encoded differently."""
import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "format_gap.py"


def load():
    spec = importlib.util.spec_from_file_location("format_gap", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_set(results: Path, method: str, tag: str, shard: bytes) -> None:
    folder = results / "digits" / "shots4_seed3" / "synth" / method / tag / "zero"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "shard-00000.tar").write_bytes(shard)
    pd.DataFrame({"file": [f"{folder}/images/shard-00000.tar::0.jpg"]}).to_csv(folder / "manifest.csv", index=False)


def test_only_the_sets_encoded_differently_are_compared(tmp_path):
    gap = load()
    first, second = tmp_path / "jpeg", tmp_path / "png"
    for results, encoded in ((first, b"jpeg bytes"), (second, b"png bytes")):
        write_set(results, "chimera", "alpha1", encoded)     # generated again in the other format
        write_set(results, "issynth", "fixed", b"same")      # copied into the second run
    compared, copied = gap.reencoded(first, second)
    assert compared == {("digits", 3, "chimera", "alpha1")} and copied == {("digits", 3, "issynth", "fixed")}
    sizes = gap.keep(gap.set_sizes(first), compared)
    assert list(sizes["method"]) == ["chimera"] and list(sizes["files"]) == [2]

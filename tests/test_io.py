"""Atomic writes: an exception or a SIGKILL inside the block never leaves a partial file visible."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors import safe_open

from ChimeraPipe.core.io import (
    atomic_dir,
    atomic_path,
    load_arrays,
    load_tensors,
    save_arrays,
    save_tensors,
    write_text,
)


def test_exception_inside_atomic_path_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new cont")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_exception_inside_atomic_dir_keeps_the_old_dir_and_no_temp(tmp_path):
    target = tmp_path / "grids"
    with atomic_dir(target) as tmp:
        (tmp / "a.png").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b.png").write_text("partial")
        raise RuntimeError("crash mid-way")
    assert sorted(p.name for p in target.iterdir()) == ["a.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grids"]


def test_missing_target_is_never_created_by_a_failed_write(tmp_path):
    with pytest.raises(ZeroDivisionError), atomic_path(tmp_path / "new.csv") as tmp:
        tmp.write_text("a,b\n")
        raise ZeroDivisionError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


KILLED_WRITER = """
import sys, time
from ChimeraPipe.core.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as handle:
        handle.write("partial"); handle.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


def test_sigkill_inside_atomic_path_leaves_the_target_absent(tmp_path):
    target = tmp_path / "model.safetensors"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.05)
    assert not target.exists()  # a killed writer never leaves the final name behind
    leftovers = [p.name for p in tmp_path.iterdir()]
    # Only a hidden temp file can survive SIGKILL (no finally runs); it never has the final name.
    assert all(name.startswith(".model.safetensors.") and ".tmp" in name for name in leftovers), leftovers


def test_the_same_tensors_and_metadata_give_the_same_bytes(tmp_path):
    """safetensors writes its metadata from a hash map (another key order on most saves); ours sorts it, so a
    re-run's files are byte-identical. Escapes and non-ASCII text survive the rewrite, and the file still loads."""
    tensors = {"b": torch.arange(6.0).view(2, 3), "a": torch.ones(5, dtype=torch.float16)}
    metadata = {"zeta": "1", "alpha": 'quote " and \\ slash', "mu": "caf\u00e9 \n tab\t", "beta": "{}", "k": "x" * 9}
    for i in range(8):
        save_tensors(tmp_path / f"{i}.safetensors", tensors, metadata=metadata)
        save_arrays(tmp_path / f"{i}.npy.safetensors", {k: v.numpy() for k, v in tensors.items()}, metadata=metadata)
    for suffix in (".safetensors", ".npy.safetensors"):
        files = {(tmp_path / f"{i}{suffix}").read_bytes() for i in range(8)}
        assert len(files) == 1
    with safe_open(tmp_path / "0.safetensors", "pt") as f:
        assert f.metadata() == metadata
    raw = (tmp_path / "0.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert list(header["__metadata__"]) == sorted(metadata)
    loaded = load_tensors(tmp_path / "0.safetensors")
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    arrays = load_arrays(tmp_path / "0.npy.safetensors")
    assert all(np.array_equal(arrays[k], v.numpy()) for k, v in tensors.items())

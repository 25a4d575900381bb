"""Atomic writes: an exception or a SIGKILL inside the block never leaves a partial file visible."""
import os
import signal
import subprocess
import sys
import time

import pytest

from ChimeraPipe.core.io import atomic_dir, atomic_path, write_text


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

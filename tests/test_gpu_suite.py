"""bench/gpu_suite.py cannot rot: its tiny mode runs the same code on the CPU and writes the JSON the preflight
reads (pipeline/preflight.py turns its stage rates into GPU-hours)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ChimeraPipe.pipeline import preflight

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_suite_runs_in_tiny_mode_and_writes_what_the_preflight_reads(tmp_path):
    out = tmp_path / "gpu_suite.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_suite.py"), "--tiny", "--device", "cpu",
                          "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "tiny" and result["gpu_memory_gib"] is None
    names = [row["row"] for row in result["rows"]]
    for part in ("K=4", "K=64", "plain", "merge", "single LoRA", "batched", "classifier", "input pipeline"):
        assert any(part in name for name in names), (part, names)
    for row in result["rows"]:
        for key, value in row.items():
            if key != "row":
                assert isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, (row, key)
    for stage in ("generate", "train", "classify"):
        assert result["stages"][stage]["per_s"] > 0
    assert "device:" in run.stdout and all(name[:40] in run.stdout for name in names)
    assert preflight.read_gpu_suite(out)["gpu"] == result["gpu"]

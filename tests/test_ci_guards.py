"""CI cannot go green without its gates: the SLURM tests fail rather than skip where they must run."""
import importlib.util
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def slurm_test_module():
    spec = importlib.util.spec_from_file_location("slurm_tests", REPO / "tests" / "slurm" / "test_slurm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_node_ready_needs_a_working_sinfo_and_a_live_node():
    slurm = slurm_test_module()
    assert slurm.node_ready(0, "idle\n") and slurm.node_ready(0, "mixed") and slurm.node_ready(0, "allocated")
    assert not slurm.node_ready(1, "mix")          # sinfo failed: nothing it printed counts
    assert not slurm.node_ready(0, "drain\n")      # drained and down nodes run nothing
    assert not slurm.node_ready(0, "down idle*")   # 'idle*' (not responding) is not 'idle'


def test_slurm_tests_are_required_in_ci(monkeypatch):
    slurm = slurm_test_module()
    monkeypatch.delenv("CHIMERAPIPE_REQUIRE_SLURM", raising=False)
    monkeypatch.setenv("CI", "true")
    assert slurm.must_run()
    monkeypatch.setenv("CI", "")
    assert not slurm.must_run()
    monkeypatch.setenv("CHIMERAPIPE_REQUIRE_SLURM", "1")  # set by make test-slurm
    assert slurm.must_run()


def test_ci_run_fails_before_testing_when_slurm_cannot_run(tmp_path):
    """A CI machine without root cannot run the SLURM gate: .ci/run must fail, and fail before `make`."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake_bin / "make").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/make-calls\n")
    for tool in fake_bin.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "CI": "true"}
    result = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "SLURM" in result.stderr
    assert not (tmp_path / "make-calls").exists()
    env["CI"] = ""  # outside CI the same machine runs lint and tests and says it skipped SLURM
    result = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "skipping the SLURM tests" in result.stdout
    assert (tmp_path / "make-calls").read_text().split() == ["lint", "test"]

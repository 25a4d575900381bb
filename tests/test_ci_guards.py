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


def fake_machine(tmp_path: Path, uid: int, make_script: str) -> dict:
    """CI's environment with PATH led by an `id` printing uid and the given `make`; as root (uid 0) also an
    `apt-get` and a `chromium` that do nothing."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (fake_bin / "make").write_text(make_script)
    if uid == 0:
        (fake_bin / "apt-get").write_text("#!/bin/sh\nexit 0\n")
        (fake_bin / "chromium").write_text("#!/bin/sh\nexit 0\n")
    for tool in fake_bin.iterdir():
        tool.chmod(0o755)
    return {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "CI": "true"}


def test_ci_run_fails_before_testing_when_slurm_cannot_run(tmp_path):
    """A CI machine without root cannot run the SLURM gate: .ci/run must fail, and fail before `make`."""
    env = fake_machine(tmp_path, 1000, f"#!/bin/sh\necho \"$@\" >> {tmp_path}/make-calls\n")
    result = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "SLURM" in result.stderr
    assert not (tmp_path / "make-calls").exists()
    env["CI"] = ""  # outside CI the same machine runs lint and tests and says it skipped SLURM
    result = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "skipping the SLURM tests" in result.stdout
    assert (tmp_path / "make-calls").read_text().split() == ["lint", "test"]


def test_ci_runs_the_slurm_tests_beside_make_test_and_fails_if_either_fails(tmp_path):
    """On a root machine .ci/run installs the plugin first, then runs `make test` and `make test-slurm` at the
    same time (the fake `make test` waits for test-slurm to have started, so a sequential run would fail),
    prints the SLURM log, and exits non-zero when either of them failed."""
    calls, started = tmp_path / "make-calls", tmp_path / "slurm-started"
    make = f"""#!/bin/bash
echo "$1" >> {calls}
case "$1" in
  test-slurm) touch {started}; echo "slurm tests ran"; sleep 1 ;;
  test) for _ in $(seq 100); do [ -e {started} ] && break; sleep 0.1; done; [ -e {started} ] || exit 9 ;;
esac
[ "$1" = "$FAIL_TARGET" ] && exit 3
exit 0
"""
    env = fake_machine(tmp_path, 0, make)
    for fail, expected in (("", 0), ("test-slurm", 1), ("test", 1)):
        calls.unlink(missing_ok=True), started.unlink(missing_ok=True)
        result = subprocess.run(["bash", str(REPO / ".ci" / "run")], env={**env, "FAIL_TARGET": fail},
                                capture_output=True, text=True, timeout=60)
        assert (result.returncode != 0) == bool(expected), (fail, result.stdout, result.stderr)
        made = calls.read_text().split()
        assert made[:2] == ["lint", "install-slurm"] and sorted(made[2:]) == ["test", "test-slurm"], made
        assert "slurm tests ran" in result.stdout  # the SLURM log is printed, whichever failed
        assert f"make test: exit {3 if fail == 'test' else 0}; " \
               f"make test-slurm: exit {3 if fail == 'test-slurm' else 0}" in result.stdout

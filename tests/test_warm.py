"""Warm workers (core.warm): a job handed to the server runs as it would in its own process - its streams, working
directory, environment, arguments and exit status - and dies with its process; otherwise it runs where it is."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ChimeraPipe.core.warm import PER_JOB_VARIABLES, WARM_SOCKET, environment_difference

# A module nothing here imports: only a job that ran in the server's fork has it before importing it.
MARKER = "colorsys"
MODULES = json.dumps([[MARKER, []]])

JOB = textwrap.dedent(f"""
    import json, os, signal, sys, time
    from ChimeraPipe.core.runtime import start_job
    start_job(None)
    what = sys.argv[1]
    if what == "report":
        print(json.dumps({{"name": __name__, "cwd": os.getcwd(), "argv": sys.argv[1:],
                          "threads": os.environ.get("NUMEXPR_NUM_THREADS"),
                          "socket": os.environ.get("{WARM_SOCKET}"), "warm": "{MARKER}" in sys.modules,
                          "path0": sys.path[0]}}))
        print("to stderr", file=sys.stderr)
    elif what == "atexit":
        import atexit, threading
        atexit.register(lambda: open(sys.argv[2], "a").write("exit functions ran\\n"))
        threading.Thread(target=lambda: (time.sleep(0.5), open(sys.argv[2], "a").write("thread joined\\n"))).start()
        sys.stdout.write("no newline, still flushed")
    elif what == "exit":
        sys.exit(int(sys.argv[2]))
    elif what == "raise":
        raise RuntimeError("bad input: the job's own error")
    elif what == "kill":
        os.kill(os.getpid(), signal.SIGTERM)
    elif what == "wait":
        def stop(signum, frame):
            open(sys.argv[2] + ".term", "w").close()
            sys.exit(3)
        signal.signal(signal.SIGTERM, stop)
        open(sys.argv[2] + ".tmp", "w").write(str(os.getpid()))
        os.replace(sys.argv[2] + ".tmp", sys.argv[2])
        time.sleep(60)
""")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A warm server preloading MARKER only; yields its socket's path."""
    folder = tmp_path_factory.mktemp("warm")
    address, ready = str(folder / "socket"), folder / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "ChimeraPipe.core.warm", "--serve", address, "--ready", str(ready),
                             "--modules", MODULES], env=_clean_env())
    for _ in range(400):
        if ready.exists():
            break
        time.sleep(0.05)
    assert json.loads(ready.read_text())["usable"]
    yield address
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in (WARM_SOCKET, "PYTEST_CURRENT_TEST")}
    env.update(extra)
    return env


@pytest.fixture
def job(tmp_path):
    script = tmp_path / "scripts" / "job.py"
    script.parent.mkdir()
    script.write_text(JOB)
    (tmp_path / "work").mkdir()
    return script


def _run(script, *args, env):
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent.parent / "work", env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_handed_job_runs_as_in_its_own_process(server, job):
    cold = _run(job, "report", "x y", env=_clean_env(NUMEXPR_NUM_THREADS="3"))
    assert cold.returncode == 0, cold.stderr
    warm = _run(job, "report", "x y", env=_clean_env(NUMEXPR_NUM_THREADS="3", **{WARM_SOCKET: server}))
    assert warm.returncode == 0, warm.stderr
    seen_cold, seen_warm = json.loads(cold.stdout), json.loads(warm.stdout)
    assert seen_warm.pop("warm") is True and seen_cold.pop("warm") is False     # it did run in the fork
    assert seen_warm == seen_cold == {"name": "__main__", "cwd": str(job.parent.parent / "work"),
                                      "argv": ["report", "x y"], "threads": "3", "socket": None,
                                      "path0": str(job.parent)}
    assert warm.stderr == cold.stderr == "to stderr\n"


@pytest.mark.parametrize("args, code", [(("exit", "0"), 0), (("exit", "7"), 7), (("raise",), 1),
                                         (("kill",), -signal.SIGTERM)])
def test_the_job_exits_as_its_fork_did(server, job, args, code):
    warm = _run(job, *args, env=_clean_env(**{WARM_SOCKET: server}))
    assert warm.returncode == code
    if args == ("raise",):
        assert "RuntimeError: bad input: the job's own error" in warm.stderr
        assert "Traceback" in warm.stderr


def test_a_fork_ends_as_an_interpreter_does(server, job, tmp_path):
    marker = tmp_path / "ended"
    warm = _run(job, "atexit", str(marker), env=_clean_env(**{WARM_SOCKET: server}))
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == "no newline, still flushed"
    assert marker.read_text() == "thread joined\nexit functions ran\n"


def _start_waiting(server, job, tmp_path):
    marker = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, str(job), "wait", str(marker)], cwd=job.parent.parent / "work",
                            env=_clean_env(**{WARM_SOCKET: server}))
    for _ in range(400):
        if marker.exists():
            break
        time.sleep(0.05)
    pid = int(marker.read_text())
    assert pid != proc.pid                           # the work runs in the server's fork
    return proc, pid, marker


def _gone(pid, seconds=10.0):
    for _ in range(int(seconds / 0.05)):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_killed_job_process_takes_its_fork_with_it(server, job, tmp_path):
    proc, pid, _ = _start_waiting(server, job, tmp_path)
    proc.kill()                                       # SIGKILL: nothing of the job's process runs any more
    proc.wait(timeout=10)
    assert _gone(pid), "the fork outlived its job's process"


def test_signals_reach_the_fork(server, job, tmp_path):
    proc, pid, marker = _start_waiting(server, job, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3                 # the job's own SIGTERM handler ran, and its code came back
    assert (tmp_path / "pid.term").exists()
    assert _gone(pid)


def test_a_job_runs_in_its_own_process_when_the_server_declines_or_is_absent(server, job, tmp_path):
    declined = _run(job, "report", env=_clean_env(BAR="2", **{WARM_SOCKET: server}))
    assert declined.returncode == 0
    assert json.loads(declined.stdout)["warm"] is False
    assert "declined (environment differs from the server's in BAR)" in declined.stderr
    absent = _run(job, "exit", "4", env=_clean_env(**{WARM_SOCKET: str(tmp_path / "no-socket")}))
    assert absent.returncode == 4
    assert "not reached" in absent.stderr


def test_environment_difference_leaves_out_the_per_job_variables():
    server = {"PATH": "/bin", "HF_HOME": "/a", "OMP_NUM_THREADS": "1"}
    assert environment_difference({**server, "OMP_NUM_THREADS": "4", "TMPDIR": "/x"}, server) == []
    assert environment_difference({"PATH": "/bin", "OMP_NUM_THREADS": "1"}, server) == ["HF_HOME"]
    assert environment_difference({**server, "HF_HOME": "/b", "TORCH_HOME": "/t"}, server) == ["HF_HOME",
                                                                                               "TORCH_HOME"]
    assert {"OMP_NUM_THREADS", "TMPDIR", WARM_SOCKET} <= PER_JOB_VARIABLES


def test_the_wrapper_runs_the_command_with_the_server_and_returns_its_code(tmp_path, job):
    command = (f"cd {job.parent.parent / 'work'} && {sys.executable} {job} report && "
               f"test -S \"${WARM_SOCKET}\" && exit 5")
    proc = subprocess.run([sys.executable, "-m", "ChimeraPipe.core.warm", "--modules", MODULES, "--", "bash", "-c",
                           command], env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 5, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["warm"] is True


def _servers(address):
    """Pids of the warm servers serving `address`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--serve" in argv and address.encode() in argv:
                found.append(int(entry))
    return found


def test_a_cancelled_run_reaches_the_command_and_a_killed_one_takes_the_server_with_it():
    script = f'trap "exit 9" TERM; echo "${WARM_SOCKET}"; sleep 30 & wait'
    for how in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen([sys.executable, "-m", "ChimeraPipe.core.warm", "--modules", MODULES, "--", "bash",
                                 "-c", script], env=_clean_env(), stdout=subprocess.PIPE, text=True)
        address = proc.stdout.readline().strip()
        assert address and _servers(address)
        proc.send_signal(how)
        if how == signal.SIGTERM:
            assert proc.wait(timeout=30) == 9                  # the command's own handler ran
            assert not os.path.exists(address)              # and the server went with its folder
        else:
            proc.wait(timeout=30)
        for _ in range(300):
            if not _servers(address):
                break
            time.sleep(0.05)
        assert not _servers(address), f"the server outlived its run ({how.name})"

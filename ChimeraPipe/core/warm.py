"""Warm workers for local runs: one process imports torch, torchvision, transformers, diffusers and open_clip once,
and each rule's job runs in a fork of it, instead of paying those imports (~5-7 s of a core) in every process.

On a laptop-scale run most jobs are seconds of work behind seconds of imports: `make mini`'s ~300 torch jobs
spend ~25 min of core time importing libraries. `python -m ChimeraPipe.core.warm -- snakemake ...` starts a
server that preloads the libraries (PRELOAD), runs the command with WARM_SOCKET naming the server's socket, and
stops the server when the command ends. Each job's script calls `handoff()` first (core.runtime.start_job does):
it sends the server its argv, working directory, environment and standard streams, and the server forks a child
that runs the same script, from its first line, as the job; the script's process waits, passes on the signals
it gets, and exits as the child did (its code, or the same signal). So Snakemake sees one process per job, with
its streams, exit status and log as before; if the job's process is killed (SIGKILL included), the child dies
with it. A job whose environment differs from the server's in a variable a library may read at import (anything
but PER_JOB_VARIABLES), or that finds no server, runs in its own process as before, and its stderr says why.

Determinism: a child computes what a fresh process computes; torch takes the job's thread count from start_job
(torch.set_num_threads), the libraries were imported with one thread each (PRELOAD_THREADS), and seeded RNGs are
seeded per job. CUDA must not be initialised before a fork: the preload asks NVML, not the driver, whether CUDA
is there, and the server refuses to serve if torch initialised CUDA anyway (not yet tried on a GPU machine;
`make WARM=0` runs every job cold).
Cluster jobs (SLURM) never see the variable, so each runs in its own process there.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

WARM_SOCKET = "CHIMERAPIPE_WARM"

# What the jobs import, and where the time goes: torch with torch._dynamo (torchvision.ops and transformers import
# it), torch.distributed.tensor (transformers), diffusers' models and schedulers, open_clip. A name after the
# module is fetched from it, for libraries that load their submodules on first attribute access.
PRELOAD: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("torch", ()),
    ("torchvision.transforms.v2", ()),
    ("torchvision.ops", ()),
    ("transformers", ("CLIPTextConfig", "CLIPTextModel", "CLIPTokenizer")),
    ("diffusers", ("AutoencoderKL", "UNet2DConditionModel", "DDPMScheduler", "PNDMScheduler",
                   "StableDiffusionPipeline")),
    ("open_clip", ()),
    ("safetensors.torch", ()),
    ("cv2", ()),
    ("pandas", ()),
    ("scipy.linalg", ()),
    ("scipy.stats", ()),
)

# Variables that differ between a run's jobs without a library reading them at import: the thread counts
# Snakemake sets for each job (torch's is set again by start_job), its temporary folder, and the shell's own.
PER_JOB_VARIABLES = frozenset({
    "OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS", "TMPDIR", "TMP", "TEMP", "TEMPDIR", "_", "SHLVL", "PWD", "OLDPWD", WARM_SOCKET,
})
PRELOAD_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_HEADER = struct.Struct("!Q")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _send(conn: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    payload = json.dumps(message).encode()
    if fds:
        socket.send_fds(conn, [_HEADER.pack(len(payload))], fds)
    else:
        conn.sendall(_HEADER.pack(len(payload)))
    conn.sendall(payload)


def _receive_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        data += chunk
    return data


def _receive(conn: socket.socket, with_fds: int = 0) -> tuple[dict, list[int]]:
    fds: list[int] = []
    if with_fds:
        header, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, with_fds)
        if not header:
            raise ConnectionError("the other side closed the connection")
        header += _receive_exactly(conn, _HEADER.size - len(header))
    else:
        header = _receive_exactly(conn, _HEADER.size)
    (size,) = _HEADER.unpack(header)
    return json.loads(_receive_exactly(conn, size)), fds


def environment_difference(job: dict[str, str], server: dict[str, str]) -> list[str]:
    """The variables (sorted) whose value differs between a job's environment and the server's, or that one of
    them lacks, leaving out PER_JOB_VARIABLES."""
    keys = (job.keys() | server.keys()) - PER_JOB_VARIABLES
    return sorted(key for key in keys if job.get(key) != server.get(key))


# ---------------------------------------------------------------------------------------------------- the job's side

def handoff(script: str | None = None) -> None:
    """Run this job in a fork of the warm server named by WARM_SOCKET, and exit as it exits; return at once (the
    job runs here) if there is no variable, no server, or the server declines, saying why on stderr."""
    address = os.environ.get(WARM_SOCKET)
    script = script or sys.argv[0]
    if not address or not os.path.isfile(script):    # a script's job only: the fork runs the file again
        return
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address)
        request = {"argv": [script, *sys.argv[1:]], "cwd": os.getcwd(), "env": dict(os.environ)}
        _send(conn, request, fds=[0, 1, 2])
        reply, _ = _receive(conn)
    except OSError as error:
        conn.close()
        print(f"warm worker at {address} not reached ({error}): the job runs in its own process", file=sys.stderr)
        return
    if "declined" in reply:
        conn.close()
        print(f"warm worker declined ({reply['declined']}): the job runs in its own process", file=sys.stderr)
        return
    pid = reply["pid"]

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    try:
        status, _ = _receive(conn)
    except (OSError, ConnectionError) as error:
        forward(signal.SIGKILL, None)
        print(f"warm worker at {address} lost ({error}) while the job ran", file=sys.stderr)
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    if "signal" in status:
        signal.signal(status["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), status["signal"])
    os._exit(status["exit"])


# ------------------------------------------------------------------------------------------------ the server's side

def preload(modules=PRELOAD) -> float:
    """Import `modules` (PRELOAD's form) on one thread each; the seconds it took."""
    import time

    start = time.perf_counter()
    for name in PRELOAD_THREADS:
        os.environ[name] = "1"
    for module, names in modules:
        loaded = importlib.import_module(module)
        for attribute in names:
            getattr(loaded, attribute)
    return time.perf_counter() - start


def _cuda_initialised() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


class _Job:
    """What a forked child runs: a script as `python script args...` would, in the job's directory and
    environment, with its streams; its watcher kills it if the job's process goes."""

    def __init__(self, request: dict, fds: list[int], conn: socket.socket):
        self.request, self.fds, self.conn = request, fds, conn

    def run(self) -> int:
        os.setpgid(0, 0)             # terminal signals reach it through its job's process only, as they reach that
        for target, fd in enumerate(self.fds):
            os.dup2(fd, target)
            if fd > 2:
                os.close(fd)
        os.chdir(self.request["cwd"])
        os.environ.clear()
        os.environ.update(self.request["env"])
        argv = self.request["argv"]
        sys.argv = list(argv)
        sys.path[0] = str(Path(argv[0]).resolve().parent)
        threading.Thread(target=self._watch, daemon=True, name="warm-watch").start()
        import runpy

        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as stop:
            code = stop.code
            if code is None:
                return 0
            if isinstance(code, int):
                return code
            print(code, file=sys.stderr)
            return 1
        except KeyboardInterrupt:                   # as the interpreter ends on one: by SIGINT, after the report
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            return 130
        except BaseException:                       # noqa: BLE001 - as the interpreter reports an uncaught error
            traceback.print_exc()
            return 1
        return 0

    @staticmethod
    def exit(code: int) -> None:
        """End as an interpreter ends a script - its threads joined, its exit functions run, its streams flushed -
        but without tearing down the modules it shares with the server (as multiprocessing's forks end): that
        would touch, and so copy, every page of the server's heap."""
        threading._shutdown()                         # noqa: SLF001 - what the interpreter runs at exit
        atexit._run_exitfuncs()                       # noqa: SLF001
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    def _watch(self) -> None:
        with contextlib.suppress(OSError):
            while self.conn.recv(64):
                pass
        os.kill(os.getpid(), signal.SIGKILL)          # the job's process is gone: so is the job


def serve(address: str, modules=PRELOAD, ready: str | None = None) -> _Job | None:
    """Listen at `address`, preload `modules`, then fork a child per request until SIGTERM. Returns in a child
    (the job it must run); returns None in the server when it stops."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    environment = dict(os.environ)                    # what a job's environment is checked against
    gc.disable()                                      # the preloaded heap stays compact: a fork shares its pages
    # A library asking torch whether CUDA is there while it loads must not start the CUDA driver here (a fork
    # of a process that did cannot use CUDA): NVML answers instead, for the preload only.
    nvml_check = "PYTORCH_NVML_BASED_CUDA_CHECK"
    ours = nvml_check not in os.environ
    os.environ.setdefault(nvml_check, "1")
    seconds = preload(modules)
    if ours:
        del os.environ[nvml_check]
    gc.freeze()                                       # and no collection in a fork walks (so copies) them
    usable = not _cuda_initialised()
    # Variables the imports set (a library's own, e.g. LD_LIBRARY_PATH): a job's fresh process would set them too.
    imported = {k: v for k, v in os.environ.items() if environment.get(k) != v and k not in PRELOAD_THREADS}
    if ready:
        Path(ready).write_text(json.dumps({"preload_s": round(seconds, 2), "usable": usable}))
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    stopping = []
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the command's to handle; it stops this server after
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    running: dict[int, socket.socket] = {}
    while not stopping:
        for key, _ in selector.select(timeout=5.0):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                job = _accept(conn, environment, imported, usable, running)
                if job is not None:                   # the child: drop the server's state and run the job
                    gc.enable()
                    signal.set_wakeup_fd(-1)
                    for signum in (signal.SIGCHLD, signal.SIGTERM):
                        signal.signal(signum, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.default_int_handler)    # as a fresh interpreter has it
                    selector.close()
                    listener.close()
                    os.close(wake_read)
                    os.close(wake_write)
                    for other in running.values():
                        other.close()
                    return job
            else:
                os.read(wake_read, 512)
        _reap(running)
        if os.getppid() != parent:                    # the command's wrapper is gone (killed): so is its server
            break
    for pid, conn in running.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        conn.close()
    listener.close()
    return None


def _accept(conn: socket.socket, environment: dict, imported: dict, usable: bool, running: dict) -> _Job | None:
    try:
        request, fds = _receive(conn, with_fds=3)
    except (OSError, ConnectionError, ValueError):
        conn.close()
        return None
    declined = None
    if not usable:
        declined = "CUDA was initialised while preloading"
    elif difference := environment_difference(request["env"], environment):
        declined = "environment differs from the server's in " + ", ".join(difference[:5])
    if declined:
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            _send(conn, {"declined": declined})
        conn.close()
        return None
    pid = os.fork()
    if pid == 0:
        request["env"] = {**{k: v for k, v in request["env"].items() if k != WARM_SOCKET}, **imported}
        return _Job(request, fds, conn)
    for fd in fds:
        os.close(fd)
    running[pid] = conn
    with contextlib.suppress(OSError):
        _send(conn, {"pid": pid})
    return None


def _reap(running: dict) -> None:
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = running.pop(pid, None)
        if conn is None:
            continue
        message = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                   else {"exit": os.waitstatus_to_exitcode(status)})
        with contextlib.suppress(OSError):
            _send(conn, message)
        conn.close()


# ------------------------------------------------------------------------------------------------------- the wrapper

def run_warm(command: list[str], modules=PRELOAD) -> int:
    """Run `command` with a warm server beside it (WARM_SOCKET set for it and its jobs); its exit code."""
    with tempfile.TemporaryDirectory(prefix="chimerapipe-warm-") as folder:
        address = os.path.join(folder, "socket")
        ready = os.path.join(folder, "ready")
        env = {**os.environ, **{name: "1" for name in PRELOAD_THREADS}}
        server_args = [sys.executable, "-m", "ChimeraPipe.core.warm", "--serve", address, "--ready", ready]
        if modules != PRELOAD:
            server_args += ["--modules", json.dumps(modules)]
        server = subprocess.Popen(server_args, env=env)
        try:
            for _ in range(600):                      # it binds at once, then preloads; jobs queue meanwhile
                if os.path.exists(address) or server.poll() is not None:
                    break
                threading.Event().wait(0.05)
            job_env = dict(os.environ)
            if server.poll() is None:
                job_env[WARM_SOCKET] = address
            else:
                print("warm worker did not start: every job runs in its own process", file=sys.stderr)
            proc = subprocess.Popen(command, env=job_env)
            # A cancelled run (SIGTERM, SIGHUP) reaches the command; Ctrl-C reaches it from the terminal itself.
            for signum in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, lambda signum, _frame: proc.send_signal(signum))
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            code = proc.wait()
            return 128 - code if code < 0 else code    # killed by a signal: the shell's number for it
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ChimeraPipe.core.warm",
                                     description="Run a command (snakemake) with warm workers for its jobs.")
    parser.add_argument("--serve", metavar="SOCKET", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--modules", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    modules = tuple((m, tuple(n)) for m, n in json.loads(args.modules)) if args.modules else PRELOAD
    if args.serve:
        job = serve(args.serve, modules, args.ready)
        if job is None:
            return 0
        job.exit(job.run())
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (python -m ChimeraPipe.core.warm -- snakemake ...)")
    return run_warm(command, modules)


if __name__ == "__main__":
    sys.exit(main())

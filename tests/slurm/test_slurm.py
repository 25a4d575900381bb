"""The demo on a real SLURM cluster (slurmctld + slurmd + slurmdbd with MariaDB accounting).

Runs only where a cluster is up: start one with `tests/slurm/cluster.sh start` (root, Debian) and
export SLURM_CONF as `cluster.sh env` prints; `make test-slurm` does all of it.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from ChimeraPipe.core.io import load_tensors
from ChimeraPipe.diffusion.train import train_lora
from ChimeraPipe.pipeline.settings import LoraTrainConfig

REPO = Path(__file__).resolve().parents[2]
RULES = ["build_tiny_model", "demo_data", "split", "detect", "crops", "train", "generate", "classify",
         "evaluate", "report", "sample_grid", "box_quality", "embed_test", "embed_shots", "embed_synth",
         "embed_prompts", "gap_metrics", "tsne", "dataset_table", "lora_spread"]


READY_STATES = ("idle", "mixed", "allocated", "mix", "alloc")  # sinfo %T long names, %t short


def node_ready(returncode: int, sinfo_states: str) -> bool:
    """sinfo answered and some node can run jobs (idle, or partly/fully allocated and so alive)."""
    return returncode == 0 and any(state in sinfo_states.split() for state in READY_STATES)


def must_run() -> bool:
    """In CI and under `make test-slurm` a cluster was started for these tests: not running them is a failure."""
    return os.environ.get("CI") == "true" or os.environ.get("CHIMERAPIPE_REQUIRE_SLURM") == "1"


def cluster_state(wait_s: float = 60) -> str | None:
    """None when a node is ready; otherwise why not (after waiting up to wait_s for a busy node to settle)."""
    if not os.environ.get("SLURM_CONF"):
        return "SLURM_CONF is not set (start a cluster with tests/slurm/cluster.sh)"
    if not shutil.which("sinfo"):
        return "sinfo is not on PATH"
    deadline = time.time() + wait_s
    while True:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if node_ready(state.returncode, state.stdout):
            return None
        if time.time() > deadline:
            return f"no SLURM node is ready: sinfo exit {state.returncode}, states {state.stdout.split()}, " \
                   f"{state.stderr.strip()[:200]}"
        time.sleep(2)


@pytest.fixture(autouse=True)
def slurm_cluster():
    why = cluster_state()
    if why and must_run():
        pytest.fail(f"the SLURM tests must run here (CI or make test-slurm), but {why}")
    if why:
        pytest.skip(why)


pytestmark = [pytest.mark.slurm]


def slurm_command(config: Path, *extra: str, targets: tuple[str, ...] = (), timeout: int = 900) -> list[str]:
    """Snakemake through the project's SLURM profile, sized down for a 2-core test node.

    Targets come first: the multi-value options at the end would swallow them. `timeout -k` makes sure a
    snakemake stuck past its limit is killed rather than left hanging the test. The working directory is
    the config's folder, not the repository: CI runs these tests beside `make test`, and snakemake runs
    sharing a working directory share `.snakemake/locks`, which each of them deletes when it ends."""
    return ["timeout", "-k", "20", str(timeout), sys.executable, "-m", "snakemake", *targets,
            "--profile", str(REPO / "profiles" / "slurm"), "--directory", str(config.parent),
            "--snakefile", str(REPO / "Snakefile"), "--configfile", str(config),
            "--jobs", "4", "--cores", "2", "--resources", "mem_mb=6000", "--retries", "0",
            "--slurm-init-seconds-before-status-checks", "2", *extra,
            "--default-resources", "slurm_partition=debug", "slurm_account=chimerapipe",
            "--set-resources", *[f"{r}:mem_mb=1500" for r in RULES], *[f"{r}:runtime=15" for r in RULES],
            "--set-threads", *[f"{r}=1" for r in RULES]]


def slurm_snakemake(config: Path, *extra: str, targets: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(slurm_command(config, *extra, targets=targets), capture_output=True, text=True)


def write_config(root: Path, **changes) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    results = root / "results"
    config.update({"results": str(results), "methods": ["real", "chimera"], "num_images": 4, "alpha": 1.0,
                   "classes_per_job": 1, "train": {"steps": 12, "checkpoint_every": 5}, **changes})
    # One dataset of two classes keeps the job count (and SLURM's per-layer scheduling latency) small on a
    # 2-core node; one class per job unless changed, so a part is a class. No box-quality table: it would add
    # the detect and crops jobs of two more box backends.
    del config["datasets"]["shapes_longtail"]
    config["datasets"]["shapes"].update(root=str(results / "data" / "shapes"), classes=["circle", "square"],
                                        box_quality=False)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sacct_rules(since: str) -> set[str]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-S", since, "-o", "Comment,State"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split("|")[0] for line in out.splitlines() if line.endswith("COMPLETED")}


def test_demo_runs_on_slurm_with_accounting(tmp_path):
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    config = write_config(tmp_path, classes_per_job=2)
    # The part's chain from boxes to synthetic images runs as one group job (one part of both classes here).
    result = slurm_snakemake(config, "--groups", "detect=chain", "crops=chain", "train=chain", "generate=chain")
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    results = tmp_path / "results"
    table = pd.read_csv(results / "report" / "accuracy.csv")
    assert sorted(set(table["row"])) == ["chimera (α=1)", "real"]
    assert (results / "report" / "report.html").is_file()
    manifest = pd.read_csv(results / "shapes" / "shots4_seed0" / "synth" / "chimera" / "alpha1" / "circle" /
                           "manifest.csv")
    assert len(manifest) == 4
    # Every stage really ran as a SLURM job: the plugin tags jobs with their rule in the comment.
    comments = " ".join(sacct_rules(since))
    for rule in ("build_tiny_model", "split", "classify", "evaluate", "embed_synth", "gap_metrics", "report"):
        assert f"rule_{rule}" in comments, comments
    assert "rule_chain_" in comments, comments  # the group job of detect, crops, train, generate


def running_job(comment_part: str, deadline: float) -> str | None:
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            job_id, _, comment = line.partition(" ")
            if comment_part in comment:
                return job_id
        time.sleep(0.5)
    return None


def test_scancel_mid_training_then_rerun_resumes_from_checkpoint(tmp_path):
    steps = 150
    config = write_config(tmp_path, train={"steps": steps, "checkpoint_every": 10}, methods=["chimera"])
    results = tmp_path / "results"
    lora_dir = results / "shapes" / "shots4_seed0" / "lora" / "chimera" / "circle"
    target = str(lora_dir.parent / "parts" / "p000.json")  # the part holding circle (one class per job)
    proc = subprocess.Popen(slurm_command(config, targets=(target,), timeout=600),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = lora_dir.parent / ".checkpoints"  # the part's training groups checkpoint here, one file each

    def checkpoint_written() -> bool:
        return any(checkpoints.glob("*.safetensors"))

    deadline = time.time() + 450
    while not checkpoint_written() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    job = running_job("rule_train", time.time() + 5)
    assert checkpoint_written() and job, "training never reached its first checkpoint under SLURM"
    time.sleep(1.0)
    subprocess.run(["scancel", job], check=True)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        # Seen with plugin 2.8: the controller can keep waiting on a cancelled job; stop it as a user would.
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    assert not Path(target).exists() and not (lora_dir / "adapter.safetensors").exists() and checkpoint_written()
    subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--directory", str(tmp_path), "--snakefile",
                    str(REPO / "Snakefile"), "--configfile", str(config)], capture_output=True, check=True)

    result = slurm_snakemake(config, targets=(target,))
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    log = (results / "logs" / "train" / "shapes" / "shots4_seed0" / "chimera" / "p000.log").read_text()
    assert "resuming from" in log
    assert not checkpoints.exists()  # the finished group removed its checkpoint, then the empty folder went

    # The same adapter as one uninterrupted run on the same cached views.
    views = results / "shapes" / "shots4_seed0" / "crops" / "box-grounded_sam" / "circle" / "views.safetensors"
    reference = tmp_path / "reference" / "adapter.safetensors"
    meta = json.loads((lora_dir / "adapter.json").read_text())
    cfg = LoraTrainConfig(**{**meta["training"], "targets": tuple(meta["training"]["targets"])})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the SLURM job (threads=1): float sums depend on the thread count
    try:
        train_lora(str(results / "models" / "tiny-diffusion"), views, meta["prompt"], reference, cfg)
    finally:
        torch.set_num_threads(threads)
    ref, got = load_tensors(reference), load_tensors(lora_dir / "adapter.safetensors")
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)

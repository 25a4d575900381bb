"""Device and precision choice, the learning-rate schedule, and the set-up every rule's job does first.

Torch is imported where a function needs it, not with this module: every job's script imports it first, and
the jobs that never touch a tensor (splits, tables, the report) start without paying for torch."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# The variables the BLAS / OpenMP pools read when torch (or numpy) first starts them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

PRECISIONS = ("auto", "fp32", "fp16", "bf16")

# The base pretraining (rule pretrain_base) takes every core its job may use, since nothing downstream of the
# base can start before it ends; this variable caps it where other work shares the machine (make test's
# laptop-scale run sets 1). Float sums depend on the thread count: a capped base differs in its last bits.
PRETRAIN_THREADS = "CHIMERAPIPE_PRETRAIN_THREADS"


def pretrain_threads() -> int:
    """Threads of the base pretraining: every core this process may use, or fewer if PRETRAIN_THREADS says so."""
    cores = len(os.sched_getaffinity(0))
    value = os.environ.get(PRETRAIN_THREADS, "").strip()
    if not value:
        return cores
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PRETRAIN_THREADS}={value!r}: expected a whole number of threads, at least 1")
    return min(int(value), cores)


def pick_device(spec: str = "auto") -> str:
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available")
    return spec


@dataclasses.dataclass(frozen=True)
class Precision:
    """What a precision setting means on a device: the autocast dtype (None = full fp32) and whether
    gradients need loss scaling (fp16's range underflows small LoRA gradients; bf16's does not)."""
    autocast: torch.dtype | None
    scale_loss: bool

    @property
    def name(self) -> str:
        import torch

        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast]

    def autocast_on(self, device: str) -> torch.autocast:
        """The autocast context of this precision on `device` (disabled for fp32)."""
        import torch

        return torch.autocast(device.split(":")[0], dtype=self.autocast, enabled=self.autocast is not None)


def resolve_precision(device: str, precision: str = "auto", bf16_supported: bool | None = None) -> Precision:
    """auto: bf16 on GPUs that have it (A100, H100), fp16 with loss scaling on those that don't (V100,
    T4); CPU always runs fp32. `bf16_supported` defaults to asking the current GPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32" or not device.startswith("cuda"):
        return Precision(None, False)
    import torch

    if precision == "auto":
        if bf16_supported is None:
            bf16_supported = torch.cuda.is_bf16_supported()
        precision = "bf16" if bf16_supported else "fp16"
    if precision == "bf16":
        return Precision(torch.bfloat16, False)
    return Precision(torch.float16, True)


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.0) -> float:
    """Learning-rate factor: linear warm-up over `warmup` steps, then cosine decay from 1 to `floor`.

    A pure function of the step, so a resumed run needs no scheduler state."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def loader_workers(threads: int) -> int:
    """DataLoader workers for a job of `threads` threads: all but one, which the main process keeps for the model."""
    return max(0, threads - 1)


def setup_logging(log_file: str | Path | None = None) -> None:
    """Send logging, warnings and tqdm bars (stderr) of a rule's job to its log file."""
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_file, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    for noisy in ("httpx", "urllib3", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def hub_offline() -> None:
    """No Hugging Face hub access from here on (HF_HUB_OFFLINE=1): jobs load staged folders only, so a hub id
    that slipped through fails at once instead of racing a thousand jobs on one cache."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:   # already imported: it read the variable at import time
        constants.HF_HUB_OFFLINE = True


def use_threads(threads: int) -> None:
    """Compute on `threads` threads: set for torch now if it is loaded, else through the variables it reads when
    it loads (so a job that never imports torch never pays for it); DataLoader workers inherit them."""
    threads = max(1, int(threads))
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def start_job(log_file: str | Path | None, threads: int | None = None, offline: bool = True) -> None:
    """What every rule's script does first: log to the rule's log, use the cores it was given, and keep off the
    hub (`offline=False` only for the fetch step). Under a warm server (core.warm) the job first moves into a fork
    of it, which runs the script again from its first line."""
    from .warm import handoff

    handoff()
    setup_logging(log_file)
    if offline:
        hub_offline()
    if threads:
        use_threads(threads)

"""Device choice, seeding and logging set-up shared by the stages."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import sys
from pathlib import Path

import torch


def pick_device(spec: str = "auto") -> str:
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available")
    return spec


def autocast_dtype(device: str, precision: str = "auto") -> torch.dtype | None:
    """bf16 autocast on GPUs that have it, fp16 otherwise; None (full fp32) on CPU or when asked."""
    if precision == "fp32" or not device.startswith("cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def stable_seed(*parts) -> int:
    """A 31-bit seed derived from any parts (class names, indices): stable across runs and machines."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def file_digest(path: str | Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


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


def start_job(log_file: str | Path | None, threads: int | None = None) -> None:
    """What every rule's script does first: log to the rule's log, and use the cores it was given."""
    setup_logging(log_file)
    if threads:
        torch.set_num_threads(max(1, int(threads)))


def settings_dataclass(cls, settings: dict, section: str):
    """Build a settings dataclass, naming the config section of any unknown key."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {unknown}; known: {sorted(known)}")
    return cls(**settings)


def class_prompt(class_name: str, prefix: str = "") -> str:
    """The anchors' template "a {prefix}photo of a {class}" (prefix e.g. "aircraft ", or empty)."""
    return f"a {prefix}photo of a {class_name.replace('_', ' ')}"

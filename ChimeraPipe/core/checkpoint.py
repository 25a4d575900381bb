"""Resumable training state in one safetensors file (no pickles): tensors (parameters, buffers), optimizer
moments, RNG states and a little JSON (history, loss scale). A checkpoint whose fingerprint differs from
the run's (other inputs or settings) is ignored, never half-used."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from .io import load_tensors, save_tensors

log = logging.getLogger(__name__)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value).detach().clone().cpu()
    return tensors


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state_dict = optimizer.state_dict()
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)


class Checkpoint:
    """`save` after a step or epoch, `load` at the start of a run: the state is restored in place into the
    same objects (tensors by name, the optimizer, the generators, the global torch RNG when asked for)."""

    def __init__(self, path: str | Path, fingerprint: str):
        self.path, self.fingerprint = Path(path), fingerprint

    def save(self, step: int, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
             generators: dict[str, torch.Generator], scaler: torch.amp.GradScaler | None = None,
             global_rng: bool = False, extra: dict | None = None) -> None:
        out = {f"param.{k}": v.detach().cpu() for k, v in tensors.items()}
        out.update(_optimizer_tensors(optimizer))
        out.update({f"rng.{name}": g.get_state() for name, g in generators.items()})
        if global_rng:
            out["rng_global"] = torch.get_rng_state()
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                out.update({f"rng_cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
        metadata = {"step": str(step), "fingerprint": self.fingerprint, "extra": json.dumps(extra or {})}
        if scaler is not None and scaler.is_enabled():  # fp16 loss scale, so a resumed run scales alike
            metadata["grad_scaler"] = json.dumps(scaler.state_dict())
        save_tensors(self.path, out, metadata=metadata)

    def load(self, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
             generators: dict[str, torch.Generator], scaler: torch.amp.GradScaler | None = None,
             global_rng: bool = False) -> tuple[int, dict]:
        """Restore and return (the step to continue from, the saved extra); (0, {}) without a usable one."""
        if not self.path.is_file():
            return 0, {}
        from safetensors import safe_open

        with safe_open(str(self.path), "pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("fingerprint") != self.fingerprint:
            log.warning("%s belongs to other inputs or settings; starting from scratch", self.path)
            return 0, {}
        saved = load_tensors(self.path)
        with torch.no_grad():
            for key, tensor in tensors.items():
                tensor.copy_(saved[f"param.{key}"])
        _restore_optimizer(optimizer, saved)
        for name, generator in generators.items():
            generator.set_state(saved[f"rng.{name}"])
        if global_rng:
            torch.set_rng_state(saved["rng_global"])
            cuda = [saved[k] for k in sorted((k for k in saved if k.startswith("rng_cuda.")),
                                             key=lambda k: int(k.split(".")[1]))]
            if cuda and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(cuda)
        if scaler is not None and "grad_scaler" in meta:
            scaler.load_state_dict(json.loads(meta["grad_scaler"]))
        step = int(meta["step"])
        log.info("resuming from %s at step %d", self.path, step)
        return step, json.loads(meta.get("extra", "{}"))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

"""How far trained LoRA heads move the base's weights, and how much the heads differ from each other.

Per UNet attention projection of a class adapter: the mean head's delta (scale * B A, a shared factor
broadcast over the other's heads) as a share of the base weight's norm, and the heads' RMS spread around
that mean in the same unit. If both are small, no mixture of heads can move the images far from one another."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
from safetensors.torch import load_file


def head_deltas(adapter: str | Path) -> dict[str, torch.Tensor]:
    """UNet module -> [heads, out, in] deltas of an adapter file."""
    adapter = Path(adapter)
    tensors, meta = load_file(adapter), json.loads(adapter.with_suffix(".json").read_text())
    scale = meta["lora_alpha"] / meta["rank"]
    deltas = {}
    for key, a in tensors.items():
        if key.startswith("unet.") and key.endswith(".lora_A"):
            b = tensors[key.removesuffix("A") + "B"]          # a [n_a, r, in], b [n_b, out, r]
            deltas[key.removeprefix("unet.").removesuffix(".lora_A")] = scale * torch.einsum("hor,hri->hoi", b, a)
    return deltas


def base_weights(diffusion: str | Path) -> dict[str, torch.Tensor]:
    """The base UNet's weights of a diffusers pipeline folder."""
    return load_file(Path(diffusion) / "unet" / "diffusion_pytorch_model.safetensors")


def adapter_spread(adapter: str | Path, weights: dict[str, torch.Tensor]) -> dict[str, float]:
    """Medians over the adapter's UNet projections: `moved` (mean head's delta / |W0|), `spread` (heads' RMS
    spread around it / |W0|; NaN for a one-head adapter)."""
    moved, spread = [], []
    for module, d in head_deltas(adapter).items():
        w0 = weights[f"{module}.weight"].float().norm()
        mean = d.mean(0)
        moved.append(float(mean.norm() / w0))
        if d.shape[0] > 1:
            spread.append(float((d - mean).norm() / d.shape[0] ** 0.5 / w0))
    return {"moved": statistics.median(moved), "spread": statistics.median(spread) if spread else float("nan")}


def method_spread(adapters: dict[str, str], diffusion: str | Path) -> dict:
    """Each class adapter's medians and their median over the classes."""
    weights = base_weights(diffusion)
    per_class = {cls: adapter_spread(path, weights) for cls, path in adapters.items()}
    summary = {key: statistics.median(v[key] for v in per_class.values()) for key in ("moved", "spread")}
    return {"summary": summary, "per_class": per_class, "adapters": len(per_class)}

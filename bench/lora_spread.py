"""How far the trained LoRA heads move the base's weights, and how much the heads differ from each other.

    .venv/bin/python bench/lora_spread.py results_mini digits-base chimera loft shared_b

Per UNet attention projection of every trained class adapter: the mean head's delta, scale * B A, as a
share of the base weight's norm, and the heads' rms spread around that mean, same unit (medians printed).
If both are small, no Dirichlet mixture of heads can move the generated images far from one another."""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def head_deltas(adapter: Path) -> dict[str, torch.Tensor]:
    """UNet module -> [heads, out, in] deltas (a shared factor broadcast over the other's heads)."""
    tensors, meta = load_file(adapter), json.loads(adapter.with_suffix(".json").read_text())
    scale = meta["lora_alpha"] / meta["rank"]
    deltas = {}
    for key, a in tensors.items():
        if not (key.startswith("unet.") and key.endswith(".lora_A")):
            continue
        b = tensors[key.removesuffix("A") + "B"]          # a [n_a, r, in], b [n_b, out, r]
        deltas[key.removeprefix("unet.").removesuffix(".lora_A")] = scale * torch.einsum("hor,hri->hoi", b, a)
    return deltas


def spread(results: Path, base: str, method: str) -> tuple[float, float, int]:
    weights = load_file(results / "models" / base / "unet" / "diffusion_pytorch_model.safetensors")
    moved, spread_ = [], []
    adapters = sorted(results.glob(f"*/shots*_seed*/lora/{method}/*/adapter.safetensors"))
    for adapter in adapters:
        for module, d in head_deltas(adapter).items():
            w0 = weights[f"{module}.weight"].norm()
            mean = d.mean(0)
            moved.append(float(mean.norm() / w0))
            if d.shape[0] > 1:
                spread_.append(float((d - mean).norm() / d.shape[0] ** 0.5 / w0))
    return statistics.median(moved), statistics.median(spread_) if spread_ else float("nan"), len(adapters)


if __name__ == "__main__":
    results, base, *methods = sys.argv[1:] or ["results_mini", "digits-base", "chimera", "loft", "shared_b"]
    print("method          adapters  mean-head delta / |W0|  heads' spread / |W0|   (medians over UNet projections)")
    for method in methods:
        moved, heads, n = spread(Path(results), base, method)
        print(f"{method:<16}{n:>8}  {moved:>22.4f}  {heads:>20.4f}")

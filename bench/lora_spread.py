"""How far the trained LoRA heads move the base's weights, and how much the heads differ from each other.

    .venv/bin/python bench/lora_spread.py results_mini digits-base chimera loft shared_b

Per UNet attention projection of every trained class adapter: the mean head's delta, scale * B A, as a
share of the base weight's norm, and the heads' rms spread around that mean, same unit (medians printed).
If both are small, no Dirichlet mixture of heads can move the generated images far from one another."""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from ChimeraPipe.metrics.spread import adapter_spread, base_weights


def spread(results: Path, base: str, method: str) -> tuple[float, float, int]:
    """Medians over every class adapter of `method` in a results folder (metrics.spread's figures)."""
    weights = base_weights(results / "models" / base)
    adapters = sorted(results.glob(f"*/shots*_seed*/lora/{method}/*/adapter.safetensors"))
    values = [adapter_spread(a, weights) for a in adapters]
    spreads = [v["spread"] for v in values if v["spread"] == v["spread"]]
    return (statistics.median(v["moved"] for v in values), statistics.median(spreads) if spreads else float("nan"),
            len(adapters))


if __name__ == "__main__":
    results, base, *methods = sys.argv[1:] or ["results_mini", "digits-base", "chimera", "loft", "shared_b"]
    print("method          adapters  mean-head delta / |W0|  heads' spread / |W0|   (medians of per-class medians)")
    for method in methods:
        moved, heads, n = spread(Path(results), base, method)
        print(f"{method:<16}{n:>8}  {moved:>22.4f}  {heads:>20.4f}")

"""The generate stage: N images per class, each with its own head weights, mixed inside one batched forward.

Head weights per image (`mixing`):
  dirichlet  w ~ Dir(alpha * 1_K), fresh for every image (ChimeraLoRA)
  pairs      LoFT: all pairs of heads, shuffled and cycled, fused at 0.5/0.5
  uniform    w = 1/K (the heads' mean)
  single     one head (K = 1: class-wise LoRA)
Image j's noise and weights come from seeds derived from (class seed, j), so a resumed or re-batched run
produces the same images.
"""
from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .adapter import load_adapter
from .io import save_image, write_csv, write_json
from .lora import head_weights
from .runtime import autocast_dtype, file_digest, stable_seed

log = logging.getLogger(__name__)
MIXINGS = ("dirichlet", "pairs", "uniform", "single")


def mixing_weights(mixing: str, heads: int, count: int, alpha: float, seed: int) -> np.ndarray:
    """[count, heads] head weights, one row per generated image; rows sum to 1."""
    if mixing not in MIXINGS:
        raise ValueError(f"mixing must be one of {MIXINGS}, got {mixing!r}")
    if mixing == "single" or heads == 1:
        return np.ones((count, heads)) / heads
    if mixing == "uniform":
        return np.full((count, heads), 1.0 / heads)
    if mixing == "pairs":
        pairs = list(itertools.combinations(range(heads), 2))
        order = np.random.default_rng(seed).permutation(len(pairs))
        weights = np.zeros((count, heads))
        for j in range(count):
            a, b = pairs[order[j % len(pairs)]]
            weights[j, [a, b]] = 0.5
        return weights
    if alpha <= 0:
        raise ValueError(f"Dirichlet alpha must be positive, got {alpha}")
    return np.stack([np.random.default_rng(stable_seed(seed, "w", j)).dirichlet(np.full(heads, alpha))
                     for j in range(count)])


def image_seeds(count: int, seed: int) -> list[int]:
    return [stable_seed(seed, "noise", j) for j in range(count)]


def load_pipeline(diffusion_path: str, device: str, precision: str = "auto"):
    from diffusers import StableDiffusionPipeline

    dtype = autocast_dtype(device, precision) or torch.float32
    pipe = StableDiffusionPipeline.from_pretrained(diffusion_path, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate_class(diffusion_path: str, adapter_path: str | Path | None, prompt: str, out_dir: str | Path,
                   manifest_path: str | Path, count: int, alpha: float, mixing: str, seed: int,
                   guidance_scale: float = 2.0, steps: int = 50, batch_size: int = 8, resolution: int = 512,
                   device: str = "cpu", precision: str = "auto", class_name: str = "") -> pd.DataFrame:
    """Write `count` PNGs into out_dir and a manifest (file, seed, head weights) at manifest_path.

    Images already present from an interrupted run with the same adapter and settings are kept.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = load_pipeline(diffusion_path, device, precision)
    heads = 1
    if adapter_path is not None:
        heads = load_adapter(adapter_path, pipe.unet, pipe.text_encoder)["heads"]
        pipe.unet.to(device)  # LoRA tensors stay fp32; the layer casts them to the activations' dtype
        pipe.text_encoder.to(device)
    weights = mixing_weights(mixing, heads, count, alpha, seed)
    seeds = image_seeds(count, seed)
    files = [f"{j:05d}.png" for j in range(count)]

    # Images on disk count only if they come from this very adapter and these settings.
    fingerprint = {"adapter": file_digest(adapter_path) if adapter_path else None, "prompt": prompt,
                   "alpha": alpha, "mixing": mixing, "seed": seed, "guidance": guidance_scale, "steps": steps,
                   "resolution": resolution, "diffusion": diffusion_path}
    stamp = out_dir / "settings.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != fingerprint:
        for stale in out_dir.glob("*.png"):
            stale.unlink()
        write_json(stamp, fingerprint)
    todo = [j for j in range(count) if not (out_dir / files[j]).is_file()]
    if len(todo) < count:
        log.info("resuming: %d of %d images already generated", count - len(todo), count)

    with torch.no_grad():
        positive, negative = pipe.encode_prompt(prompt, device, 1, True)
    for start in tqdm(range(0, len(todo), batch_size), desc=f"generate {class_name}", mininterval=5):
        batch = todo[start:start + batch_size]
        generators = [torch.Generator().manual_seed(seeds[j]) for j in batch]
        w = torch.as_tensor(weights[batch], dtype=torch.float32)
        with head_weights(pipe.unet, w):
            images = pipe(prompt_embeds=positive.expand(len(batch), -1, -1),
                          negative_prompt_embeds=negative.expand(len(batch), -1, -1),
                          num_inference_steps=steps, guidance_scale=guidance_scale, height=resolution,
                          width=resolution, generator=generators).images
        for j, image in zip(batch, images):
            save_image(out_dir / files[j], image)

    manifest = pd.DataFrame({"class": class_name, "file": [str(out_dir / f) for f in files], "seed": seeds})
    for k in range(heads):
        manifest[f"w{k}"] = weights[:, k]
    write_csv(manifest_path, manifest)
    return manifest

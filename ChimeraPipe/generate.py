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
from .runtime import autocast_dtype, file_digest, resolve_precision, stable_seed
from .settings import GenerationSettings

log = logging.getLogger(__name__)
MIXINGS = ("dirichlet", "pairs", "uniform", "single")


def check_alpha(alpha: float | None) -> float:
    """Dirichlet concentration: a positive number (0 or a negative value is an error, never a default)."""
    if alpha is None or isinstance(alpha, bool) or not alpha > 0:
        raise ValueError(f"Dirichlet alpha must be a positive number, got {alpha!r}")
    return float(alpha)


def mixing_weights(mixing: str, heads: int, count: int, alpha: float | None, seed: int) -> np.ndarray:
    """[count, heads] head weights, one row per generated image; rows sum to 1. Only Dirichlet mixing
    reads alpha."""
    if mixing not in MIXINGS:
        raise ValueError(f"mixing must be one of {MIXINGS}, got {mixing!r}")
    if mixing == "dirichlet":
        alpha = check_alpha(alpha)
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


def pixel_fingerprint(diffusion_path: str, adapter_path: str | Path | None, prompt: str, alpha: float | None,
                      mixing: str, seed: int, settings: GenerationSettings, device: str) -> dict:
    """Every input that changes the pixels of image j: images on disk are kept only when it matches.

    Left out on purpose: the image count (image j depends only on j) and the batch size (a resumed run
    re-batches anyway; batch composition moves pixels by at most one grey level)."""
    return {"diffusion": str(diffusion_path), "adapter": file_digest(adapter_path) if adapter_path else None,
            "prompt": prompt, "mixing": mixing, "alpha": float(alpha) if mixing == "dirichlet" else None,
            "seed": seed, "guidance_scale": float(settings.guidance_scale), "steps": settings.steps,
            "resolution": settings.resolution, "device": device.split(":")[0],
            "precision": resolve_precision(device, settings.precision).name}


def _clear_stale(out_dir: Path, fingerprint: dict) -> None:
    """Drop images made with other settings and temp files of a killed run; then stamp the settings."""
    stamp = out_dir / "settings.json"
    for leftover in out_dir.glob(".*.tmp*"):  # atomic writes interrupted by SIGKILL
        leftover.unlink()
    if not stamp.is_file() or json.loads(stamp.read_text()) != fingerprint:
        for stale in out_dir.glob("*.png"):
            stale.unlink()
        write_json(stamp, fingerprint)


def generate_class(diffusion_path: str, adapter_path: str | Path | None, prompt: str, out_dir: str | Path,
                   manifest_path: str | Path, count: int, alpha: float | None, mixing: str, seed: int,
                   settings: GenerationSettings | None = None, device: str = "cpu",
                   class_name: str = "") -> pd.DataFrame:
    """Write `count` PNGs into out_dir and a manifest (file, seed, head weights) at manifest_path.

    Images already present from an interrupted run with the same `pixel_fingerprint` are kept.
    """
    settings = settings or GenerationSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = load_pipeline(diffusion_path, device, settings.precision)
    heads = 1
    if adapter_path is not None:
        heads = load_adapter(adapter_path, pipe.unet, pipe.text_encoder)["heads"]
        pipe.unet.to(device)  # LoRA tensors stay fp32; the layer casts them to the activations' dtype
        pipe.text_encoder.to(device)
    weights = mixing_weights(mixing, heads, count, alpha, seed)
    seeds = image_seeds(count, seed)
    files = [f"{j:05d}.png" for j in range(count)]

    _clear_stale(out_dir, pixel_fingerprint(diffusion_path, adapter_path, prompt, alpha, mixing, seed, settings,
                                            device))
    todo = [j for j in range(count) if not (out_dir / files[j]).is_file()]
    if len(todo) < count:
        log.info("resuming: %d of %d images already generated", count - len(todo), count)

    with torch.no_grad():
        positive, negative = pipe.encode_prompt(prompt, device, 1, True)
    for start in tqdm(range(0, len(todo), settings.batch_size), desc=f"generate {class_name}", mininterval=5):
        batch = todo[start:start + settings.batch_size]
        generators = [torch.Generator().manual_seed(seeds[j]) for j in batch]
        w = torch.as_tensor(weights[batch], dtype=torch.float32)
        with head_weights(pipe.unet, w):
            images = pipe(prompt_embeds=positive.expand(len(batch), -1, -1),
                          negative_prompt_embeds=negative.expand(len(batch), -1, -1),
                          num_inference_steps=settings.steps, guidance_scale=settings.guidance_scale,
                          height=settings.resolution, width=settings.resolution, generator=generators).images
        for j, image in zip(batch, images, strict=True):
            save_image(out_dir / files[j], image)

    manifest = pd.DataFrame({"class": class_name, "file": [str(out_dir / f) for f in files], "seed": seeds})
    for k in range(heads):
        manifest[f"w{k}"] = weights[:, k]
    write_csv(manifest_path, manifest)
    return manifest

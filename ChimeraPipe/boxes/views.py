"""The crops stage: N box-constrained views per reference image, their VAE latents, and a preview grid."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from ..core.hashing import stable_seed
from ..core.images import load_rgb, to_signed_unit
from ..core.io import load_tensors, save_image, save_tensors
from .crops import CropSpec, apply_crop, sample_crop

log = logging.getLogger(__name__)


def make_views(shots: pd.DataFrame, boxes: pd.DataFrame, views_per_image: int, resolution: int, seed: int,
               **jitter) -> tuple[list[list[Image.Image]], list[list[CropSpec]]]:
    """Views [image][view] of the class's shots (in shot order), each containing that image's box."""
    by_path = boxes.set_index("path")
    all_views, all_specs = [], []
    for path in shots["path"]:
        if path not in by_path.index:
            raise ValueError(f"no box for {path} in the boxes table")
        row = by_path.loc[path]
        image = load_rgb(path)
        box = (row["x0"], row["y0"], row["x1"], row["y1"])
        specs = [sample_crop(image.size, box, resolution, seed=stable_seed(seed, path, v), **jitter)
                 for v in range(views_per_image)]
        all_specs.append(specs)
        all_views.append([apply_crop(image, s) for s in specs])
    return all_views, all_specs


@torch.no_grad()
def encode_views(vae, views: list[list[Image.Image]], device: str, batch_size: int = 16):
    """VAE posterior mean and std of every view, scaled by the VAE's scaling factor: [K, V, C, h, w]."""
    flat = [v for per_image in views for v in per_image]
    means, stds = [], []
    dtype = next(vae.parameters()).dtype
    for start in tqdm(range(0, len(flat), batch_size), desc="encode views", leave=False):
        pixels = to_signed_unit(flat[start:start + batch_size]).to(device, dtype)
        dist = vae.encode(pixels).latent_dist
        means.append(dist.mean.float().cpu())
        stds.append(dist.std.float().cpu())
    factor = vae.config.scaling_factor
    k, v = len(views), len(views[0])
    mean = torch.cat(means) * factor
    std = torch.cat(stds) * factor
    return mean.reshape(k, v, *mean.shape[1:]), std.reshape(k, v, *std.shape[1:])


def preview_grid(views: list[list[Image.Image]], specs: list[list[CropSpec]], max_views: int = 8) -> Image.Image:
    """Rows = reference images, columns = their first views, the mapped box b* drawn in red."""
    size = views[0][0].width
    cols = min(max_views, len(views[0]))
    grid = Image.new("RGB", (cols * (size + 2), len(views) * (size + 2)), (255, 255, 255))
    for r, (row_views, row_specs) in enumerate(zip(views, specs, strict=True)):
        for c in range(cols):
            tile = row_views[c].copy()
            ImageDraw.Draw(tile).rectangle(row_specs[c].box_in_view, outline=(255, 0, 0))
            grid.paste(tile, (c * (size + 2), r * (size + 2)))
    return grid


LATENT_FACTOR, LATENT_CHANNELS = 8, 4   # Stable Diffusion's VAE: 8x smaller, 4 channels


def view_cache_bytes(images: int, views_per_image: int, resolution: int, on_gpu: bool) -> int:
    """Bytes of one class's view cache (latents' mean and std, fp16 on a GPU, fp32 on CPU; boxes, regions and
    flips are small beside them), as build_view_cache stores it."""
    side = resolution // LATENT_FACTOR
    return 2 * images * views_per_image * LATENT_CHANNELS * side * side * (2 if on_gpu else 4)


def build_view_cache(shots: pd.DataFrame, boxes: pd.DataFrame, vae, out_path: str | Path, preview_path: str | Path,
                     views_per_image: int, resolution: int, seed: int, device: str = "cpu", **jitter) -> None:
    views, specs = make_views(shots, boxes, views_per_image, resolution, seed, **jitter)
    mean, std = encode_views(vae, views, device)
    store = torch.float16 if device.startswith("cuda") else torch.float32  # halves the cache at 512 px
    tensors = {
        "latents_mean": mean.to(store), "latents_std": std.to(store),
        "boxes_in_view": torch.tensor([[s.box_in_view for s in row] for row in specs], dtype=torch.float32),
        "regions": torch.tensor([[s.region for s in row] for row in specs], dtype=torch.float32),
        "flips": torch.tensor([[s.flip for s in row] for row in specs], dtype=torch.bool),
    }
    meta = {"paths": json.dumps(list(shots["path"])), "resolution": str(resolution), "seed": str(seed)}
    save_tensors(out_path, tensors, metadata=meta)
    save_image(preview_path, preview_grid(views, specs))
    log.info("cached %d x %d views at %d px -> %s", len(views), views_per_image, resolution, out_path)


def load_view_cache(path: str | Path) -> dict[str, torch.Tensor]:
    cache = load_tensors(path)
    for key in ("latents_mean", "latents_std"):
        if key not in cache:
            raise ValueError(f"{path}: not a view cache (no {key!r})")
    return cache

"""The generate stage: N images per class, each with its own head weights, mixed inside one batched forward.

Head weights per image (`mixing`):
  dirichlet  w ~ Dir(alpha * 1_K), fresh for every image (ChimeraLoRA)
  pairs      LoFT: all pairs of heads, shuffled and cycled, fused at 0.5/0.5
  uniform    w = 1/K (the heads' mean)
  single     one head per image, the heads in turn (image j: head j mod K); with K = 1 the class-wise LoRA
Image j's noise and weights come from seeds derived from (class seed, j), so a resumed or re-batched run
produces the same images. A class's images are kept in a few tar shards (core.shards), encoded as
`generate.format` says; the manifest names each image by its shard reference.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..boxes.crops import apply_crop, sample_crop
from ..core.hashing import file_digest, stable_seed
from ..core.images import image_bytes, load_rgb
from ..core.io import write_csv, write_json
from ..core.runtime import resolve_precision
from ..core.shards import ShardStore, encode
from ..lora.adapter import load_adapter
from ..lora.layer import head_weights
from ..models.staging import model_identity
from .clip_filter import ClipFilter

log = logging.getLogger(__name__)
FILTER_LOG = "clip_filter.csv"
MIXINGS = ("dirichlet", "pairs", "uniform", "single")
TAR_BYTES_PER_IMAGE = 2 * 512 + 512   # a shard member's two tar headers (image, row) and its row, at most


def class_set_footprint(count: int, resolution: int, candidates: int | None = None, fmt: str = "jpeg",
                        shard_size: int = 256) -> tuple[int, int]:
    """(files, bytes) that one class's synthetic set of `count` images leaves on disk: its shards of
    `shard_size` images (every candidate made, `candidates` >= count, where the CLIP filter judges more),
    the manifest, the settings stamp, the part stage's done stamp and, when filtered, the filter's decisions.
    The one place that knows how generate_class stores a set; bytes are estimates (core.images.BYTES_PER_PIXEL)."""
    made = count if candidates is None else max(count, candidates)
    files = math.ceil(made / shard_size) + 3 + (candidates is not None)
    return files, made * (image_bytes(resolution, fmt) + TAR_BYTES_PER_IMAGE)


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
    if heads == 1:
        return np.ones((count, 1))
    if mixing == "single":
        return np.eye(heads)[np.arange(count) % heads]
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


def load_pipeline(diffusion_path: str, device: str, precision: str = "auto", dtype: torch.dtype | None = None):
    """The pipeline in `dtype` (default: the precision's on this device, fp32 on CPU). diffusers reads
    `dtype` from 0.42 on (older releases silently ignored it: hence the floor in pyproject.toml)."""
    from diffusers import StableDiffusionPipeline

    dtype = dtype or resolve_precision(device, precision).autocast or torch.float32
    pipe = StableDiffusionPipeline.from_pretrained(diffusion_path, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@dataclass(frozen=True)
class RealGuidance:
    """img2img from the class's shots (He et al.'s real guidance): image j starts from shot j mod K,
    noised to `strength` (1 = pure noise, i.e. text-to-image) and denoised with the class prompt."""
    shots: tuple[str, ...]
    strength: float = 0.5

    def __post_init__(self):
        if not self.shots:
            raise ValueError("real guidance needs at least one shot image")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"real guidance strength must lie in (0, 1], got {self.strength}")

    def init_images(self, resolution: int) -> list:
        """Each shot as the generator's start: its centre square, anti-aliased to the resolution."""
        images = []
        for path in self.shots:
            image = load_rgb(path)
            spec = sample_crop(image.size, (0, 0, *image.size), resolution, seed=0, mode="center")
            images.append(apply_crop(image, spec))
        return images


def pixel_fingerprint(diffusion_path: str, adapter_path: str | Path | None, prompt: str, alpha: float | None,
                      mixing: str, seed: int, settings, device: str,
                      real_guidance: RealGuidance | None = None, clip_filter: ClipFilter | None = None) -> dict:
    """Every input that changes the pixels of image j (or which images the CLIP filter keeps): images on
    disk are kept only when it matches.

    Left out on purpose: the image count (image j depends only on j) and the batch size (a resumed run
    re-batches anyway; batch composition moves pixels by at most one grey level). The stored bytes depend
    on the format and quality too (the shard size only groups them)."""
    return {"diffusion": model_identity(str(diffusion_path)),
            "adapter": file_digest(adapter_path) if adapter_path else None,
            "format": settings.format, "quality": settings.quality if settings.format != "png" else None,
            "prompt": prompt, "mixing": mixing, "alpha": float(alpha) if mixing == "dirichlet" else None,
            "seed": seed, "guidance_scale": float(settings.guidance_scale), "steps": settings.steps,
            "resolution": settings.resolution, "device": device.split(":")[0],
            "precision": resolve_precision(device, settings.precision).name,
            "real_guidance": None if real_guidance is None else {
                "strength": float(real_guidance.strength), "shots": [file_digest(p) for p in real_guidance.shots]},
            "clip_filter": None if clip_filter is None else clip_filter.fingerprint()}


def _clear_stale(out_dir: Path, fingerprint: dict, store: ShardStore) -> None:
    """Drop images (and filter decisions) made with other settings and temp files of a killed run;
    then stamp the settings."""
    stamp = out_dir / "settings.json"
    for leftover in out_dir.glob(".*.tmp*"):  # atomic writes interrupted by SIGKILL
        leftover.unlink()
    if not stamp.is_file() or json.loads(stamp.read_text()) != fingerprint:
        store.clear()
        for stale in [*out_dir.glob("*.png"), out_dir / FILTER_LOG]:   # (0.1 wrote a PNG per image)
            stale.unlink(missing_ok=True)
        write_json(stamp, fingerprint)


def generate_class(diffusion_path: str, adapter_path: str | Path | None, prompt: str, out_dir: str | Path,
                   manifest_path: str | Path, count: int, alpha: float | None, mixing: str, seed: int,
                   settings, device: str = "cpu", class_name: str = "",
                   real_guidance: RealGuidance | None = None, clip_filter: ClipFilter | None = None,
                   class_index: int = 0) -> pd.DataFrame:
    """Write `count` images into shards in out_dir and a manifest (file: the image's shard reference, seed,
    head weights) at manifest_path. `settings`: the generate settings (pipeline.settings.GenerationSettings).

    With `clip_filter`, candidates are made in index order and the first `count` that zero-shot CLIP
    labels as `class_index` are kept (at most `clip_filter.max_candidates(count)` candidates; if too
    few pass, the best-scoring rejected ones fill up, marked clip_pass = False, with a warning).
    Images already kept from an interrupted run with the same `pixel_fingerprint` are kept (whole batches).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe = load_pipeline(diffusion_path, device, settings.precision)
    heads = 1
    if adapter_path is not None:
        heads = load_adapter(adapter_path, pipe.unet, pipe.text_encoder)["heads"]
        pipe.unet.to(device)  # LoRA tensors stay fp32; the layer casts them to the activations' dtype
        pipe.text_encoder.to(device)
    candidates = count if clip_filter is None else clip_filter.max_candidates(count)
    weights = mixing_weights(mixing, heads, candidates, alpha, seed)
    seeds = image_seeds(candidates, seed)
    store = ShardStore(out_dir, settings.shard_size, settings.format)
    _clear_stale(out_dir, pixel_fingerprint(diffusion_path, adapter_path, prompt, alpha, mixing, seed, settings,
                                            device, real_guidance, clip_filter), store)
    render = _renderer(pipe, prompt, device, settings, seeds, weights, real_guidance)

    def keep(batch: list[int], images: list) -> None:
        store.add_batch([(j, encode(image, settings.format, settings.quality),
                          {"class": class_name, "seed": seeds[j], "w": weights[j].tolist()})
                         for j, image in zip(batch, images, strict=True)])

    if clip_filter is None:
        done = store.done()
        todo = [j for j in range(count) if j not in done]
        if len(todo) < count:
            log.info("resuming: %d of %d images already generated", count - len(todo), count)
        for start in tqdm(range(0, len(todo), settings.batch_size), desc=f"generate {class_name}", mininterval=5):
            batch = todo[start:start + settings.batch_size]
            keep(batch, render(batch))
        kept, passed = list(range(count)), None
    else:
        kept, passed = _filtered(clip_filter, class_index, count, candidates, store, render, keep,
                                 settings.batch_size, out_dir / FILTER_LOG, class_name)
    store.compact(final=True)
    refs = store.done()
    manifest = pd.DataFrame({"class": class_name, "file": [refs[j] for j in kept],
                             "seed": [seeds[j] for j in kept]})
    for k in range(heads):
        manifest[f"w{k}"] = weights[kept, k]
    if passed is not None:
        manifest["clip_pass"] = passed
    write_csv(manifest_path, manifest)
    return manifest


def _renderer(pipe, prompt: str, device: str, settings, seeds, weights,
              real_guidance: RealGuidance | None):
    """A function: candidate indices -> their images, one batched call, each with its own head weights."""
    with torch.no_grad():
        positive, negative = pipe.encode_prompt(prompt, device, 1, True)
    common = {"num_inference_steps": settings.steps, "guidance_scale": settings.guidance_scale}
    if real_guidance is not None:
        from diffusers import StableDiffusionImg2ImgPipeline

        img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
        img2img.set_progress_bar_config(disable=True)
        starts = real_guidance.init_images(settings.resolution)
        shots = len(starts)

    def render(batch: list[int]) -> list:
        generators = [torch.Generator().manual_seed(seeds[j]) for j in batch]
        embeds = {"prompt_embeds": positive.expand(len(batch), -1, -1),
                  "negative_prompt_embeds": negative.expand(len(batch), -1, -1)}
        with head_weights(pipe.unet, torch.as_tensor(weights[batch], dtype=torch.float32)):
            if real_guidance is None:
                return pipe(**embeds, **common, height=settings.resolution, width=settings.resolution,
                            generator=generators).images
            return img2img(**embeds, **common, image=[starts[j % shots] for j in batch],
                           strength=real_guidance.strength, generator=generators).images

    return render


def _filtered(clip_filter: ClipFilter, class_index: int, count: int, candidates: int, store: ShardStore, render,
              keep, batch_size: int, decisions_path: Path, class_name: str) -> tuple[list[int], list[bool]]:
    """Make and judge candidates in index order until `count` pass; returns (kept indices, passed flags)."""
    decisions = pd.read_csv(decisions_path) if decisions_path.is_file() else pd.DataFrame(
        columns=["candidate", "label", "score", "passed"])
    done = set(decisions["candidate"])
    bar = tqdm(total=count, desc=f"generate+filter {class_name}", mininterval=5)
    j = 0
    while int(decisions["passed"].sum()) < count and j < candidates:
        batch = [i for i in range(j, min(j + batch_size, candidates)) if i not in done]
        j += batch_size
        if not batch:
            continue
        stored = store.done()
        missing = [i for i in batch if i not in stored]
        made = dict(zip(missing, render(missing), strict=True)) if missing else {}
        if made:
            keep(missing, [made[i] for i in missing])
        labels, scores = clip_filter.judge([made[i] if i in made else load_rgb(stored[i]) for i in batch],
                                           class_index)
        new = pd.DataFrame({"candidate": batch, "label": labels, "score": scores,
                            "passed": [label == class_index for label in labels]})
        decisions = pd.concat([decisions, new], ignore_index=True).sort_values("candidate", ignore_index=True)
        write_csv(decisions_path, decisions)  # after every batch: a resumed run re-judges nothing
        bar.update(int(new["passed"].sum()))
    bar.close()
    passing = [int(c) for c in decisions.loc[decisions["passed"].astype(bool), "candidate"]][:count]
    if len(passing) < count:
        rejected = decisions[~decisions["passed"].astype(bool)].sort_values(["score", "candidate"],
                                                                              ascending=[False, True])
        fill = [int(c) for c in rejected["candidate"]][:count - len(passing)]
        log.warning("%s: only %d of %d candidates passed the CLIP filter; %d best-scoring rejected ones fill the "
                    "set (clip_pass = False in the manifest)", class_name, len(passing), candidates, len(fill))
        kept = sorted(passing + fill)
        return kept, [k in set(passing) for k in kept]
    return passing, [True] * count

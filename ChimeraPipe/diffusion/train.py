"""The train stage: per-class multi-head LoRA on a frozen diffusion UNet, resumable and deterministic.

Every batch holds views of all K reference images; each sample goes through its own head (one-hot
head weights), so the loss is the paper's L(A, B) = 1/K sum_i L(A, B_i). A and B have their own
learning rates (A 1e-4, B 1e-3 for ChimeraLoRA).
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..boxes.views import load_view_cache
from ..core.checkpoint import Checkpoint
from ..core.hashing import file_digest, settings_digest
from ..core.runtime import resolve_precision, warmup_cosine
from ..lora.adapter import TEXT_ENCODER_TARGETS, adapter_components, save_adapter
from ..lora.layer import head_weights, inject_multihead_lora, lora_layers

log = logging.getLogger(__name__)


def training_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet regresses, per the scheduler's prediction_type: the noise (epsilon: SD 2.1-base)
    or the velocity alpha_t * noise - sigma_t * x0 (v_prediction: SD 2.1 at 768 px)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction_type {kind!r}: expected 'epsilon' or 'v_prediction'")


def train_lora(diffusion_path: str, views_path: str | Path, prompt: str, out_path: str | Path, cfg,
               device: str = "cpu", base_model: str = "") -> dict:
    """Train one class's adapter and write `out_path` (safetensors) + JSON. `cfg`: the train settings
    (ChimeraPipe.pipeline.settings.LoraTrainConfig). Returns the JSON description, with
    `resumed_from_step` (0 for a fresh start) and `steps_run` (optimizer steps taken by this call)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    out_path = Path(out_path)
    cache = load_view_cache(views_path)
    mean, std = cache["latents_mean"].float(), cache["latents_std"].float()
    n_images, n_views = mean.shape[:2]
    heads = 1 if cfg.share == "both" else n_images

    torch.manual_seed(cfg.seed)  # LoRA init
    unet = UNet2DConditionModel.from_pretrained(diffusion_path, subfolder="unet").to(device)
    text_encoder = CLIPTextModel.from_pretrained(diffusion_path, subfolder="text_encoder").to(device)
    tokenizer = CLIPTokenizer.from_pretrained(diffusion_path, subfolder="tokenizer")
    scheduler = DDPMScheduler.from_pretrained(diffusion_path, subfolder="scheduler")
    text_encoder.requires_grad_(False)
    inject_multihead_lora(unet, cfg.targets, rank=cfg.rank, heads=heads, share=cfg.share, lora_alpha=cfg.lora_alpha)
    if cfg.text_encoder_lora:
        inject_multihead_lora(text_encoder, TEXT_ENCODER_TARGETS, rank=cfg.rank, heads=1, share="both",
                              lora_alpha=cfg.lora_alpha)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    components = adapter_components(unet, text_encoder)
    params = {f"{c}.{n}.{m}": getattr(layer, f"lora_{m}") for c, module in components.items()
              for n, layer in lora_layers(module).items() for m in "AB"}
    groups = [{"params": [p for k, p in params.items() if k.endswith(".A")], "lr": cfg.lr_a, "base_lr": cfg.lr_a},
              {"params": [p for k, p in params.items() if k.endswith(".B")], "lr": cfg.lr_b, "base_lr": cfg.lr_b}]
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)

    tokens = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        fixed_embedding = text_encoder(tokens)[0]  # computed once unless the text encoder trains

    checkpoint = Checkpoint(out_path.parent / "checkpoint.safetensors",
                            settings_digest({**asdict(cfg), "prompt": prompt, "views": file_digest(views_path)}))
    generator = torch.Generator().manual_seed(cfg.seed)
    precision = resolve_precision(device, cfg.precision)
    # fp16 autocast (GPUs without bf16): scale the loss so small LoRA gradients do not flush to zero.
    scaler = torch.amp.GradScaler("cuda", enabled=precision.scale_loss)
    start, _ = checkpoint.load(params, optimizer, {"batches": generator}, scaler)

    image_index = torch.arange(n_images).repeat_interleave(cfg.batch_per_image)   # [batch]
    one_hot = F.one_hot(image_index, n_images).float() if heads > 1 else torch.ones(len(image_index), 1)
    unet.train()
    losses = []
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train lora", mininterval=5)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * warmup_cosine(step, cfg.steps, cfg.warmup_steps)
        view = torch.randint(n_views, (len(image_index),), generator=generator)
        # A fresh sample of each view's VAE posterior, as when encoding on the fly.
        latents = mean[image_index, view] + std[image_index, view] * torch.randn(
            (len(image_index), *mean.shape[2:]), generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (len(image_index),), generator=generator)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        embedding = text_encoder(tokens)[0] if cfg.text_encoder_lora else fixed_embedding
        with precision.autocast_on(device), \
                head_weights(unet, one_hot):
            pred = unet(noisy.to(device), timesteps.to(device),
                        encoder_hidden_states=embedding.expand(len(image_index), -1, -1)).sample
        # Equal samples per image, so the batch mean is the mean over the K images' losses.
        loss = F.mse_loss(pred.float(), training_target(scheduler, latents, noise, timesteps).to(device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # clip the true gradients; a no-op without scaling
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
        scaler.step(optimizer)      # skips the step when fp16 gradients overflowed
        scaler.update()
        losses.append(loss.item())
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            checkpoint.save(step + 1, params, optimizer, {"batches": generator}, scaler)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)

    meta = {"prediction_type": scheduler.config.prediction_type,
            "rank": cfg.rank, "lora_alpha": float(cfg.rank if cfg.lora_alpha is None else cfg.lora_alpha),
            "heads": heads, "text_heads": 1, "share": cfg.share,
            "targets": list(cfg.targets), "base_model": base_model, "prompt": prompt,
            "training": {**asdict(cfg), "targets": list(cfg.targets)}, "n_images": n_images,
            "images_per_step": len(image_index),
            "precision": precision.name, "final_loss": losses[-1] if losses else None,
            "mean_loss_last_10": sum(losses[-10:]) / max(1, len(losses[-10:]))}
    save_adapter(out_path, components, meta)
    checkpoint.remove()
    return {**meta, "resumed_from_step": start, "steps_run": len(losses)}

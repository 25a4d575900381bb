"""The train stage: multi-head LoRA on a frozen diffusion UNet, one adapter per class, resumable and
deterministic. The classes of a job train together in one model.

Every batch holds views of all K reference images of a class; each sample goes through its own head, so
a class's loss is the paper's L(A, B) = 1/K sum_i L(A, B_i). A and B have their own learning rates (A 1e-4,
B 1e-3 for ChimeraLoRA).

Several classes (up to `classes_per_step`) share one optimizer step: every layer stacks the classes' A and
B matrices (lora.layer, `classes=C`), the batch is ordered (class, image, repeat) and each block meets its
own class's A and its own image's B (`stacked_routing`). Per class it is the optimisation of training
that class alone: the loss is the sum of each class's own mean, the gradient norm is clipped on each
class's own rows, AdamW's update is elementwise (its state is each class's own), the schedule is the same
function of the step, and each class draws its views, noise and timesteps from its own generator, seeded
as a single-class run seeds it. Only float round-off differs (batched kernels), and under fp16 loss
scaling an overflow in one class skips the step for all.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..boxes.views import load_view_cache
from ..core.checkpoint import Checkpoint
from ..core.hashing import file_digest, settings_digest
from ..core.runtime import resolve_precision, warmup_cosine
from ..lora.adapter import TEXT_ENCODER_TARGETS, adapter_components, save_adapter_tensors
from ..lora.layer import head_counts, inject_multihead_lora, lora_layers, lora_state_dict, stacked_routing

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


@dataclass(frozen=True)
class ClassJob:
    """One class's adapter to train: its view cache, its prompt, where the adapter goes."""
    views: str | Path
    prompt: str
    out: str | Path


def class_norm_clip(params: list[tuple[torch.nn.Parameter, torch.Tensor]], classes: int, max_norm: float) -> None:
    """clip_grad_norm_ for each class on its own rows: `params` pairs a stacked parameter with the class of each
    of its rows; every class's gradient is scaled by max_norm / (its norm + 1e-6) where that is below 1."""
    grads = [(p.grad, rows) for p, rows in params if p.grad is not None]
    if not grads:
        return
    squares = torch.zeros(classes, dtype=torch.float32, device=grads[0][0].device)
    for grad, rows in grads:
        squares.index_add_(0, rows, grad.float().pow(2).flatten(1).sum(1))
    factor = torch.clamp(max_norm / (squares.sqrt() + 1e-6), max=1.0)
    for grad, rows in grads:
        grad.mul_(factor[rows].view(-1, *([1] * (grad.ndim - 1))).to(grad.dtype))


def train_loras(diffusion_path: str, jobs: list[ClassJob], cfg, device: str = "cpu", base_model: str = "",
                checkpoint_path: str | Path | None = None) -> list[dict]:
    """Train the adapters of `jobs` (classes) together in one model; write each `job.out` (safetensors) + JSON.

    `cfg`: the train settings (ChimeraPipe.pipeline.settings.LoraTrainConfig). The checkpoint (every
    cfg.checkpoint_every steps) holds every class's state; a re-run of the same classes and settings resumes
    from it. Returns each class's JSON description, with `resumed_from_step` and `steps_run`."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    if not jobs:
        return []
    caches = [load_view_cache(job.views) for job in jobs]
    means = [c["latents_mean"].float() for c in caches]
    stds = [c["latents_std"].float() for c in caches]
    shapes = {tuple(m.shape) for m in means}
    if len(shapes) != 1:
        raise ValueError(f"classes trained together need view caches of one shape, got {sorted(shapes)} "
                         f"({', '.join(str(j.views) for j in jobs)})")
    n_images, n_views = means[0].shape[:2]
    heads, classes = (1 if cfg.share == "both" else n_images), len(jobs)

    torch.manual_seed(cfg.seed)  # LoRA init: every class starts from the draws a single-class run makes
    unet = UNet2DConditionModel.from_pretrained(diffusion_path, subfolder="unet").to(device)
    text_encoder = CLIPTextModel.from_pretrained(diffusion_path, subfolder="text_encoder").to(device)
    tokenizer = CLIPTokenizer.from_pretrained(diffusion_path, subfolder="tokenizer")
    scheduler = DDPMScheduler.from_pretrained(diffusion_path, subfolder="scheduler")
    text_encoder.requires_grad_(False)
    inject_multihead_lora(unet, cfg.targets, rank=cfg.rank, heads=heads, share=cfg.share, lora_alpha=cfg.lora_alpha,
                          classes=classes)
    if cfg.text_encoder_lora:
        inject_multihead_lora(text_encoder, TEXT_ENCODER_TARGETS, rank=cfg.rank, heads=1, share="both",
                              lora_alpha=cfg.lora_alpha, classes=classes)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    components = adapter_components(unet, text_encoder)
    params, owners = {}, []
    for c_name, module in components.items():
        for n, layer in lora_layers(module).items():
            n_a, n_b = head_counts(layer.share, layer.heads)
            for m, per in (("A", n_a), ("B", n_b)):
                param = getattr(layer, f"lora_{m}")
                params[f"{c_name}.{n}.{m}"] = param
                owners.append((param, torch.arange(classes, device=param.device).repeat_interleave(per)))
    groups = [{"params": [p for k, p in params.items() if k.endswith(".A")], "lr": cfg.lr_a, "base_lr": cfg.lr_a},
              {"params": [p for k, p in params.items() if k.endswith(".B")], "lr": cfg.lr_b, "base_lr": cfg.lr_b}]
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)

    tokens = tokenizer([job.prompt for job in jobs], padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt").input_ids.to(device)
    if not cfg.text_encoder_lora:
        with torch.no_grad():
            fixed_embedding = text_encoder(tokens)[0]  # computed once unless the text encoder trains

    checkpoint = None
    if checkpoint_path is not None:
        inputs = [(job.prompt, file_digest(job.views)) for job in jobs]
        checkpoint = Checkpoint(checkpoint_path, settings_digest({**asdict(cfg), "classes": inputs}))
    generators = {f"class{c}": torch.Generator().manual_seed(cfg.seed) for c in range(classes)}
    precision = resolve_precision(device, cfg.precision)
    # fp16 autocast (GPUs without bf16): scale the loss so small LoRA gradients do not flush to zero.
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=precision.scale_loss)
    start, _ = checkpoint.load(params, optimizer, generators, scaler) if checkpoint else (0, {})

    image_index = torch.arange(n_images).repeat_interleave(cfg.batch_per_image)   # a class's batch
    per_class = len(image_index)
    unet.train()
    losses = [[] for _ in range(classes)]
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, mininterval=5,
               desc=f"train lora ({classes} class{'es' if classes > 1 else ''})")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * warmup_cosine(step, cfg.steps, cfg.warmup_steps)
        latents, noise, timesteps = [], [], []
        for c, generator in enumerate(generators.values()):
            view = torch.randint(n_views, (per_class,), generator=generator)
            # A fresh sample of each view's VAE posterior, as when encoding on the fly.
            latents.append(means[c][image_index, view] + stds[c][image_index, view] * torch.randn(
                (per_class, *means[c].shape[2:]), generator=generator))
            noise.append(torch.randn(latents[-1].shape, generator=generator))
            timesteps.append(torch.randint(scheduler.config.num_train_timesteps, (per_class,), generator=generator))
        latents, noise, timesteps = torch.cat(latents), torch.cat(noise), torch.cat(timesteps)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        if cfg.text_encoder_lora:
            with stacked_routing(text_encoder):
                embedding = text_encoder(tokens)[0]
        else:
            embedding = fixed_embedding
        with precision.autocast_on(device), stacked_routing(unet):
            pred = unet(noisy.to(device), timesteps.to(device),
                        encoder_hidden_states=embedding.repeat_interleave(per_class, dim=0)).sample
        target = training_target(scheduler, latents, noise, timesteps).to(device)
        per_sample = (pred.float() - target).pow(2).flatten(1).mean(1)
        class_loss = per_sample.view(classes, per_class).mean(1)    # each class's own mean (equal samples per image)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(class_loss.sum()).backward()
        scaler.unscale_(optimizer)  # clip the true gradients; a no-op without scaling
        class_norm_clip(owners, classes, cfg.grad_clip)
        scaler.step(optimizer)      # skips the step when fp16 gradients overflowed
        scaler.update()
        for c, value in enumerate(class_loss.tolist()):
            losses[c].append(value)
        if checkpoint is not None and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            checkpoint.save(step + 1, params, optimizer, generators, scaler)
        bar.set_postfix(loss=f"{sum(v[-1] for v in losses) / classes:.4f}", refresh=False)

    descriptions = []
    for c, job in enumerate(jobs):
        history = losses[c]
        meta = {"prediction_type": scheduler.config.prediction_type,
                "rank": cfg.rank, "lora_alpha": float(cfg.rank if cfg.lora_alpha is None else cfg.lora_alpha),
                "heads": heads, "text_heads": 1, "share": cfg.share, "targets": list(cfg.targets),
                "base_model": base_model, "prompt": job.prompt,
                "training": {**asdict(cfg), "targets": list(cfg.targets)},
                "n_images": n_images, "images_per_step": per_class, "classes_per_step": classes,
                "precision": precision.name, "final_loss": history[-1] if history else None,
                "mean_loss_last_10": sum(history[-10:]) / max(1, len(history[-10:]))}
        tensors = {f"{name}.{key}": value for name, module in components.items()
                   for key, value in lora_state_dict(module, c).items()}
        save_adapter_tensors(job.out, tensors, sorted(components), meta)
        descriptions.append({**meta, "resumed_from_step": start, "steps_run": len(history)})
    if checkpoint is not None:
        checkpoint.remove()
    return descriptions


def train_lora(diffusion_path: str, views_path: str | Path, prompt: str, out_path: str | Path, cfg,
               device: str = "cpu", base_model: str = "") -> dict:
    """Train one class's adapter (`train_loras` with one class; its checkpoint beside the adapter)."""
    out_path = Path(out_path)
    return train_loras(diffusion_path, [ClassJob(views_path, prompt, out_path)], cfg, device, base_model,
                       checkpoint_path=out_path.parent / "checkpoint.safetensors")[0]

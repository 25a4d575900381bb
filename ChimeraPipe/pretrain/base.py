"""Pretrain a tiny text-to-image base on rendered digits, saved as a StableDiffusionPipeline folder (the
layout the workflow loads for SD 2.1): a VAE (x2 down), a CLIP text encoder with the real CLIP tokenizer,
a cross-attention UNet and SD 2.1-base's scheduler.

Three phases on one seeded pool of rendered digits: the VAE (reconstruction + a small KL), then the UNet
and the text encoder together (epsilon prediction, a share of empty prompts for classifier-free
guidance). The text encoder is trained, not frozen: with a frozen random one the ten prompts differ
in one token's embedding and the class barely conditions the image (measured: docs/mini.md).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.images import to_signed_unit
from ..core.io import atomic_dir
from ..core.runtime import warmup_cosine
from ..models.tiny import SD21_SCHEDULER
from ..models.tokenizer import build_clip_tokenizer
from .check import fit_source_judge, sample_check
from .glyphs import caption, digit_fonts, render_digits

log = logging.getLogger(__name__)


def build_modules(cfg):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
                        block_out_channels=(32, 64), sample_size=cfg.image_size,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=cfg.text_width, intermediate_size=2 * cfg.text_width, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=cfg.max_tokens, projection_dim=cfg.text_width, hidden_act="gelu",
        bos_token_id=49406, eos_token_id=49407, pad_token_id=0))
    c0, c1 = cfg.unet_channels
    unet = UNet2DConditionModel(
        sample_size=cfg.image_size // 2, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(c0, c1), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=cfg.text_width,
        attention_head_dim=4, use_linear_projection=True, norm_num_groups=8)
    return vae, text_encoder, unet


def train_vae(vae, pixels: torch.Tensor, cfg, gen: torch.Generator) -> list[float]:
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    losses = []
    vae.train()
    for step in range(cfg.vae_steps):
        batch = pixels[torch.randint(len(pixels), (cfg.batch_size,), generator=gen)]
        posterior = vae.encode(batch).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        loss = F.mse_loss(recon, batch) + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 200 == 0:
            log.info("vae step %d/%d loss %.4f", step, cfg.vae_steps, losses[-1])
    vae.eval()
    return losses


def train_denoiser(unet, text_encoder, tokenizer, latents: torch.Tensor, labels: np.ndarray, cfg,
                   gen: torch.Generator) -> list[float]:
    from diffusers import DDPMScheduler

    noise_scheduler = DDPMScheduler(**{k: v for k, v in SD21_SCHEDULER.items()
                                       if k in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps",
                                                "prediction_type")})
    prompts = [caption(d) for d in range(10)] + [""]
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg.unet_steps, 100, 0.05))
    labels_t = torch.as_tensor(labels)
    losses = []
    unet.train(), text_encoder.train()
    for step in range(cfg.unet_steps):
        pick = torch.randint(len(latents), (cfg.batch_size,), generator=gen)
        x0, prompt = latents[pick], labels_t[pick].clone()
        prompt[torch.rand(cfg.batch_size, generator=gen) < cfg.empty_prompt_prob] = 10
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=gen)
        states = text_encoder(ids[prompt])[0]
        pred = unet(noise_scheduler.add_noise(x0, noise, t), t, encoder_hidden_states=states).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 250 == 0:
            log.info("unet step %d/%d loss %.4f", step, cfg.unet_steps, np.mean(losses[-250:]))
    unet.eval(), text_encoder.eval()
    return losses


def pretrain_base(out_dir: str | Path, cfg, judge_cfg) -> dict:
    """Render the source domain, train the base, save the pipeline (+ base.json: settings, losses, timings).

    cfg: the pretrain settings (ChimeraPipe.pipeline.settings.PretrainSettings); judge_cfg: the classifier
    settings of the check's source-domain judge (pipeline.settings.source_judge_settings)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    timings, start = {}, time.perf_counter()
    fonts = digit_fonts()
    images, labels = render_digits(cfg.pool, cfg.image_size, cfg.seed, fonts)
    pixels = to_signed_unit(images)
    timings["render_s"] = time.perf_counter() - start
    with atomic_dir(out_dir) as tmp:
        tokenizer = build_clip_tokenizer(tmp / "tokenizer", cfg.max_tokens)
        vae, text_encoder, unet = build_modules(cfg)
        start = time.perf_counter()
        vae_losses = train_vae(vae, pixels, cfg, gen)
        timings["vae_s"] = time.perf_counter() - start
        with torch.no_grad():
            means = torch.cat([vae.encode(pixels[i:i + 512]).latent_dist.mean for i in range(0, len(pixels), 512)])
        scale = float(1 / means.std())
        vae.register_to_config(scaling_factor=scale)
        start = time.perf_counter()
        unet_losses = train_denoiser(unet, text_encoder, tokenizer, means * scale, labels, cfg, gen)
        timings["unet_s"] = time.perf_counter() - start
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=PNDMScheduler(**SD21_SCHEDULER), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(tmp, safe_serialization=True)
        start = time.perf_counter()
        judge, judge_accuracy = fit_source_judge(judge_cfg, cfg.seed, cfg.check_images, fonts=fonts)
        pipe.set_progress_bar_config(disable=True)
        check = {"judge_heldout_accuracy": judge_accuracy,
                 **sample_check(pipe, judge, cfg.image_size, tmp / "samples.png", cfg.check_samples,
                                cfg.check_guidance, seed=cfg.seed)}
        timings["check_s"] = time.perf_counter() - start
        log.info("base check: the source judge (held-out %.3f) labels %.3f of the samples as prompted",
                 judge_accuracy, check["samples_right_class"])
        report = {"settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
                  "fonts": [f.name for f in fonts], "latent_scale": scale,
                  "vae_loss_last100": float(np.mean(vae_losses[-100:])),
                  "unet_loss_first250": float(np.mean(unet_losses[:250])),
                  "unet_loss_last250": float(np.mean(unet_losses[-250:])), "check": check, "timings_s": timings}
        (tmp / "base.json").write_text(json.dumps(report, indent=2))
        (tmp / "BUILT").write_text("pretrained\n")
    return report

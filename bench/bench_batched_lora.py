"""Batched multi-class LoRA training against one class at a time, side by side in one run.

One optimizer step of the train stage's computation (forward + backward + per-class clipping + AdamW) on a
UNet with LoRA on its attention projections: C classes stacked in one model at a batch of C x K images
(`stacked_routing`), against C=1 at a batch of K; the figure is the time per class-step. Target (issue #22):
>= 2x on the mini base.

    python bench/bench_batched_lora.py --size mini mid [--classes 10] [--threads 1 2] [--device cuda]

Sizes: `mini` the laptop-scale base's UNet (config/mini.yaml: channels (64, 128), 8x8 latents, 16-token
context of width 64), `mid` (64/128/256 channels, 16x16 latents), `sd21` SD 2.1-base (for the GPU suite).
"""
from __future__ import annotations

import argparse

import torch
from bench_lora import timed

from ChimeraPipe.diffusion.train import class_norm_clip
from ChimeraPipe.lora import head_counts, inject_multihead_lora, lora_layers, stacked_routing

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
SIZES = {
    "mini": dict(block_out_channels=(64, 128), down_block_types=("CrossAttnDownBlock2D",) * 2,
                 up_block_types=("CrossAttnUpBlock2D",) * 2, layers_per_block=1, cross_attention_dim=64,
                 attention_head_dim=4, norm_num_groups=8, latent=8, tokens=16),
    "mid": dict(block_out_channels=(64, 128, 256), layers_per_block=1, cross_attention_dim=256,
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                attention_head_dim=(2, 4, 8), norm_num_groups=32, latent=16, tokens=77),
    "sd21": dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=1024,
                 attention_head_dim=(5, 10, 20, 20), norm_num_groups=32, latent=64, tokens=77),
}


def make_unet(size: str, device: str, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    cfg = dict(SIZES[size])
    latent, tokens = cfg.pop("latent"), cfg.pop("tokens")
    unet = UNet2DConditionModel(sample_size=latent, use_linear_projection=True, **cfg)
    unet = unet.to(device) if dtype == torch.float32 else unet.to(device, dtype)
    return unet, latent, tokens, cfg["cross_attention_dim"]


def step_time(size: str, classes: int, heads: int, share: str, device: str, dtype: torch.dtype, repeats: int,
              rank: int = 16) -> float:
    """Median seconds of one training step of `classes` classes stacked (batch classes x heads)."""
    torch.manual_seed(0)
    unet, latent, tokens, width = make_unet(size, device, dtype)
    inject_multihead_lora(unet, TARGETS, rank=rank, heads=heads, share=share, classes=classes)
    params, owners = [], []
    for layer in lora_layers(unet).values():
        n_a, n_b = head_counts(share, heads)
        for param, per in ((layer.lora_A, n_a), (layer.lora_B, n_b)):
            params.append(param)
            owners.append((param, torch.arange(classes, device=device).repeat_interleave(per)))
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    batch = classes * heads
    x = torch.randn(batch, 4, latent, latent, device=device, dtype=dtype)
    t = torch.randint(1000, (batch,), device=device)
    ctx = torch.randn(batch, tokens, width, device=device, dtype=dtype)

    def step():
        with stacked_routing(unet):
            pred = unet(x, t, encoder_hidden_states=ctx).sample
        loss = pred.float().pow(2).flatten(1).mean(1).view(classes, heads).mean(1).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        class_norm_clip(owners, classes, 1.0)
        optimizer.step()

    return timed(step, device, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", nargs="+", default=["mini", "mid"], choices=sorted(SIZES))
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    print(f"{'UNet':6} {'share':6} {'threads':7} {'per class (ms)':>15} {'batched, per class (ms)':>24} "
          f"{'speed-up':>9}")
    for size in args.size:
        for share in ("A", "none"):
            for threads in args.threads if args.device == "cpu" else [0]:
                if threads:
                    torch.set_num_threads(threads)
                one = step_time(size, 1, args.heads, share, args.device, dtype, args.repeats)
                many = step_time(size, args.classes, args.heads, share, args.device, dtype, args.repeats)
                per = many / args.classes
                print(f"{size:6} {share:6} {threads or '-':>7} {1000 * one:15.1f} {1000 * per:24.1f} "
                      f"{one / per:8.2f}x")


if __name__ == "__main__":
    main()

"""B1/B2: cost of per-sample multi-head LoRA mixing, measured side by side in one run.

B1  generation UNet forward (CFG-doubled batch): per-sample Dirichlet mixing vs plain UNet (no LoRA)
    vs naive merge-W0+delta-and-forward one image at a time.   Targets: >= 0.95x plain, >= 3x naive.
B2  training step (forward + backward + AdamW) with K heads, one-hot per sample, vs a single LoRA
    at the same batch.                                         Target: <= 1.1x.

    python bench/bench_lora.py --size tiny|mid|sd21 [--device cuda] [--batch 16]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from ChimeraPipe.lora import head_weights, inject_multihead_lora, lora_layers

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
SIZES = {
    "tiny": dict(block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1, cross_attention_dim=32,
                 attention_head_dim=(2, 4), norm_num_groups=8, latent=8),
    "mid": dict(block_out_channels=(64, 128, 256), layers_per_block=1, cross_attention_dim=256,
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                attention_head_dim=(2, 4, 8), norm_num_groups=32, latent=16),
    # SD 2.1-base UNet (866M parameters); random weights have the real speed.
    "sd21": dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=1024,
                 attention_head_dim=(5, 10, 20, 20), norm_num_groups=32, latent=64),
}


def make_unet(size: str, device: str, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    cfg = dict(SIZES[size])
    latent = cfg.pop("latent")
    unet = UNet2DConditionModel(sample_size=latent, use_linear_projection=True, **cfg)
    return unet.to(device, dtype), latent, cfg["cross_attention_dim"]


def timed(fn, device: str, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def merge_per_image(reference, lora_unet, w, x, t, ctx):
    """The naive path as a callable: one image at a time, W0 + delta(w_n) merged into every target layer of
    `reference` (the plain UNet) and its CFG pair (rows n and batch + n) run alone; the weights restored after."""
    merged = [(reference.get_submodule(name), layer) for name, layer in lora_layers(lora_unet).items()]
    originals = [linear.weight.detach().clone() for linear, _ in merged]
    batch = len(w)

    def run():
        for n in range(batch):
            for (linear, layer), w0 in zip(merged, originals, strict=True):
                linear.weight.copy_(w0 + layer.delta_weight(w[n]).to(w0.dtype))
            rows = torch.tensor([n, batch + n], device=x.device)
            reference(x[rows], t[rows], encoder_hidden_states=ctx[rows])
        for (linear, _), w0 in zip(merged, originals, strict=True):
            linear.weight.copy_(w0)

    return run


def bench_generation(size, device, dtype, batch, heads, rank, repeats):
    torch.manual_seed(0)
    unet, latent, ctx_dim = make_unet(size, device, dtype)
    x = torch.randn(2 * batch, 4, latent, latent, device=device, dtype=dtype)  # [uncond; cond]
    t = torch.full((2 * batch,), 500, device=device)
    ctx = torch.randn(2 * batch, 77, ctx_dim, device=device, dtype=dtype)
    reference = copy.deepcopy(unet)  # plain UNet; the naive baseline merges deltas into its weights
    plain = timed(lambda: reference(x, t, encoder_hidden_states=ctx), device, repeats)

    inject_multihead_lora(unet, TARGETS, rank=rank, heads=heads, share="A")
    for layer in lora_layers(unet).values():
        torch.nn.init.normal_(layer.lora_B, std=0.01)
    w = torch.distributions.Dirichlet(torch.ones(heads)).sample((batch,))

    def mixed():
        with head_weights(unet, w):
            unet(x, t, encoder_hidden_states=ctx)

    per_sample = timed(mixed, device, repeats)

    naive = merge_per_image(reference, unet, w, x, t, ctx)
    naive_s = timed(naive, device, max(1, repeats // 2))
    return plain, per_sample, naive_s


def bench_training(size, device, dtype, batch, heads, rank, repeats):
    results = {}
    for label, share, k in (("single LoRA", "both", 1), (f"{heads} heads, shared A", "A", heads)):
        torch.manual_seed(0)
        unet, latent, ctx_dim = make_unet(size, device, torch.float32)
        inject_multihead_lora(unet, TARGETS, rank=rank, heads=k, share=share)
        params = [p for p in unet.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        x = torch.randn(batch, 4, latent, latent, device=device)
        t = torch.randint(0, 1000, (batch,), device=device)
        ctx = torch.randn(batch, 77, ctx_dim, device=device)
        w = torch.nn.functional.one_hot(torch.arange(batch) % k, k).float()
        amp = dtype != torch.float32

        def step():
            with torch.autocast(device.split(":")[0], dtype=dtype, enabled=amp), head_weights(unet, w):
                loss = unet(x, t, encoder_hidden_states=ctx).sample.float().pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        results[label] = timed(step, device, repeats)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    torch.set_grad_enabled(False)
    plain, mixed, naive = bench_generation(args.size, args.device, dtype, args.batch, args.heads, args.rank,
                                           args.repeats)
    print(f"B1 generation forward, {args.size} UNet, batch {args.batch} (x2 for CFG), K={args.heads}, "
          f"r={args.rank}, {args.device} {args.dtype}")
    print(f"  plain UNet            {plain * 1e3:9.1f} ms  {args.batch / plain:8.1f} img-forwards/s")
    print(f"  per-sample mixing     {mixed * 1e3:9.1f} ms  {args.batch / mixed:8.1f} img-forwards/s")
    print(f"  naive merge, 1 by 1   {naive * 1e3:9.1f} ms  {args.batch / naive:8.1f} img-forwards/s")
    print(f"  mixing / plain throughput = {plain / mixed:.3f}x (target >= 0.95)")
    print(f"  mixing / naive throughput = {naive / mixed:.2f}x (target >= 3)")
    if not args.skip_training:
        torch.set_grad_enabled(True)
        times = bench_training(args.size, args.device, dtype, args.batch, args.heads, args.rank, args.repeats)
        (single_label, single), (multi_label, multi) = times.items()
        print(f"B2 training step, batch {args.batch}")
        print(f"  {single_label:22s}{single * 1e3:9.1f} ms")
        print(f"  {multi_label:22s}{multi * 1e3:9.1f} ms")
        print(f"  multi-head / single = {multi / single:.3f}x (target <= 1.1)")


if __name__ == "__main__":
    main()

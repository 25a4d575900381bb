"""Every GPU figure of the project in one command (target: within 8 minutes on one GPU), one table and a JSON.

    python bench/gpu_suite.py --device cuda                 # the SD 2.1 / ViT-B/16 sizes, bf16
    python bench/gpu_suite.py --tiny                        # the same code at toy sizes on the CPU (make test)

Random weights throughout (speed and memory do not depend on them). Rows:
- generation: one denoising step of a classifier-free-guidance batch (16 images, so 32 rows) through the
  SD 2.1-base UNet with per-sample Dirichlet mixing of K LoRA heads (K = 4 and 64), against the plain UNet (no
  LoRA, what diffusers runs) and against merging W0 + delta(w) into the weights per image and running each
  image's pair alone; images/s for a 50-step generation (UNet only);
- LoRA training: one optimizer step with K = 4 heads (shared A) against a single LoRA at the same batch (4),
  and 16 classes batched in one step (batch 64) per class-step (issue #22);
- classifier: one training step of CLIP ViT-B/16 with rank-16 LoRA on both towers at batch 256;
- input pipeline: the classifier's loader (JPEG shard, crop first) per core, and the cores it takes to feed
  the classifier step's rate;
- peak GPU memory of each.
The JSON (default bench/results/gpu_suite.json) holds the device's name, each row's figures and the
per-stage rates the preflight turns into GPU-hours.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lora import merge_per_image  # noqa: E402

from ChimeraPipe.diffusion.train import class_norm_clip  # noqa: E402
from ChimeraPipe.lora import (  # noqa: E402
    head_counts,
    head_weights,
    inject_multihead_lora,
    lora_layers,
    stacked_routing,
)

from bench_batched_lora import SIZES as UNET_SIZES  # noqa: E402
from bench_batched_lora import make_unet  # noqa: E402

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
SIZES = {  # UNet size, CLIP config, classifier batch, generation batch, steps, repeats
    "full": dict(unet="sd21", clip="ViT-B-16", clip_batch=256, gen_batch=16, gen_steps=50, repeats=5,
                 train_batch=4, classes=16),
    "tiny": dict(unet="mini", clip=None, clip_batch=8, gen_batch=4, gen_steps=50, repeats=2, train_batch=4,
                 classes=4),
}
TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32,
                                             "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(fn, device: str, repeats: int) -> tuple[float, float]:
    """(median seconds, peak GiB of GPU memory during the runs; 0 on the CPU)."""
    fn()
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0
    return statistics.median(times), peak


def generation_rows(size: dict, device: str, dtype) -> list[dict]:
    rows, batch, steps = [], size["gen_batch"], size["gen_steps"]
    torch.manual_seed(0)
    unet, latent, tokens, width = make_unet(size["unet"], device, dtype)
    x = torch.randn(2 * batch, 4, latent, latent, device=device, dtype=dtype)
    t = torch.full((2 * batch,), 500, device=device)
    ctx = torch.randn(2 * batch, tokens, width, device=device, dtype=dtype)
    with torch.no_grad():
        plain, mem = measure(lambda: unet(x, t, encoder_hidden_states=ctx), device, size["repeats"])
        rows.append({"row": "generation: plain UNet (diffusers)", "seconds": plain,
                     "images_per_s": batch / (plain * steps), "peak_gib": mem})
        for heads in (4, 64):
            mixed_unet, *_ = make_unet(size["unet"], device, dtype)
            inject_multihead_lora(mixed_unet, TARGETS, rank=16, heads=heads, share="A")
            for layer in lora_layers(mixed_unet).values():
                torch.nn.init.normal_(layer.lora_B, std=0.01)
            w = torch.distributions.Dirichlet(torch.ones(heads)).sample((batch,)).to(device)

            def mixed():
                with head_weights(mixed_unet, w):
                    mixed_unet(x, t, encoder_hidden_states=ctx)

            seconds, mem = measure(mixed, device, size["repeats"])
            rows.append({"row": f"generation: per-sample mixing, K={heads}", "seconds": seconds,
                         "images_per_s": batch / (seconds * steps), "peak_gib": mem,
                         "vs_plain": plain / seconds})
            naive = merge_per_image(unet, mixed_unet, w, x, t, ctx)
            naive_s, mem = measure(naive, device, max(1, size["repeats"] // 2))
            rows[-1]["vs_merge_per_image"] = naive_s / seconds
            rows.append({"row": f"generation: merge per image, K={heads}", "seconds": naive_s,
                         "images_per_s": batch / (naive_s * steps), "peak_gib": mem})
    return rows


def training_rows(size: dict, device: str, dtype) -> list[dict]:
    rows, amp = [], dtype != torch.float32
    for label, share, heads, classes in (("LoRA training: single LoRA, batch 4", "both", 1, 1),
                                         ("LoRA training: 4 heads (shared A), batch 4", "A", 4, 1),
                                         (f"LoRA training: {size['classes']} classes batched, per class-step",
                                          "A", 4, size["classes"])):
        torch.manual_seed(0)
        unet, latent, tokens, width = make_unet(size["unet"], device, torch.float32)
        inject_multihead_lora(unet, TARGETS, rank=16, heads=heads, share=share, classes=classes)
        n_a, n_b = head_counts(share, heads)
        owners = [(p, torch.arange(classes, device=device).repeat_interleave(per))
                  for layer in lora_layers(unet).values() for p, per in ((layer.lora_A, n_a), (layer.lora_B, n_b))]
        optimizer = torch.optim.AdamW([p for p, _ in owners], lr=1e-4)
        batch = size["train_batch"] * classes
        x = torch.randn(batch, 4, latent, latent, device=device)
        t = torch.randint(0, 1000, (batch,), device=device)
        ctx = torch.randn(batch, tokens, width, device=device)

        def step():
            with torch.autocast(device.split(":")[0], dtype=dtype, enabled=amp), stacked_routing(unet):
                loss = unet(x, t, encoder_hidden_states=ctx).sample.float().pow(2).flatten(1).mean(1)
            optimizer.zero_grad(set_to_none=True)
            loss.view(classes, -1).mean(1).sum().backward()
            class_norm_clip(owners, classes, 1.0)
            optimizer.step()

        seconds, mem = measure(step, device, size["repeats"])
        rows.append({"row": label, "seconds": seconds / classes, "peak_gib": mem,
                     "class_steps_per_s": classes / seconds})
    single, multi, batched = rows[-3], rows[-2], rows[-1]
    multi["vs_single"] = multi["seconds"] / single["seconds"]
    batched["speed_up_per_class"] = multi["seconds"] / batched["seconds"]
    return rows


def classifier_rows(size: dict, device: str, dtype) -> tuple[list[dict], float]:
    import open_clip

    from ChimeraPipe.classify.clip_lora import inject_clip_lora
    from ChimeraPipe.models.clip import image_features, text_features

    torch.manual_seed(0)
    if size["clip"]:
        model = open_clip.create_model(size["clip"], pretrained=None)
        tokenizer, image_size = open_clip.get_tokenizer(size["clip"]), 224
    else:
        model = open_clip.CLIP(**TINY_CLIP)
        tokenizer, image_size = open_clip.get_tokenizer("ViT-B-16"), TINY_CLIP["vision_cfg"]["image_size"]
    inject_clip_lora(model, 16, 32, 0.1)
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = size["clip_batch"]
    pixels = torch.randn(batch, 3, image_size, image_size, device=device)
    labels = torch.randint(0, 100, (batch,), device=device)
    prompts = [f"a photo of a class {i}" for i in range(100)]

    def step():
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
            text = text_features(model, tokenizer, prompts, device)
            logits = 100 * image_features(model, pixels) @ text.T
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds, mem = measure(step, device, size["repeats"])
    rate = batch / seconds
    return [{"row": f"classifier: CLIP LoRA step, batch {batch}", "seconds": seconds, "images_per_s": rate,
             "peak_gib": mem}], rate


def loader_rows(classifier_rate: float, images: int) -> list[dict]:
    import tempfile

    from ChimeraPipe.classify.augment import AnchorViews, Normalise

    from bench_loader import MEAN, STD, loader, natural_images, one_pass, write_sets

    with tempfile.TemporaryDirectory() as tmp:
        sets = write_sets(natural_images(images), Path(tmp))
        batches, normalise = loader(sets["jpeg shard"], AnchorViews(224), 1), Normalise(MEAN, STD)
        per_core = max(one_pass(batches, normalise) for _ in range(2))       # the first pass starts the worker
    return [{"row": "input pipeline: JPEG shard, crop first, per core", "images_per_s": per_core,
             "cores_to_feed_classifier": classifier_rate / per_core}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="toy sizes, fp32 (the CPU check in make test)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "gpu_suite.json")
    args = parser.parse_args()
    size = SIZES["tiny" if args.tiny else "full"]
    dtype = torch.bfloat16 if args.device.startswith("cuda") and not args.tiny else torch.float32
    started = time.perf_counter()
    rows = generation_rows(size, args.device, dtype)
    rows += training_rows(size, args.device, dtype)
    clf, clf_rate = classifier_rows(size, args.device, dtype)
    rows += clf + loader_rows(clf_rate, 24 if args.tiny else 96)
    cuda = args.device.startswith("cuda")
    device_name = torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu"
    resolution = 8 * UNET_SIZES[size["unet"]]["latent"]
    # "stages": what the preflight multiplies by a run's work (pipeline/preflight.py, GPU_SUITE): images/s of a
    # 50-step generation with K = 4 mixing, LoRA class-steps/s batched, classifier training images/s.
    result = {"gpu": device_name, "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30,
                                                          1) if cuda else None,
              "mode": "tiny" if args.tiny else "full", "dtype": str(dtype).split(".")[-1],
              "stages": {"generate": {"per_s": rows[1]["images_per_s"], "resolution": resolution,
                                      "steps": size["gen_steps"]},
                         "train": {"per_s": next(r["class_steps_per_s"] for r in rows if "batched" in r["row"]),
                                   "resolution": resolution},
                         "classify": {"per_s": clf_rate}},
              "rows": rows, "seconds": time.perf_counter() - started}
    print(f"{'row':58} {'s':>9} {'rate':>10} {'peak GiB':>9}  ratio")
    for row in rows:
        rate_value = row.get("images_per_s", row.get("class_steps_per_s", float("nan")))
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in row.items() if k.startswith(("vs_", "speed_up")))
        cores = f"cores to feed {row['cores_to_feed_classifier']:.1f}" if "cores_to_feed_classifier" in row else ""
        print(f"{row['row']:58} {row.get('seconds', float('nan')):9.4f} {rate_value:10.2f} "
              f"{row.get('peak_gib', 0):9.2f}  {ratios}{cores}")
    print(f"device: {device_name}; {result['seconds']:.0f} s in all")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

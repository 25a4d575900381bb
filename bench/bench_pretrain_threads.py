"""Base pretraining on 1 thread against every core, side by side (why rule pretrain_base takes every core).

    .venv/bin/python bench/bench_pretrain_threads.py [--steps 60]

A short schedule of the mini config's base (16 px, UNet (64, 128)); prints seconds per phase and the ratio."""
from __future__ import annotations

import argparse
import os
import tempfile

import torch

from ChimeraPipe.pipeline.settings import PretrainSettings, source_judge_settings
from ChimeraPipe.pretrain.base import pretrain_base


def timings(threads: int, steps: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    cfg = PretrainSettings(pool=2000, vae_steps=steps, unet_steps=steps, check_images=500, check_samples=2)
    with tempfile.TemporaryDirectory() as tmp:
        return pretrain_base(os.path.join(tmp, "base"), cfg, source_judge_settings(cfg))["timings_s"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    one, every = timings(1, args.steps), timings(cores, args.steps)
    print(f"phase      1 thread   {cores} threads   speed-up")
    for phase in ("vae_s", "unet_s"):
        print(f"{phase:<9}{one[phase]:>9.1f}s  {every[phase]:>9.1f}s  {one[phase] / every[phase]:>8.2f}x")

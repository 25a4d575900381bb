"""The storage formats of `generate.format` on natural 512 px images, side by side: bytes per image, decode
time, and how far each lossy encoding moves the pixels (PSNR against the original, and the mean absolute
difference in 8-bit levels). Encoded with core.shards.encode, as generation stores them.

    .venv/bin/python bench/bench_formats.py [--images 24]
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image

from ChimeraPipe.core.shards import encode

from bench_loader import natural_images

FORMATS = [("png", 95), ("jpeg", 95), ("jpeg", 90), ("webp", 95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    images = natural_images(args.images)
    print(f"{'format':10} {'KB/image':>9} {'vs PNG':>7} {'decode ms':>10} {'PSNR dB':>8} {'mean |diff|':>12}")
    png_bytes = None
    for fmt, quality in FORMATS:
        sizes, decode, psnr, diff = [], [], [], []
        for image in images:
            data = encode(image, fmt, quality)
            sizes.append(len(data))
            start = time.perf_counter()
            with Image.open(io.BytesIO(data)) as decoded:
                pixels = np.asarray(decoded.convert("RGB"), dtype=np.float64)
            decode.append(time.perf_counter() - start)
            error = pixels - np.asarray(image, dtype=np.float64)
            mse = float(np.mean(error ** 2))
            psnr.append(float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse))
            diff.append(float(np.mean(np.abs(error))))
        kb = statistics.mean(sizes) / 1000
        png_bytes = png_bytes or kb
        label = fmt if fmt == "png" else f"{fmt} q{quality}"
        print(f"{label:10} {kb:9.1f} {kb / png_bytes:6.2f}x {1000 * statistics.median(decode):10.2f} "
              f"{statistics.mean(psnr):8.1f} {statistics.mean(diff):12.2f}")


if __name__ == "__main__":
    main()

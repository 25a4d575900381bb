"""The classifier's input pipeline: today's path against the new one, side by side, images per second per core.

Today: a PNG file per 512 px image, decoded whole, the anchors' recipe in their order (RandAugment on the
whole image, then the random resized crop to 224, ...) on uint8 tensors, each view made float and normalised
in the worker. Now: the images as JPEG q95 in a tar shard, the crop drawn first, the JPEG decoded at reduced
scale where the crop allows, the rest on the 224 px view with PIL's kernels, uint8 views handed over and the
batch normalised in the main process, as the training step does (classify/augment.py). The mixed rows (PNG
with the new path, JPEG with the old one) say which part gives what. Both run through DataLoader workers, as
training does; per core = the rate / the workers. Target (issue #21): >= 4x per core.

    python bench/bench_loader.py [--images 96] [--workers 1 2] [--eval]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import v2

from ChimeraPipe.classify.augment import AnchorViews, Normalise, clip_train_transform
from ChimeraPipe.classify.data import ImageTable
from ChimeraPipe.core.loader import image_batches
from ChimeraPipe.core.shards import ShardStore, encode

MEAN, STD = (0.481, 0.458, 0.408), (0.269, 0.261, 0.276)   # CLIP's


def natural_images(count: int, size: int = 512) -> list[Image.Image]:
    """`count` different 512 px natural images: crops, flips and turns of matplotlib's sample photograph."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = Image.open(handle).convert("RGB")
    out, g = [], torch.Generator().manual_seed(0)
    for _ in range(count):
        side = int(photo.height * (0.6 + 0.4 * float(torch.rand((), generator=g))))
        left = int((photo.width - side) * float(torch.rand((), generator=g)))
        top = int((photo.height - side) * float(torch.rand((), generator=g)))
        image = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
        out.append(image.rotate(float(torch.rand((), generator=g)) * 20 - 10) if torch.rand(()) < 0.5 else image)
    return out


def write_sets(images: list[Image.Image], root: Path) -> dict[str, list[str]]:
    """The same images as PNG files (today) and as JPEG q95 / PNG in shards (now)."""
    files = []
    for i, image in enumerate(images):
        path = root / "png" / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        files.append(str(path))
    sets = {"png files": files}
    for fmt in ("jpeg", "png"):
        store = ShardStore(root / f"shard-{fmt}", 256, fmt)
        store.add_batch([(i, encode(image, fmt, 95), {}) for i, image in enumerate(images)])
        store.compact()
        sets[f"{fmt} shard"] = list(store.done().values())
    return sets


def today_transform():
    """The path before this round: the anchors' order, each view made float and normalised in the worker."""
    return v2.Compose([clip_train_transform(224, "anchor", crop_first=False), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(MEAN, STD)])


def rate(paths: list[str], transform, workers: int, repeats: int = 2, normalise=None) -> float:
    """Images per second through a DataLoader of `workers` processes (best of `repeats` passes); `normalise`
    runs on each batch in this process, as the training step runs it."""
    table = __import__("pandas").DataFrame({"path": paths, "label": 0})
    loader = torch.utils.data.DataLoader(ImageTable(table, transform), batch_size=32, num_workers=workers,
                                         persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    best = 0.0
    for _ in range(repeats + 1):
        start, seen = time.perf_counter(), 0
        for pixels, _, _ in loader:
            if normalise is not None:
                pixels = normalise(pixels)
            seen += len(pixels)
        best = max(best, seen / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--eval", action="store_true", help="also the evaluation loader (core.loader)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference, fast, normalise = today_transform(), AnchorViews(224), Normalise(MEAN, STD)
    with tempfile.TemporaryDirectory() as tmp:
        sets = write_sets(natural_images(args.images), Path(tmp))
        rows = [("today: PNG files, the anchors' order", "png files", reference),
                ("JPEG shard, the anchors' order", "jpeg shard", reference),
                ("PNG shard, crop first", "png shard", fast),
                ("now: JPEG shard, crop first", "jpeg shard", fast)]
        print(f"{'path':42} {'workers':>7} {'images/s':>9} {'per core':>9} {'vs today':>9}")
        for workers in args.workers:
            today = None
            for label, name, transform in rows:
                per_core = rate(sets[name], transform, workers, normalise=normalise if transform is fast else None) \
                    / workers
                today = today or per_core
                print(f"{label:42} {workers:>7} {per_core * workers:9.1f} {per_core:9.1f} {per_core / today:8.2f}x")
        if args.eval:
            # As evaluation runs CLIP's preprocess (models.clip.uint8_preprocess): resize, centre crop, uint8 views
            # handed over, the batch normalised in this process.
            preprocess = v2.Compose([v2.Resize(224, interpolation=v2.InterpolationMode.BICUBIC), v2.CenterCrop(224),
                                     v2.PILToTensor()])
            for workers in args.workers:
                start = time.perf_counter()
                seen = sum(len(normalise(b)) for b in image_batches(sets["jpeg shard"], preprocess, 32, workers))
                per_core = seen / (time.perf_counter() - start) / max(1, workers)
                print(f"{'evaluation loader, JPEG shard':42} {workers:>7} {per_core * workers:9.1f} {per_core:9.1f}")


if __name__ == "__main__":
    main()

"""The classifier's input pipeline: today's path against the new one, side by side, images per second per core.

Today: a PNG file per 512 px image, decoded whole, the anchors' recipe in their order (RandAugment on the
whole image, then the random resized crop to 224, ...) on uint8 tensors, each view made float and normalised
in the worker. Now: the images as JPEG q95 in a tar shard, the crop drawn first, the JPEG decoded at reduced
scale where the crop allows, the rest on the 224 px view with PIL's kernels, uint8 views handed over and the
batch normalised in the main process, as the training step does (classify/augment.py). The mixed rows (PNG
with the new path, JPEG with the old one) say which part gives what. Both run through DataLoader workers, as
training does; per core = the rate / the workers. Target (issue #21): >= 4x per core.

    python bench/bench_loader.py [--images 96] [--workers 1 2] [--repeats 3] [--eval]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import open_clip
import torch
from PIL import Image
from torchvision.transforms import v2

from ChimeraPipe.classify.augment import AnchorViews, Normalise, clip_train_transform
from ChimeraPipe.classify.data import ImageTable
from ChimeraPipe.core.loader import image_batches
from ChimeraPipe.core.shards import ShardStore, encode
from ChimeraPipe.models.clip import uint8_preprocess

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


def loader(paths: list[str], transform, workers: int) -> torch.utils.data.DataLoader:
    table = __import__("pandas").DataFrame({"path": paths, "label": 0})
    return torch.utils.data.DataLoader(ImageTable(table, transform), batch_size=32, num_workers=workers,
                                       persistent_workers=workers > 0, prefetch_factor=4 if workers else None)


def one_pass(batches, normalise=None) -> float:
    """Images per second of one pass over `batches`; `normalise` runs on each batch in this process, as the
    training step runs it."""
    start, seen = time.perf_counter(), 0
    for batch in batches:
        pixels = batch[0] if isinstance(batch, list | tuple) else batch
        if normalise is not None:
            pixels = normalise(pixels)
        seen += len(pixels)
    return seen / (time.perf_counter() - start)


def rates(passes: dict, repeats: int) -> dict[str, float]:
    """Best images/s of each path over `repeats` rounds, the paths taking turns within a round (so a change in
    the machine's speed reaches every path alike); `passes` maps a label to a callable running one pass."""
    best = dict.fromkeys(passes, 0.0)
    for _ in range(repeats + 1):                 # the first round warms the workers up
        for label, run in passes.items():
            best[label] = max(best[label], run())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="rounds after the warm-up; each path's best counts")
    parser.add_argument("--eval", action="store_true", help="also the evaluation loader (core.loader)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference, fast, normalise = today_transform(), AnchorViews(224), Normalise(MEAN, STD)
    # As evaluation runs the CLIP's preprocess (open_clip's for ViT-B/16, as models.clip.uint8_preprocess maps
    # it): resize, centre crop, uint8 views handed over, the batch normalised in this process.
    preprocess = uint8_preprocess(open_clip.image_transform(224, is_train=False))
    with tempfile.TemporaryDirectory() as tmp:
        sets = write_sets(natural_images(args.images), Path(tmp))
        rows = [("today: PNG files, the anchors' order", "png files", reference),
                ("JPEG shard, the anchors' order", "jpeg shard", reference),
                ("PNG shard, crop first", "png shard", fast),
                ("now: JPEG shard, crop first", "jpeg shard", fast)]
        print(f"{'path':42} {'workers':>7} {'images/s':>9} {'per core':>9} {'vs today':>9}")
        for workers in args.workers:
            passes = {}
            for label, name, transform in rows:
                batches = loader(sets[name], transform, workers)
                passes[label] = lambda b=batches, t=transform: one_pass(b, normalise if t is fast else None)
            if args.eval:   # a new loader per pass, as each evaluation makes one: 4x the images, to amortise it
                passes["evaluation loader, JPEG shard"] = lambda: one_pass(
                    image_batches(sets["jpeg shard"] * 4, preprocess, 32, workers), normalise)
            best = rates(passes, args.repeats)
            today = best[rows[0][0]]
            for label, images_per_s in best.items():
                ratio = f"{images_per_s / today:8.2f}x" if not label.startswith("evaluation") else ""
                print(f"{label:42} {workers:>7} {images_per_s:9.1f} {images_per_s / workers:9.1f} {ratio}")

if __name__ == "__main__":
    main()

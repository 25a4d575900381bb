"""How much of the training views is zero padding, per method preset: the share of views that hold any
padding and the mean padded fraction of a view's area, on the demo data (ground-truth boxes) and on
images with the aspect ratios of the paper's datasets (random object boxes).

    python bench/bench_padding.py [--views 32]

Crops follow each preset's `crop` setting (box-constrained, a DataDream random square, LoFT's centre
crop); methods without a detected box use the whole image as their box.
"""
from __future__ import annotations

import argparse
import inspect
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ChimeraPipe.boxes.crops import sample_crop
from ChimeraPipe.datasets.demo import make_shapes_dataset, read_annotations
from ChimeraPipe.pipeline.presets import PRESETS

# (width, height) typical of each dataset's images
ASPECTS = {"pets 4:3": (500, 375), "cars 16:9": (640, 360), "aircraft 3:2": (1024, 683), "flowers 3:4": (500, 667),
           "isic 4:3": (600, 450), "food 1:1": (512, 512), "caltech 3:2": (300, 200)}
RESOLUTION = 512


def crop_mode(preset: dict) -> str:
    return preset.get("crop", "box" if preset.get("boxes") == "detect" else "full")


def sample(size, box, seed, mode):
    """One crop spec; modes that ignore the object (and the old code's 'full') crop with the whole-image box."""
    whole = (0, 0, *size)
    if "mode" in inspect.signature(sample_crop).parameters:
        return sample_crop(size, box if mode == "box" else whole, RESOLUTION, seed, mode="box" if mode == "full"
                           else mode)
    return sample_crop(size, box if mode == "box" else whole, RESOLUTION, seed)


def region_padding(region, size) -> float:
    """Padded share of a crop region; reads only `spec.region`, so it measures any version of sample_crop
    (the figures before the crop rework were taken with this script on the old code)."""
    left, top, right, bottom = region
    width, height = size
    inside = max(0.0, min(right, width) - max(left, 0.0)) * max(0.0, min(bottom, height) - max(top, 0.0))
    return 1.0 - inside / ((right - left) * (bottom - top))


def measure(cases, views: int) -> dict[str, tuple[float, float]]:
    """Preset -> (share of padded views, mean padded area) over cases [(size, box)]."""
    out = {}
    for name, preset in PRESETS.items():
        if preset["kind"] != "lora":
            continue
        fractions = np.array([region_padding(sample(size, box, 1000 * i + v, crop_mode(preset)).region, size)
                              for i, (size, box) in enumerate(cases) for v in range(views)])
        out[name] = (float((fractions > 1e-9).mean()), float(fractions.mean()))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=32, help="views per image")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_shapes_dataset(Path(tmp) / "shapes")
        boxes, _ = read_annotations(root)
        from PIL import Image

        demo = [(Image.open(root / p).size, (r.x0, r.y0, r.x1, r.y1)) for p, r in zip(boxes.path, boxes.itertuples(),
                                                                                        strict=True)]
    sets = {"demo (gt boxes)": demo}
    for fill in (0.4, 0.7):  # objects whose box spans `fill` of each side, placed at random
        cases = []
        for width, height in ASPECTS.values():
            for _ in range(8):
                w, h = fill * width, fill * height
                x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
                cases.append(((width, height), (x0, y0, x0 + w, y0 + h)))
        sets[f"dataset aspects, box {fill:.0%} of each side"] = cases
    rows = []
    for label, cases in sets.items():
        for preset, (share, area) in measure(cases, args.views).items():
            rows.append({"images": label, "preset": preset, "padded views %": 100 * share,
                         "mean padded area %": 100 * area})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()

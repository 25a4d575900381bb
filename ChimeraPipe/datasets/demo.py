"""Datasets the workflow makes itself (`demo: true`): the embedded shapes (with exact ground-truth boxes)
and scikit-learn's digits file; and the box annotations a dataset ships (`boxes.csv`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from ..core.io import atomic_dir
from .base import DatasetLayoutError

SHAPES_CLASSES = ("circle", "square", "triangle")


def demo_classes(kind: str = "imagefolder") -> tuple[str, ...]:
    """Classes of a dataset the workflow makes itself (`demo: true`): the shapes, or scikit-learn's digits."""
    if kind == "sklearn_digits":
        from .official import DIGIT_WORDS

        return DIGIT_WORDS
    if kind != "imagefolder":
        raise ValueError(f"demo datasets are the shapes (imagefolder) or sklearn_digits, not {kind!r}")
    return SHAPES_CLASSES


def make_demo_dataset(kind: str, root: str | Path, seed: int = 0) -> Path:
    """The shapes, generated; or scikit-learn's digits file, copied from the installed package."""
    if kind == "sklearn_digits":
        from .official import SklearnDigits

        return SklearnDigits.fetch(root)
    demo_classes(kind)
    return make_shapes_dataset(root, seed=seed)


def read_annotations(root: str | Path, filename: str = "boxes.csv") -> tuple[pd.DataFrame, str]:
    """Boxes shipped with a dataset: CSV with path (relative to root), x0, y0, x1, y1 in pixels."""
    path = Path(root) / filename
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: annotation file missing (detect.backend=annotations needs it)")
    frame = pd.read_csv(path)
    missing = {"path", "x0", "y0", "x1", "y1"} - set(frame.columns)
    if missing:
        raise DatasetLayoutError(f"{path}: missing columns {sorted(missing)}")
    frame["path"] = [str(Path(root) / p) for p in frame["path"]]
    return frame, str(path)


# ---------------------------------------------------------------- embedded demo dataset
def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A colour gradient with noise and a few stray lines, so that the whole image is no good crop."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, width)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, height)[:, None, None]
    base = c0 * (1 - t) + c1 * t + rng.normal(0, 12, (height, width, 3))
    image = Image.fromarray(np.clip(np.broadcast_to(base, (height, width, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(1, 4)):
        xy = [tuple(rng.integers(0, [width, height])) for _ in range(2)]
        draw.line(xy, fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 3)))
    return image.filter(ImageFilter.GaussianBlur(0.6))


def _draw_shape(draw: ImageDraw.ImageDraw, name: str, box: tuple[int, int, int, int], colour: tuple) -> None:
    x0, y0, x1, y1 = box
    if name == "circle":
        draw.ellipse(box, fill=colour)
    elif name == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
    elif name == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=colour)
    else:
        raise ValueError(f"unknown shape {name!r}")


def make_shapes_dataset(root: str | Path, seed: int = 0, train_per_class: int = 8, test_per_class: int = 6,
                        classes: tuple[str, ...] = SHAPES_CLASSES) -> Path:
    """Write the embedded demo dataset: shapes of varied size and place on varied backgrounds.

    Image sizes vary (56..112 px, not square), the object covers 15-55% of the shorter side and can
    sit near a border, and boxes.csv holds the exact ground-truth box of every object.
    """
    rng = np.random.default_rng(seed)
    rows = []
    with atomic_dir(root) as tmp:
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for name in classes:
                (tmp / split / name).mkdir(parents=True)
                for index in range(count):
                    width, height = (int(v) for v in rng.integers(56, 113, 2))
                    image = _background(rng, width, height)
                    side = int(rng.uniform(0.15, 0.55) * min(width, height))
                    w = side if name != "triangle" else int(side * rng.uniform(0.9, 1.2))
                    x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - side + 1))
                    box = (x0, y0, x0 + w, y0 + side)
                    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
                    _draw_shape(ImageDraw.Draw(image), name, box, colour)
                    rel = f"{split}/{name}/{index:03d}.png"
                    image.save(tmp / rel)
                    rows.append({"path": rel, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]})
        pd.DataFrame(rows).to_csv(tmp / "boxes.csv", index=False)
    return Path(root)

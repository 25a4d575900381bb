"""Training-view crops. Box-constrained ("semantic boosting"): every view contains the whole object
box b*. The baselines' own crops: DataDream's random square, LoFT's centre square.

A crop region R is a square in image coordinates; it leaves the image (the part outside is zero in the
view) only when b* is longer than the image's shorter side. R is never stretched, so the object's
aspect ratio is preserved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CropSpec:
    region: Box          # square (x0, y0, x1, y1) in image pixels; may extend past the image
    box_in_view: Box     # b* mapped into the out_size x out_size view (after the flip)
    out_size: int
    flip: bool


def clip_box(box: Box, image_size: tuple[int, int], min_size: float = 1.0) -> Box:
    """Clamp a box into the image and give degenerate boxes at least `min_size` pixels per side."""
    width, height = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
    y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))

    def widen(lo: float, hi: float, limit: float) -> tuple[float, float]:
        need = min(min_size, limit) - (hi - lo)
        if need <= 0:
            return lo, hi
        lo = max(0.0, lo - need / 2)
        hi = lo + min(min_size, limit)
        if hi > limit:
            lo, hi = limit - min(min_size, limit), limit
        return lo, hi

    x0, x1 = widen(x0, x1, width)
    y0, y1 = widen(y0, y1, height)
    return (x0, y0, x1, y1)


def _feasible_start(lo_box: float, hi_box: float, side: float, extent: float) -> tuple[float, float]:
    """Interval of R's start so that [lo_box, hi_box] ⊆ R, staying inside [0, extent] where R fits,
    or covering the whole extent where it does not (zero padding on both sides then)."""
    if side <= extent:
        return max(hi_box - side, 0.0), min(lo_box, extent - side)
    return max(hi_box - side, extent - side), min(lo_box, 0.0)


CROP_MODES = ("box", "random", "center")


def sample_crop(
    image_size: tuple[int, int],
    box: Box,
    out_size: int,
    seed: int,
    scale_range: tuple[float, float] = (0.8, 1.0),
    translate: float = 1.0,
    flip_prob: float = 0.0,
    mode: str = "box",
) -> CropSpec:
    """Sample a square crop region R of the image.

    mode="box" (semantic boosting): an ordinary augmentation crop whose side is a fraction from
    `scale_range` of the image's shorter side, placed uniformly (shrunk towards the middle by
    `translate`, 0 = centred) among the positions that keep both R inside the image and b* inside R.
    The side grows to b*'s longest side when the drawn one is smaller; only when b*'s longest side
    exceeds the image's shorter side does R leave the image, and only then is the view padded.
    mode="random" (DataDream): a square of the shorter side at a uniform position, no flip.
    mode="center" (LoFT): the centred square of the shorter side, no flip.
    """
    if out_size < 1:
        raise ValueError(f"out_size must be positive, got {out_size}")
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {CROP_MODES}, got {mode!r}")
    lo_scale, hi_scale = scale_range
    if not 0.0 < lo_scale <= hi_scale <= 1.0:
        raise ValueError(f"scale_range must satisfy 0 < low <= high <= 1 (fractions of the shorter side), "
                         f"got {scale_range}")
    if not 0.0 <= translate <= 1.0:
        raise ValueError(f"translate must lie in [0, 1], got {translate}")
    width, height = image_size
    if width < 1 or height < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    rng = np.random.default_rng(seed)
    short = min(width, height)
    box = clip_box(box, image_size)
    if mode == "center":
        return _spec((width - short) / 2, (height - short) / 2, short, box, out_size, False)
    if mode == "random":
        return _spec(rng.uniform(0, width - short), rng.uniform(0, height - short), short, box, out_size, False)

    x0, y0, x1, y1 = box
    hull = max(x1 - x0, y1 - y0)
    side = max(short * rng.uniform(lo_scale, hi_scale), hull)
    starts = []
    for lo_box, hi_box, extent in ((x0, x1, width), (y0, y1, height)):
        lo, hi = _feasible_start(lo_box, hi_box, side, extent)
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * translate
        start = mid + rng.uniform(-half, half) if half > 0 else mid
        starts.append(min(max(start, lo), hi))  # guards float round-off at the interval's ends
    flip = bool(rng.random() < flip_prob)
    return _spec(*starts, side, box, out_size, flip)


def _spec(left: float, top: float, side: float, box: Box, out_size: int, flip: bool) -> CropSpec:
    """The crop R = (left, top, side) and b* mapped into the view (after the flip)."""
    x0, y0, x1, y1 = box
    scale = out_size / side
    bx0, bx1 = (x0 - left) * scale, (x1 - left) * scale
    if flip:
        bx0, bx1 = out_size - bx1, out_size - bx0
    return CropSpec(region=(left, top, left + side, top + side),
                    box_in_view=(bx0, (y0 - top) * scale, bx1, (y1 - top) * scale), out_size=out_size, flip=flip)


def padded_fraction(spec: CropSpec, image_size: tuple[int, int]) -> float:
    """Share of the view's area that lies outside the image (zero padding)."""
    left, top, right, bottom = spec.region
    width, height = image_size
    inside = max(0.0, min(right, width) - max(left, 0.0)) * max(0.0, min(bottom, height) - max(top, 0.0))
    return 1.0 - inside / ((right - left) * (bottom - top))


def apply_crop(image: Image.Image, spec: CropSpec) -> Image.Image:
    """Resample R to an out_size x out_size RGB view; pixels whose centre falls outside the image are 0.

    Resampling is Lanczos with its support widened by the downscale factor (PIL's `resize`), so large
    images are low-passed before they are subsampled instead of aliasing."""
    image = image.convert("RGB")
    size = spec.out_size
    left, top, right, bottom = spec.region
    pad_left, pad_top = max(0, math.ceil(-left)), max(0, math.ceil(-top))
    pad_right, pad_bottom = max(0, math.ceil(right - image.width)), max(0, math.ceil(bottom - image.height))
    source = image
    if pad_left or pad_top or pad_right or pad_bottom:  # only where R leaves the image
        # Edge-replicated for the filter, so no black bleeds into the image; zeroed exactly below.
        source = Image.fromarray(np.pad(np.asarray(image), ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)),
                                        mode="edge"), "RGB")
    region = (left + pad_left, top + pad_top, right + pad_left, bottom + pad_top)
    view = source.resize((size, size), Image.Resampling.LANCZOS, box=region)
    # The filter blends edge pixels into the padding; zero exactly what lies outside the image.
    step = (right - left) / size
    centres = (np.arange(size) + 0.5) * step
    inside_x = (left + centres >= 0) & (left + centres < image.width)
    inside_y = (top + centres >= 0) & (top + centres < image.height)
    if not (inside_x.all() and inside_y.all()):
        array = np.asarray(view).copy()
        array[~inside_y, :, :] = 0
        array[:, ~inside_x, :] = 0
        view = Image.fromarray(array, "RGB")
    return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if spec.flip else view

"""Box-constrained crops ("semantic boosting"): every training view contains the whole object box b*.

A crop region R is a square in image coordinates that may extend past the image; the part outside
the image is zero in the view. R is never stretched, so the object's aspect ratio is preserved.
"""
from __future__ import annotations

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


def sample_crop(
    image_size: tuple[int, int],
    box: Box,
    out_size: int,
    seed: int,
    scale_range: tuple[float, float] = (1.05, 1.5),
    translate: float = 1.0,
    min_side_frac: float = 0.0,
    flip_prob: float = 0.5,
) -> CropSpec:
    """Sample a square crop region R with b* ⊆ R.

    R's side is the box's square hull times a factor from `scale_range` (>= 1), at least
    `min_side_frac` of the image's shorter side. Its position is uniform over the positions that
    keep b* inside (and R inside the image when R fits), shrunk towards the middle by `translate`
    in [0, 1] (0 = centred). A box larger than every jittered crop gives R = the box's square hull.
    """
    if out_size < 1:
        raise ValueError(f"out_size must be positive, got {out_size}")
    lo_scale, hi_scale = scale_range
    if not 1.0 <= lo_scale <= hi_scale:
        raise ValueError(f"scale_range must satisfy 1 <= low <= high, got {scale_range}")
    if not 0.0 <= translate <= 1.0:
        raise ValueError(f"translate must lie in [0, 1], got {translate}")
    width, height = image_size
    if width < 1 or height < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    x0, y0, x1, y1 = clip_box(box, image_size)
    rng = np.random.default_rng(seed)
    hull = max(x1 - x0, y1 - y0)
    side = max(hull * rng.uniform(lo_scale, hi_scale), min_side_frac * min(width, height), hull)

    starts = []
    for lo_box, hi_box, extent in ((x0, x1, width), (y0, y1, height)):
        lo, hi = _feasible_start(lo_box, hi_box, side, extent)
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * translate
        start = mid + rng.uniform(-half, half) if half > 0 else mid
        starts.append(min(max(start, lo), hi))  # guards float round-off at the interval's ends
    left, top = starts
    flip = bool(rng.random() < flip_prob)

    scale = out_size / side
    bx0, bx1 = (x0 - left) * scale, (x1 - left) * scale
    if flip:
        bx0, bx1 = out_size - bx1, out_size - bx0
    box_in_view = (bx0, (y0 - top) * scale, bx1, (y1 - top) * scale)
    return CropSpec(region=(left, top, left + side, top + side), box_in_view=box_in_view,
                    out_size=out_size, flip=flip)


def apply_crop(image: Image.Image, spec: CropSpec) -> Image.Image:
    """Resample R to an out_size x out_size RGB view; pixels whose centre falls outside the image are 0."""
    image = image.convert("RGB")
    size = spec.out_size
    left, top, right, bottom = spec.region
    view = image.transform((size, size), Image.Transform.EXTENT, data=(left, top, right, bottom),
                           resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    # PIL's filters may blend edge pixels into the padding; zero exactly what lies outside.
    step = (right - left) / size
    centres = (np.arange(size) + 0.5) * step
    inside_x = (left + centres >= 0) & (left + centres < image.width)
    inside_y = (top + centres >= 0) & (top + centres < image.height)
    array = np.asarray(view).copy()
    array[~inside_y, :, :] = 0
    array[:, ~inside_x, :] = 0
    view = Image.fromarray(array, "RGB")
    return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if spec.flip else view

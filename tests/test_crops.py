"""Box-constrained crops: b* is always inside R, padding is exactly zero, seeds make crops repeatable."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ChimeraPipe.boxes.crops import apply_crop, clip_box, padded_fraction, sample_crop

EPS = 1e-6


@st.composite
def crop_cases(draw):
    width = draw(st.integers(1, 400))
    height = draw(st.integers(1, 400))
    x0 = draw(st.floats(0, width))
    x1 = draw(st.floats(0, width))
    y0 = draw(st.floats(0, height))
    y1 = draw(st.floats(0, height))
    lo = draw(st.floats(0.05, 1.0))
    hi = draw(st.floats(lo, 1.0))
    return dict(image_size=(width, height), box=(x0, y0, x1, y1), out_size=draw(st.integers(1, 96)),
                seed=draw(st.integers(0, 2**31 - 1)), scale_range=(lo, hi), translate=draw(st.floats(0, 1)),
                flip_prob=draw(st.sampled_from([0.0, 0.5, 1.0])), mode=draw(st.sampled_from(["box", "box", "center",
                                                                                           "random"])))


def contains(outer, inner, eps=EPS):
    return (outer[0] <= inner[0] + eps and outer[1] <= inner[1] + eps
            and inner[2] <= outer[2] + eps and inner[3] <= outer[3] + eps)


@settings(max_examples=400, deadline=None)
@given(crop_cases())
def test_box_inside_region_and_padding_only_when_needed(case):
    spec = sample_crop(**case)
    box = clip_box(case["box"], case["image_size"])
    width, height = case["image_size"]
    x0, y0, x1, y1 = spec.region
    assert x1 - x0 == pytest.approx(y1 - y0)  # square: aspect ratio never distorted
    assert spec == sample_crop(**case)  # same seed, same crop
    tol = 1e-6 * max(case["image_size"])
    hull = max(box[2] - box[0], box[3] - box[1])
    if case["mode"] == "box":
        assert contains(spec.region, box, eps=tol)
        size = case["out_size"]
        assert contains((0, 0, size, size), spec.box_in_view, eps=1e-6 * size)
    else:
        assert not spec.flip and x1 - x0 == pytest.approx(min(width, height))  # the baselines' squares
    if case["mode"] != "box" or hull <= min(width, height):
        # Padding only when b* is longer than the shorter side: otherwise R lies inside the image.
        assert contains((0, 0, width, height), spec.region, eps=tol)
        assert padded_fraction(spec, case["image_size"]) == pytest.approx(0, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(crop_cases())
def test_padding_is_exactly_zero_and_inside_is_image(case):
    width, height = case["image_size"]
    image = Image.new("RGB", (width, height), (200, 150, 100))  # no zero anywhere in the source
    spec = sample_crop(**case)
    view = np.asarray(apply_crop(image, spec))
    assert view.shape == (case["out_size"], case["out_size"], 3)
    left, top, right, _ = spec.region
    step = (right - left) / case["out_size"]
    centres = (np.arange(case["out_size"]) + 0.5) * step
    outside_x = (left + centres < 0) | (left + centres >= width)
    outside_y = (top + centres < 0) | (top + centres >= height)
    if spec.flip:
        outside_x = outside_x[::-1]
    outside = outside_y[:, None] | outside_x[None, :]
    assert (view[outside] == 0).all()
    # Well inside the image, the view shows the image's colour.
    interior_x = (left + centres >= 1) & (left + centres < width - 1)
    interior_y = (top + centres >= 1) & (top + centres < height - 1)
    if spec.flip:
        interior_x = interior_x[::-1]
    interior = interior_y[:, None] & interior_x[None, :]
    if interior.any():
        assert (view[interior] == (200, 150, 100)).all()


def test_box_larger_than_any_crop_uses_square_hull():
    spec = sample_crop((100, 50), (0, 0, 100, 50), out_size=32, seed=0, scale_range=(1.0, 1.0), translate=0,
                       flip_prob=0)
    assert spec.region == pytest.approx((0, -25, 100, 75))  # hull of the wide box, centred, padded top/bottom


def test_box_touching_border_keeps_region_inside_image_when_it_fits():
    for seed in range(50):
        spec = sample_crop((200, 200), (150, 150, 200, 200), out_size=64, seed=seed)
        x0, y0, x1, y1 = spec.region
        assert x0 >= 0 and y0 >= 0 and x1 <= 200 + 1e-9 and y1 <= 200 + 1e-9
        assert x1 >= 200 - 1e-9 and y1 >= 200 - 1e-9


def test_small_image_upscaled_with_padding_only_for_a_box_longer_than_the_short_side():
    image = Image.new("RGB", (8, 4), (10, 20, 30))
    spec = sample_crop((8, 4), (0, 0, 8, 4), out_size=64, seed=1, translate=0, flip_prob=0)
    view = np.asarray(apply_crop(image, spec))
    assert view.shape == (64, 64, 3) and padded_fraction(spec, (8, 4)) == pytest.approx(0.5)
    assert view[0, 0].tolist() == [0, 0, 0] and view[32, 32].tolist() == [10, 20, 30]
    inner = sample_crop((8, 4), (1, 1, 4, 3), out_size=64, seed=1)
    assert padded_fraction(inner, (8, 4)) == 0 and (np.asarray(apply_crop(image, inner)) == (10, 20, 30)).all()


def test_whole_image_box_fills_the_view_with_the_baselines_crops():
    for mode in ("center", "random"):
        spec = sample_crop((640, 360), (0, 0, 640, 360), out_size=64, seed=0, mode=mode)
        assert padded_fraction(spec, (640, 360)) == 0 and spec.region[3] - spec.region[1] == 360
    assert sample_crop((640, 360), (5, 5, 9, 9), 64, seed=0, mode="center").region == (140, 0, 500, 360)


def test_downscaling_is_anti_aliased():
    """Stripes of period 3 px lie above the Nyquist rate of a 4x smaller view: low-passed before
    subsampling they turn flat grey; point-sampled (PIL's bilinear transform, the old resampling) they
    alias into a strong slow pattern. White noise likewise keeps a quarter of its spread, not half."""
    stripes = np.tile(127.5 + 127.5 * np.cos(2 * np.pi * np.arange(256) / 3), (256, 1)).round().astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (256, 256)).astype(np.uint8)
    spec = sample_crop((256, 256), (0, 0, 256, 256), out_size=64, seed=0, mode="center")
    for pattern, limit in ((stripes, 0.05), (noise, 0.3)):
        image = Image.fromarray(np.stack([pattern] * 3, -1))
        view = np.asarray(apply_crop(image, spec)).astype(float)
        aliased = np.asarray(image.transform((64, 64), Image.Transform.EXTENT, data=(0, 0, 256, 256),
                                             resample=Image.Resampling.BILINEAR)).astype(float)
        assert aliased.std() > 0.45 * pattern.std()
        assert view.std() < limit * pattern.std() and abs(view.mean() - pattern.mean()) < 3


@pytest.mark.parametrize("bad", [dict(scale_range=(0.0, 1.0)), dict(scale_range=(0.5, 1.2)), dict(translate=2.0),
                                 dict(out_size=0), dict(mode="letterbox")])
def test_bad_arguments_are_rejected(bad):
    args = dict(image_size=(10, 10), box=(1, 1, 5, 5), out_size=8, seed=0) | bad
    with pytest.raises(ValueError):
        sample_crop(**args)

"""Box-constrained crops: b* is always inside R, padding is exactly zero, seeds make crops repeatable."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ChimeraPipe.crops import apply_crop, clip_box, sample_crop

EPS = 1e-6


@st.composite
def crop_cases(draw):
    width = draw(st.integers(1, 400))
    height = draw(st.integers(1, 400))
    x0 = draw(st.floats(0, width))
    x1 = draw(st.floats(0, width))
    y0 = draw(st.floats(0, height))
    y1 = draw(st.floats(0, height))
    lo = draw(st.floats(1.0, 2.0))
    hi = lo + draw(st.floats(0.0, 1.0))
    return dict(image_size=(width, height), box=(x0, y0, x1, y1), out_size=draw(st.integers(1, 96)),
                seed=draw(st.integers(0, 2**31 - 1)), scale_range=(lo, hi), translate=draw(st.floats(0, 1)),
                min_side_frac=draw(st.floats(0, 1)), flip_prob=draw(st.sampled_from([0.0, 0.5, 1.0])))


def contains(outer, inner, eps=EPS):
    return (outer[0] <= inner[0] + eps and outer[1] <= inner[1] + eps
            and inner[2] <= outer[2] + eps and inner[3] <= outer[3] + eps)


@settings(max_examples=400, deadline=None)
@given(crop_cases())
def test_box_inside_region_and_view(case):
    spec = sample_crop(**case)
    box = clip_box(case["box"], case["image_size"])
    x0, y0, x1, y1 = spec.region
    assert x1 - x0 == pytest.approx(y1 - y0)  # square: aspect ratio never distorted
    assert contains(spec.region, box, eps=1e-6 * max(case["image_size"]))
    size = case["out_size"]
    assert contains((0, 0, size, size), spec.box_in_view, eps=1e-6 * size)
    assert spec == sample_crop(**case)  # same seed, same crop


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


def test_small_image_upscaled_with_padding():
    image = Image.new("RGB", (8, 8), (10, 20, 30))
    spec = sample_crop((8, 8), (2, 2, 6, 6), out_size=64, seed=1, min_side_frac=1.5, flip_prob=0)
    view = apply_crop(image, spec)
    assert view.size == (64, 64)
    assert np.asarray(view)[0, 0].tolist() == [0, 0, 0]  # a 12 px crop of an 8 px image has padding


def test_degenerate_box_gets_a_pixel():
    assert clip_box((5, 5, 5, 5), (10, 10)) == (4.5, 4.5, 5.5, 5.5)
    assert clip_box((-3, 2, 30, 1), (10, 10)) == (0.0, 1.0, 10.0, 2.0)


def test_flip_mirrors_the_box():
    a = sample_crop((100, 100), (10, 20, 30, 40), 50, seed=3, flip_prob=0.0)
    b = sample_crop((100, 100), (10, 20, 30, 40), 50, seed=3, flip_prob=1.0)
    assert a.region == b.region
    assert b.box_in_view[0] == pytest.approx(50 - a.box_in_view[2])


@pytest.mark.parametrize("bad", [dict(scale_range=(0.5, 1.0)), dict(translate=2.0), dict(out_size=0)])
def test_bad_arguments_are_rejected(bad):
    args = dict(image_size=(10, 10), box=(1, 1, 5, 5), out_size=8, seed=0) | bad
    with pytest.raises(ValueError):
        sample_crop(**args)

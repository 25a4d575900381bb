"""The classifier's two orders of the anchors' recipe give views with the same statistics."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF
from torchvision.transforms.v2.functional import pil_to_tensor

from ChimeraPipe.classify.augment import (
    BLUR_TAPS,
    AnchorViews,
    Normalise,
    clip_train_transform,
    colour_jitter,
    gaussian_blur,
    shift_hue,
)

MEAN, STD = (0.481, 0.458, 0.408), (0.269, 0.261, 0.276)
N = 200
pytestmark = pytest.mark.slow   # hundreds of views per order: make test, not the edit loop


@pytest.fixture(scope="module")
def photo_jpeg(tmp_path_factory):
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = Image.open(handle).convert("RGB").resize((512, 384), Image.Resampling.LANCZOS)
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    photo.save(path, quality=95)
    return path


def record(monkeypatch, cls):
    """Record every parameter draw of a torchvision transform class (what both orders call)."""
    seen, original = [], cls.make_params

    def spy(self, flat_inputs):
        params = original(self, flat_inputs)
        seen.append(params)
        return params

    monkeypatch.setattr(cls, "make_params", spy)
    return seen


def views(transform, path, fast):
    torch.manual_seed(0)
    from ChimeraPipe.core.images import load_rgb

    return [transform.from_path(path) if fast else transform(load_rgb(path)) for _ in range(N)]


@pytest.mark.parametrize("fast", [False, True])
def test_both_orders_draw_the_anchors_crops_and_jitters(monkeypatch, photo_jpeg, fast):
    crops = record(monkeypatch, v2.RandomResizedCrop)
    jitters = record(monkeypatch, v2.ColorJitter)
    transform = clip_train_transform(224, "anchor", crop_first=fast)
    out = views(transform, photo_jpeg, fast)
    assert all(v.shape == (3, 224, 224) and v.dtype == torch.uint8 for v in out)   # Normalise runs in the step
    area = np.array([c["width"] * c["height"] for c in crops]) / (512 * 384)
    ratio = np.array([c["width"] / c["height"] for c in crops])
    assert len(crops) == N and area.min() >= 0.24 and area.max() <= 1.0 and 0.74 <= ratio.min() <= ratio.max() <= 1.34
    assert 0.42 < np.median(area) < 0.75      # U(0.25, 1) in area, less the draws a 4:3 image cannot hold
    assert 0.7 * N <= len(jitters) <= 0.9 * N                                   # applied with p 0.8
    brightness = np.array([j["brightness_factor"] for j in jitters])
    hue = np.array([j["hue_factor"] for j in jitters])
    assert brightness.min() >= 0.6 and brightness.max() <= 1.4 and hue.min() >= -0.1 and hue.max() <= 0.1
    grey = np.mean([bool((v[0].int() - v[1].int()).abs().max() <= 2) for v in out])
    assert 0.1 <= grey <= 0.3                                                    # grey with p 0.2


def test_the_two_orders_give_views_of_the_same_pixel_statistics(photo_jpeg):
    normalise = Normalise(MEAN, STD)
    fast = normalise(torch.stack(views(AnchorViews(224), photo_jpeg, True)))
    reference = normalise(torch.stack(views(clip_train_transform(224, "anchor", crop_first=False), photo_jpeg, False)))
    for stat in (lambda x: x.mean((1, 2, 3)), lambda x: x.std((1, 2, 3))):   # per view: brightness and contrast
        a, b = stat(fast).numpy(), stat(reference).numpy()
        pooled = np.sqrt((a.var() + b.var()) / 2)
        assert abs(a.mean() - b.mean()) < 0.25 * pooled                          # means within a quarter sd
        assert 0.75 < a.std() / b.std() < 1.33


def test_a_jpeg_is_decoded_no_larger_than_its_crop_needs(photo_jpeg, tmp_path, monkeypatch):
    big = tmp_path / "big.jpg"
    Image.open(photo_jpeg).resize((1024, 768)).save(big, quality=95)
    transform = AnchorViews(224)
    crops, original = [], AnchorViews.resample

    def spy(self, crop):
        crops.append(tuple(crop.shape[1:]))
        return original(self, crop)

    monkeypatch.setattr(AnchorViews, "resample", spy)
    for crop, resampled in (((960, 768), (384, 480)),    # half scale still gives the crop 480 x 384 >= 224 px
                            ((440, 400), (400, 440))):   # a smaller crop needs every pixel (200 < 224 at half)
        monkeypatch.setattr(transform.crop, "make_params",
                            lambda _, w=crop[0], h=crop[1]: dict(top=0, left=0, height=h, width=w))
        crops.clear()
        assert transform.view(big).size == (224, 224) and crops == [resampled]
    png = tmp_path / "big.png"
    Image.open(big).save(png)
    monkeypatch.setattr(transform.crop, "make_params", lambda _: dict(top=0, left=0, height=768, width=960))
    crops.clear()
    transform.view(png)
    assert crops == [(768, 960)]      # no DCT scaling for a PNG


@pytest.fixture(scope="module")
def small_views(photo_jpeg):
    photo = Image.open(photo_jpeg).convert("RGB")
    return [photo.crop((x, y, x + 224, y + 224)) for x, y in ((0, 0), (140, 80), (288, 160))]


def test_the_colour_jitter_is_torchvisions_within_rounding(small_views):
    jitter = v2.ColorJitter(0.4, 0.4, 0.2, 0.1)
    torch.manual_seed(0)
    for view in small_views * 4:
        params = jitter.make_params([view])
        ours = pil_to_tensor(colour_jitter(view, params)).int()
        theirs = pil_to_tensor(jitter.transform(view, params)).int()
        diff = (ours - theirs).abs().float()
        # one level per operation (below), compounding where a level moves a colour's hue bucket: rare, small
        assert diff.mean() < 0.15 and (diff > 2).float().mean() < 0.01 and diff.max() <= 10
    view = small_views[1]
    for factor in (-0.5, -0.1, -0.013, 0.0, 0.07, 0.5):
        shifted = torch.from_numpy(shift_hue(np.asarray(view), factor)).permute(2, 0, 1).int()
        assert (shifted - pil_to_tensor(TF.adjust_hue(view, factor)).int()).abs().max() <= 1
    for name, op, factor in (("brightness_factor", TF.adjust_brightness, 1.37), ("contrast_factor", TF.adjust_contrast,
                             0.61), ("saturation_factor", TF.adjust_saturation, 1.19)):
        params = dict(fn_idx=torch.arange(4), brightness_factor=None, contrast_factor=None, saturation_factor=None,
                      hue_factor=None) | {name: factor}
        ours = pil_to_tensor(colour_jitter(view, params)).int()
        assert (ours - pil_to_tensor(op(view, factor)).int()).abs().max() <= 1, name
    with pytest.raises(ValueError, match="hue"):
        shift_hue(np.asarray(view), 0.6)


def test_opencvs_hsv_to_rgb_is_pils_for_every_colour():
    """shift_hue's claim: of the 16.7 M HSV triples, at most ~100 convert one level apart, none further."""
    import cv2

    levels = np.arange(256, dtype=np.uint8)
    hsv = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(4096, 4096, 3)
    pil = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), dtype=np.int16)
    diff = np.abs(pil - cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).sum() <= 100


@pytest.mark.parametrize("sigma", [0.1, 0.7, 2.0])
def test_the_blur_is_the_anchors_nine_tap_kernel_within_one_level(small_views, sigma):
    for view in small_views:
        ours = pil_to_tensor(gaussian_blur(view, BLUR_TAPS, sigma)).int()
        theirs = TF.gaussian_blur(pil_to_tensor(view), [9, 9], [sigma, sigma]).int()
        assert (ours - theirs).abs().max() <= 1


def test_the_crop_is_resampled_by_torchs_bicubic_as_random_resized_crop_does(small_views):
    pixels = pil_to_tensor(small_views[0].resize((400, 300)))
    view = AnchorViews(224).resample(pixels)
    expected = TF.resize(pixels, [224, 224], interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
    assert view.size == (224, 224) and torch.equal(pil_to_tensor(view), expected)


def test_normalise_in_the_step_equals_normalising_each_view():
    views = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    each = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    assert torch.allclose(Normalise(MEAN, STD)(views), torch.stack([each(v) for v in views]), atol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        Normalise(MEAN, STD)(views.float())

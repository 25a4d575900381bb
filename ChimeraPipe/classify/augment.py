"""The classifier's train transforms, by backend and recipe name (classify.recipes lists the names).

The anchors' recipe (`anchor`) comes in two orders. The reference order is theirs: RandAugment on the
whole decoded image, then the random resized crop to 224, then flip, colour jitter, grey, blur, solarize.
The fast order (`AnchorViews`, the default) draws the random resized crop first - its parameters exactly as
RandomResizedCrop draws them - decodes a JPEG at the smallest DCT scale that still gives the crop its output
resolution (OpenCV's one-call decoder at full scale), resamples the crop to 224 by torch's antialiased bicubic on
uint8 (the kernel RandomResizedCrop applies to tensors), and runs RandAugment and the rest on the 224 px view:
RandAugment, brightness, contrast and saturation by torchvision's PIL kernels, the hue shift on PIL's HSV with
OpenCV's conversion back (`shift_hue`), the blur as the anchors' 9-tap Gaussian by OpenCV (`gaussian_blur`).
What differs: RandAugment sees the view instead of the whole image, so its rotations, shears and translations
turn the view about the view's centre (their black fill lands in the view's corners) and its contrast, equalize
and autocontrast read the view's statistics. The operations, their probabilities and their ranges are the
anchors'; every kernel swapped for a faster one is within one 8-bit level of torchvision's (tests/test_augment.py;
the colour jitter's four in a row within rounding, `colour_jitter`).

The CLIP recipes hand uint8 views to the DataLoader (a quarter of the bytes a float view has, and no float
arithmetic in the workers); `Normalise` turns a batch of them into the model's normalised floats in the
training step, on the model's device.
"""
from __future__ import annotations

import io
import math

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional import pil_to_tensor

from ..core.images import decode_jpeg_rgb, libjpeg_decodable, read_image_bytes, to_rgb
from .recipes import AUGMENTS

cv2.setNumThreads(1)      # its kernels run inside DataLoader workers, one core each (as torch's do there)


def clip_train_transform(size: int, augment: str, crop_first: bool = True):
    """PIL image (or, `from_path`, a path) -> uint8 view [3, size, size] for the CLIP backend (`Normalise` makes
    it the model's input); the anchors' recipe crop first (AnchorViews) unless `crop_first` is false."""
    if augment == "anchor" and crop_first:
        return AnchorViews(size)
    if augment == "anchor":
        steps = [v2.RandAugment(num_ops=2, magnitude=9),
                 v2.RandomResizedCrop(size, scale=(0.25, 1.0), interpolation=v2.InterpolationMode.BICUBIC),
                 v2.RandomHorizontalFlip(), v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
                 v2.RandomGrayscale(p=0.2), v2.RandomApply([v2.GaussianBlur(kernel_size=9)], p=0.2),
                 v2.RandomSolarize(threshold=128, p=0.2)]
    elif augment == "simple":
        steps = [v2.RandomResizedCrop(size, scale=(0.5, 1.0), interpolation=v2.InterpolationMode.BICUBIC),
                 v2.RandomHorizontalFlip()]
    else:
        raise ValueError(f"augment {augment!r} is not a CLIP recipe; expected one of {AUGMENTS['clip']}")
    return v2.Compose([v2.PILToTensor(), *steps])


class Normalise:
    """A batch of uint8 views [B, 3, H, W] -> float32 normalised by the model's mean and std, on the batch's
    device: (x / 255 - mean) / std, as a float transform at the end of each view's pipeline computes it (within
    float rounding), done once per batch in the step instead, as one multiply and one add in place (a seventh
    of the time of the four-step form on a CPU)."""

    def __init__(self, mean, std):
        mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.scale, self.shift = 1 / (255 * std), -mean / std

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dtype != torch.uint8:
            raise TypeError(f"Normalise takes uint8 views, got {pixels.dtype}")
        return pixels.float().mul_(self.scale.to(pixels.device)).add_(self.shift.to(pixels.device))


def cnn_train_transform(size: int, mean, std, augment: str) -> v2.Compose:
    """PIL image -> normalised tensor at size x size for the CNN backend."""
    if augment not in AUGMENTS["cnn"]:
        raise ValueError(f"augment {augment!r} is not a CNN recipe; expected one of {AUGMENTS['cnn']}")
    steps = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))] if augment == "affine" else []
    return v2.Compose([v2.PILToTensor(), v2.Resize((size, size), antialias=True), *steps,
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


class AnchorViews:
    """The anchors' recipe, crop first (see the module's docstring): `from_path(path)` decodes and augments one
    image (a file or a shard reference) into a uint8 [3, size, size] view. Uses the global torch RNG, as
    torchvision's transforms do (a DataLoader worker's own stream)."""

    def __init__(self, size: int):
        self.size = size
        self.crop = v2.RandomResizedCrop(size, scale=(0.25, 1.0))             # its parameters only
        self.rand_augment = v2.RandAugment(num_ops=2, magnitude=9)
        self.jitter = v2.ColorJitter(0.4, 0.4, 0.2, 0.1)

    def view(self, path) -> Image.Image:
        """The 224 px crop of the image, decoded no larger than the crop needs."""
        data = read_image_bytes(path)
        with Image.open(io.BytesIO(data)) as image:
            jpeg = libjpeg_decodable(image, data)        # OpenCV decodes it whole, or PIL at DCT scale (below)
            if not jpeg:                                 # PIL decodes it (an EXIF-turned photo: whole, then turned)
                image.load()
                image = ImageOps.exif_transpose(image)
            params = self.crop.make_params([image])       # on the full size, as RandomResizedCrop draws them
            width, height = image.size
            reduce = 1
            while reduce < 8 and min(params["width"], params["height"]) / (2 * reduce) >= self.size:
                reduce *= 2
            if jpeg and reduce == 1:
                pixels = torch.from_numpy(decode_jpeg_rgb(data)).permute(2, 0, 1)
            else:
                if jpeg:                                 # DCT scaling: the JPEG decoded at 1/reduce of its size
                    image.draft("RGB", (math.ceil(width / reduce), math.ceil(height / reduce)))
                pixels = pil_to_tensor(to_rgb(image))
        sx, sy = pixels.shape[-1] / width, pixels.shape[-2] / height
        top, left = round(params["top"] * sy), round(params["left"] * sx)
        crop_h = max(1, round((params["top"] + params["height"]) * sy) - top)
        crop_w = max(1, round((params["left"] + params["width"]) * sx) - left)
        return self.resample(pixels[:, top:top + crop_h, left:left + crop_w])

    def resample(self, crop: torch.Tensor) -> Image.Image:
        """A uint8 crop [3, h, w] -> the size x size view, by torch's antialiased bicubic on uint8 (the kernel
        RandomResizedCrop applies to tensors; a fifth of the time PIL's bicubic takes)."""
        view = F.resize(crop, [self.size, self.size], interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
        return Image.fromarray(view.permute(1, 2, 0).contiguous().numpy())     # (torch copies faster than PIL)

    def augment(self, view: Image.Image) -> Image.Image:
        """RandAugment(2, 9), flip, ColorJitter (p 0.8), grey (p 0.2), blur (p 0.2), solarize (p 0.2) of a view."""
        view = self.rand_augment(view)
        if torch.rand(()) < 0.5:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if torch.rand(()) < 0.8:
            view = colour_jitter(view, self.jitter.make_params([view]))
        if torch.rand(()) < 0.2:
            view = view.convert("L").convert("RGB")
        if torch.rand(()) < 0.2:
            view = gaussian_blur(view, BLUR_TAPS, float(torch.empty(()).uniform_(*BLUR_SIGMA)))
        if torch.rand(()) < 0.2:
            view = ImageOps.solarize(view, 128)
        return view

    def from_path(self, path) -> torch.Tensor:
        return pil_to_tensor(self.augment(self.view(path)))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """An image already decoded: the same recipe, cropped from it."""
        params = self.crop.make_params([image])
        crop = pil_to_tensor(to_rgb(image))[:, params["top"]:params["top"] + params["height"],
                                            params["left"]:params["left"] + params["width"]]
        return pil_to_tensor(self.augment(self.resample(crop)))


BLUR_TAPS, BLUR_SIGMA = 9, (0.1, 2.0)       # the anchors' GaussianBlur(kernel_size=9), sigma drawn as torchvision does


def colour_jitter(view: Image.Image, params: dict) -> Image.Image:
    """torchvision's ColorJitter with parameters `params` (its make_params: the order and the factors) on an RGB
    view, by OpenCV on the uint8 pixels: torchvision's PIL arithmetic (a blend with black, with the grey level's
    rounded mean, with the grey image; the hue in PIL's HSV, `shift_hue`), each operation within one 8-bit level
    of it, in a quarter of its time. Chained, a level can move a colour's hue and so grow: over the four, the
    mean difference is below 0.1 level, and about one value in a thousand differs by more than two."""
    pixels = np.asarray(view)
    for index in params["fn_idx"].tolist():
        if index == 0 and params["brightness_factor"] is not None:
            pixels = blend(pixels, params["brightness_factor"], None, 0.0)
        elif index == 1 and params["contrast_factor"] is not None:
            mean = int(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).mean() + 0.5)
            pixels = blend(pixels, params["contrast_factor"], None, float(mean))
        elif index == 2 and params["saturation_factor"] is not None:
            grey = cv2.cvtColor(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            pixels = blend(pixels, params["saturation_factor"], grey, 0.0)
        elif index == 3 and params["hue_factor"] is not None:
            pixels = shift_hue(pixels, params["hue_factor"])
    return Image.fromarray(pixels)


def blend(pixels: np.ndarray, factor: float, other: np.ndarray | None, level: float) -> np.ndarray:
    """factor * pixels + (1 - factor) * (other, or the constant `level`), clipped to uint8 and truncated, as PIL's
    Image.blend does (ImageEnhance's, and so torchvision's brightness, contrast and saturation): OpenCV rounds,
    so half a level comes off first."""
    if other is None:
        return cv2.addWeighted(pixels, factor, pixels, 0.0, (1 - factor) * level - 0.5)
    return cv2.addWeighted(pixels, factor, other, 1 - factor, -0.5)


def shift_hue(pixels: np.ndarray, factor: float) -> np.ndarray:
    """torchvision's hue adjustment of uint8 RGB pixels [H, W, 3] (PIL's HSV, hue in 0-255, shifted by
    int(factor * 255) with wrap-around), its conversion back to RGB by OpenCV: the same colours as PIL's but for
    92 of the 16.7 M HSV triples, which land one level apart (tests/test_augment.py), in a tenth of the time."""
    if not -0.5 <= factor <= 0.5:
        raise ValueError(f"hue factor {factor} is not in [-0.5, 0.5]")
    hsv = np.array(Image.fromarray(pixels).convert("HSV"))
    hsv[..., 0] += np.uint8(int(factor * 255) % 256)            # uint8 arithmetic wraps: the hue is a circle
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def gaussian_blur(view: Image.Image, taps: int, sigma: float) -> Image.Image:
    """A `taps` x `taps` Gaussian blur of standard deviation `sigma` with mirrored borders: torchvision's
    gaussian_blur kernel and padding, by OpenCV's fixed-point filter (within one level of torchvision's)."""
    return Image.fromarray(cv2.GaussianBlur(np.asarray(view), (taps, taps), sigma, borderType=cv2.BORDER_REFLECT_101))


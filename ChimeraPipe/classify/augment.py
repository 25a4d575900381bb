"""The classifier's train transforms, by backend and recipe name (classify.recipes lists the names).

The anchors' recipe (`anchor`) comes in two orders. The reference order is theirs: RandAugment on the
whole decoded image, then the random resized crop to 224, then flip, colour jitter, grey, blur, solarize.
The fast order (`AnchorViews`, the default) draws the random resized crop first - its parameters exactly as
RandomResizedCrop draws them - decodes a JPEG at the smallest DCT scale that still gives the crop its output
resolution, resamples the crop to 224, and runs RandAugment and the rest on the 224 px view with PIL's
kernels. What differs: RandAugment sees the view instead of the whole image, so its rotations, shears and
translations turn the view about the view's centre (their black fill lands in the view's corners) and its
contrast, equalize and autocontrast read the view's statistics; the blur is PIL's Gaussian (untruncated)
instead of a 9-tap kernel. The operations, their probabilities and their ranges are the anchors'.

The CLIP recipes hand uint8 views to the DataLoader (a quarter of the bytes a float view has, and no float
arithmetic in the workers); `Normalise` turns a batch of them into the model's normalised floats in the
training step, on the model's device.
"""
from __future__ import annotations

import math

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import v2
from torchvision.transforms.v2.functional import pil_to_tensor

from ..core.images import open_image, to_rgb
from .recipes import AUGMENTS


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
    """A batch of uint8 views [B, 3, H, W] -> float32 in [0, 1], normalised by the model's mean and std, on the
    batch's device: the same arithmetic, value for value, as a float transform at the end of each view's
    pipeline, done once per batch in the step instead."""

    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dtype != torch.uint8:
            raise TypeError(f"Normalise takes uint8 views, got {pixels.dtype}")
        mean, std = self.mean.to(pixels.device), self.std.to(pixels.device)
        return (pixels.float() / 255 - mean) / std


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
        with Image.open(open_image(path)) as image:
            if image.getexif().get(0x0112, 1) != 1:     # an EXIF-rotated photo: decode whole, then crop
                image.load()
                image = ImageOps.exif_transpose(image)
            params = self.crop.make_params([image])       # on the full size, as RandomResizedCrop draws them
            width, height = image.size
            reduce = 1
            while reduce < 8 and min(params["width"], params["height"]) / (2 * reduce) >= self.size:
                reduce *= 2
            if reduce > 1 and image.format == "JPEG":
                image.draft("RGB", (math.ceil(width / reduce), math.ceil(height / reduce)))
            image = to_rgb(image)
            sx, sy = image.width / width, image.height / height
            box = (params["left"] * sx, params["top"] * sy, (params["left"] + params["width"]) * sx,
                   (params["top"] + params["height"]) * sy)
            return image.resize((self.size, self.size), Image.Resampling.BICUBIC, box=box)

    def augment(self, view: Image.Image) -> Image.Image:
        """RandAugment(2, 9), flip, ColorJitter (p 0.8), grey (p 0.2), blur (p 0.2), solarize (p 0.2) of a view."""
        view = self.rand_augment(view)
        if torch.rand(()) < 0.5:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if torch.rand(()) < 0.8:
            view = self.jitter(view)
        if torch.rand(()) < 0.2:
            view = view.convert("L").convert("RGB")
        if torch.rand(()) < 0.2:
            view = view.filter(ImageFilter.GaussianBlur(float(torch.empty(()).uniform_(0.1, 2.0))))
        if torch.rand(()) < 0.2:
            view = ImageOps.solarize(view, 128)
        return view

    def from_path(self, path) -> torch.Tensor:
        return pil_to_tensor(self.augment(self.view(path)))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """An image already decoded: the same recipe, cropped from it."""
        params = self.crop.make_params([image])
        view = image.resize((self.size, self.size), Image.Resampling.BICUBIC,
                            box=(params["left"], params["top"], params["left"] + params["width"],
                                 params["top"] + params["height"]))
        return pil_to_tensor(self.augment(view))

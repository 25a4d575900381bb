"""The classifier's train transforms, by backend and recipe name (classify.recipes lists the names)."""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from .recipes import AUGMENTS


def clip_train_transform(size: int, mean, std, augment: str) -> v2.Compose:
    """PIL image -> normalised tensor at size x size for the CLIP backend."""
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
    return v2.Compose([v2.PILToTensor(), *steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def cnn_train_transform(size: int, mean, std, augment: str) -> v2.Compose:
    """PIL image -> normalised tensor at size x size for the CNN backend."""
    if augment not in AUGMENTS["cnn"]:
        raise ValueError(f"augment {augment!r} is not a CNN recipe; expected one of {AUGMENTS['cnn']}")
    steps = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))] if augment == "affine" else []
    return v2.Compose([v2.PILToTensor(), v2.Resize((size, size), antialias=True), *steps,
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])

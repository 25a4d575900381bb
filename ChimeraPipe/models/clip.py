"""open_clip CLIP: one loader (a local folder or 'ARCH:pretrained'), and one helper each for normalised text
features and normalised image features, used by the classifier, the CLIP filter and the gap metrics."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F


class Clip(NamedTuple):
    model: torch.nn.Module
    preprocess: object   # the eval transform open_clip's preprocess config defines (resize, crop, normalise)
    tokenizer: object


def load_clip(location: str) -> Clip:
    """(model, eval transform, tokenizer) from an open_clip local dir or 'ARCH:pretrained_tag'."""
    import open_clip

    if Path(location).is_dir():
        name, pretrained = f"local-dir:{location}", None
    else:
        name, _, pretrained = str(location).partition(":")
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None)
    return Clip(model, preprocess, open_clip.get_tokenizer(name))


def text_features(model, tokenizer, prompts: list[str], device: str) -> torch.Tensor:
    """L2-normalised text embeddings [len(prompts), dim] (with gradients when the text tower trains)."""
    return F.normalize(model.encode_text(tokenizer(prompts).to(device)), dim=-1)


def image_features(model, pixels: torch.Tensor) -> torch.Tensor:
    """L2-normalised image embeddings of preprocessed pixels [N, 3, H, W]."""
    return F.normalize(model.encode_image(pixels), dim=-1)


def preprocess_size(preprocess) -> int:
    """The input side of the CLIP the transform feeds."""
    for t in preprocess.transforms:
        if hasattr(t, "size"):
            size = t.size
            return size if isinstance(size, int) else size[0]
    raise ValueError("cannot tell the CLIP input size from its transform")


def uint8_preprocess(preprocess):
    """The CLIP's eval transform ending in uint8 views [3, H, W], its resize and centre crop done on the uint8
    tensor by torch's antialiased kernels: open_clip's steps with their parameters, the colour step (to RGB) first,
    then the tensor, then the resize (a fifth of PIL's time; within two 8-bit levels of PIL's bicubic, equal on
    all but ~0.3 % of values) and the crop. The float scaling and the normalisation (`preprocess_stats`) are left
    to the step, which does them on a whole batch (classify.augment.Normalise: the same values)."""
    from torchvision import transforms
    from torchvision.transforms import v2

    steps = list(preprocess.transforms)
    to_tensor = [i for i, t in enumerate(steps) if isinstance(t, transforms.ToTensor)]   # open_clip's MaybeToTensor
    if len(to_tensor) != 1 or to_tensor[0] != len(steps) - 2 or not isinstance(steps[-1], transforms.Normalize):
        raise ValueError(f"cannot split the CLIP's transform {[type(t).__name__ for t in steps]}: "
                         "expected its steps to end with ToTensor, Normalize")
    colour, geometry = [], []
    for step in steps[:-2]:
        if isinstance(step, transforms.Resize):
            geometry.append(v2.Resize(step.size, interpolation=step.interpolation, max_size=step.max_size,
                                      antialias=True))
        elif isinstance(step, transforms.CenterCrop):
            geometry.append(v2.CenterCrop(step.size))
        elif type(step).__name__ == "MaybeConvertMode" or getattr(step, "__name__", "") == "_convert_to_rgb":
            colour.append(step)               # open_clip's conversion to RGB, on the PIL image
        else:
            raise ValueError(f"the CLIP's transform has a {type(step).__name__} step, which uint8_preprocess "
                             "cannot map to uint8 tensors")
    return v2.Compose([*colour, v2.PILToTensor(), *geometry])


def preprocess_stats(preprocess) -> tuple:
    """(mean, std) of the CLIP's input normalisation."""
    for t in preprocess.transforms:
        if hasattr(t, "mean") and hasattr(t, "std"):
            return tuple(t.mean), tuple(t.std)
    raise ValueError("cannot find the CLIP normalisation in its transform")

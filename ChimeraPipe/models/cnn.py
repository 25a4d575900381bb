"""A small CNN trained from scratch: the classifier backend where no pretrained CLIP exists (the laptop-scale
experiment), the judge whose features the gap metrics can use there, and the source-domain check of the
pretrained base. Saved as safetensors (all weights and BatchNorm buffers) + JSON."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from ..core.io import load_tensors

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)   # uint8 -> [-1, 1]: the same range as core.images.to_signed_unit


class SmallCNN(nn.Module):
    """Three conv stages (32, 64, 128 channels; BatchNorm, ReLU, 2x2 max-pool), global average pooling to a
    128-d feature, dropout and a linear head."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()

        def stage(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.MaxPool2d(2))

        self.body = nn.Sequential(stage(3, width), stage(width, 2 * width), stage(2 * width, 4 * width))
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * width, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def eval_transform(size: int) -> v2.Compose:
    """PIL image -> normalised tensor at size x size (the CNN's test-time input)."""
    return v2.Compose([v2.PILToTensor(), v2.Resize((size, size), antialias=True),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


def load_cnn(path: str | Path, device: str = "cpu") -> tuple[SmallCNN, dict]:
    """A saved CNN (weights + its JSON: classes, image_size) in eval mode."""
    meta = json.loads(Path(path).with_suffix(".json").read_text())
    model = SmallCNN(len(meta["classes"]))
    model.load_state_dict(load_tensors(path))
    return model.to(device).eval(), meta


@torch.no_grad()
def cnn_outputs(model: SmallCNN, pixels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(L2-normalised 128-d features, predicted labels) of a batch of normalised pixels."""
    f = model.features(pixels)
    return F.normalize(f, dim=-1).cpu().numpy(), model.head(f).argmax(-1).cpu().numpy()

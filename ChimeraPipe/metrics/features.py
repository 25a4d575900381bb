"""Image feature extractors for the gap metrics, by name (config `metrics.features`).

An extractor turns image paths into L2-normalised embeddings; `clip` (the configured CLIP's image tower,
frozen, no classifier LoRA) is the default, `judge` a CNN trained on the dataset's real training images
(whose predictions, kept in `predicted`, also give each image's class correctness). Another backbone
plugs in by adding a class with an `embed_images` method and a `model_kind` to EXTRACTORS: the metrics
never see which one made the numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class ClipFeatures:
    """The configured CLIP: image embeddings, and text embeddings for the CLIP score."""

    model_kind = "clip"   # the workflow model the extractor loads

    def __init__(self, models: dict, device: str = "cpu", batch_size: int = 64):
        from ..classify import load_clip
        from ..stages import model_location

        self.location = model_location(models, "clip")
        self.model, self.preprocess, self.tokenizer = load_clip(self.location)
        self.model.to(device).eval()
        self.device, self.batch_size = device, batch_size

    def embed_images(self, paths: list[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        from ..images import load_rgb

        out = []
        with torch.no_grad():
            for start in range(0, len(paths), self.batch_size):
                pixels = torch.stack([self.preprocess(load_rgb(p)) for p in paths[start:start + self.batch_size]])
                out.append(F.normalize(self.model.encode_image(pixels.to(self.device)).float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    def embed_texts(self, prompts: list[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            text = self.model.encode_text(self.tokenizer(prompts).to(self.device)).float()
        return F.normalize(text, dim=-1).cpu().numpy()


class JudgeFeatures:
    """The judge: a SmallCNN trained on every real training image of the dataset (rule train_judge). Its
    128-d features are the space; its predictions say whether each image shows its class."""

    model_kind = "judge"

    def __init__(self, models: dict, device: str = "cpu", batch_size: int = 256):
        from ..cnn import load_cnn

        self.model, self.meta = load_cnn(Path(models["judge"]) / "judge.safetensors", device)
        self.device, self.batch_size = device, batch_size
        self.predicted: list[str] | None = None

    def embed_images(self, paths: list[str]) -> np.ndarray:
        from ..cnn import cnn_outputs

        feats, labels = cnn_outputs(self.model, paths, self.meta["image_size"], self.device, self.batch_size)
        self.predicted = [self.meta["classes"][i] for i in labels]
        return feats


EXTRACTORS: dict[str, type] = {"clip": ClipFeatures, "judge": JudgeFeatures}


def feature_extractor(name: str, models: dict, device: str = "cpu", batch_size: int = 64):
    if name not in EXTRACTORS:
        raise ValueError(f"unknown feature extractor {name!r}; known: {sorted(EXTRACTORS)}")
    return EXTRACTORS[name](models, device, batch_size)

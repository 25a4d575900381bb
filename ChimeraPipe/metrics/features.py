"""Image feature extractors for the gap metrics, by name (config `metrics.features`).

An extractor turns image paths into L2-normalised embeddings; `clip` (the configured CLIP's image tower,
frozen, no classifier LoRA) is the default, `judge` a CNN trained on the dataset's real training images
(whose predictions, kept in `predicted`, also give each image's class correctness). Another backbone
plugs in by adding a class with an `embed_images` method and a `model_kind` to EXTRACTORS: the metrics
never see which one made the numbers. Torch is imported when an extractor is built, not with this module
(the Snakefile reads EXTRACTORS while it plans).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class ClipFeatures:
    """The configured CLIP: image embeddings, and text embeddings for the CLIP score."""

    model_kind = "clip"   # the workflow model the extractor loads

    def __init__(self, location: str, device: str = "cpu", batch_size: int = 64, num_workers: int = 0):
        from ..classify.augment import Normalise
        from ..models.clip import load_clip, preprocess_stats, uint8_preprocess

        self.model, preprocess, self.tokenizer = load_clip(location)
        self.views, self.normalise = uint8_preprocess(preprocess), Normalise(*preprocess_stats(preprocess))
        self.model.to(device).eval()
        self.device, self.batch_size, self.num_workers = device, batch_size, num_workers

    def embed_images(self, paths: list[str]) -> np.ndarray:
        import torch

        from ..core.loader import image_batches
        from ..models.clip import image_features

        out = []
        with torch.no_grad():
            for pixels in image_batches(paths, self.views, self.batch_size, self.num_workers):   # uint8 views
                out.append(image_features(self.model, self.normalise(pixels.to(self.device))).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    def embed_texts(self, prompts: list[str]) -> np.ndarray:
        import torch

        from ..models.clip import text_features

        with torch.no_grad():
            return text_features(self.model, self.tokenizer, prompts, self.device).float().cpu().numpy()


class JudgeFeatures:
    """The judge: a CNN trained on every real training image of the dataset (rule train_judge), at
    `location`/judge.safetensors. Its 128-d features are the space; its predictions say whether each image
    shows its class."""

    model_kind = "judge"

    def __init__(self, location: str, device: str = "cpu", batch_size: int = 256, num_workers: int = 0):
        from ..models.cnn import load_cnn

        self.model, self.meta = load_cnn(Path(location) / "judge.safetensors", device)
        self.device, self.batch_size, self.num_workers = device, batch_size, num_workers
        self.predicted: list[str] | None = None

    def embed_images(self, paths: list[str]) -> np.ndarray:
        from ..core.loader import image_batches
        from ..models.cnn import cnn_outputs, eval_transform

        feats, labels = [], []
        for pixels in image_batches(paths, eval_transform(self.meta["image_size"]), self.batch_size,
                                    self.num_workers):
            f, y = cnn_outputs(self.model, pixels.to(self.device))
            feats.append(f)
            labels.append(y)
        self.predicted = [self.meta["classes"][i] for i in np.concatenate(labels)] if labels else []
        return np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)


EXTRACTORS: dict[str, type] = {"clip": ClipFeatures, "judge": JudgeFeatures}


def feature_extractor(name: str, location: str, device: str = "cpu", batch_size: int = 64, num_workers: int = 0):
    """The extractor `name`, loading its model from `location` (a CLIP, or the judge's folder)."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown feature extractor {name!r}; known: {sorted(EXTRACTORS)}")
    return EXTRACTORS[name](location, device, batch_size, num_workers)

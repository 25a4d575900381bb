"""CLIP filtering of generated images (He et al., ICLR 2023): an image is kept only if zero-shot CLIP,
given the prompts of all the dataset's classes, labels it as the class it was generated for."""
from __future__ import annotations

import math

import torch

from ..models.clip import image_features, load_clip, text_features


def max_candidates(count: int, max_factor: float) -> int:
    """Candidates the filter may make for `count` kept images: at most max_factor x count."""
    return max(count, math.ceil(max_factor * count))


class ClipFilter:
    """Zero-shot CLIP over `prompts` (one per class, in label order), loaded once and reused."""

    def __init__(self, clip_path: str, prompts: list[str], device: str = "cpu", max_factor: float = 4.0,
                 batch_size: int = 32):
        if len(prompts) < 2:
            raise ValueError("the CLIP filter needs the prompts of at least two classes")
        if max_factor < 1:
            raise ValueError(f"max_factor must be at least 1, got {max_factor}")
        self.clip_path, self.prompts, self.device = str(clip_path), list(prompts), device
        self.max_factor, self.batch_size = float(max_factor), batch_size
        self.model, self.preprocess, tokenizer = load_clip(self.clip_path)
        self.model.to(device).eval()
        with torch.no_grad():
            self.text = text_features(self.model, tokenizer, self.prompts, device)

    def fingerprint(self) -> dict:
        """What decides which images pass: part of the generation's settings stamp."""
        return {"clip": self.clip_path, "prompts": self.prompts, "max_factor": self.max_factor}

    def max_candidates(self, count: int) -> int:
        return max_candidates(count, self.max_factor)

    @torch.no_grad()
    def judge(self, images: list, class_index: int) -> tuple[list[int], list[float]]:
        """(zero-shot label, probability of `class_index`) per image (PIL images, still in memory)."""
        labels, scores = [], []
        for start in range(0, len(images), self.batch_size):
            pixels = torch.stack([self.preprocess(im) for im in images[start:start + self.batch_size]])
            features = image_features(self.model, pixels.to(self.device))
            probs = (self.model.logit_scale.exp() * features @ self.text.T).softmax(-1)
            labels += probs.argmax(-1).tolist()
            scores += probs[:, class_index].tolist()
        return labels, scores

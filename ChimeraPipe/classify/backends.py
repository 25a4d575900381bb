"""The two classifier backends behind one interface, so one loop trains both and one function evaluates both.

A backend holds its model and says: which parameters train (`parameters`), which tensors make up its state
(`state`: restored in place on resume, written as the classifier), its transforms, what a batch of its
views (either transform's) becomes on the model's device (`inputs`), and its logits."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..core.io import load_tensors
from ..lora.layer import load_lora_state_dict, lora_state_dict
from ..models.clip import (
    image_features,
    load_clip,
    preprocess_size,
    preprocess_stats,
    text_features,
    uint8_preprocess,
)
from ..models.cnn import MEAN, STD, SmallCNN, eval_transform
from .augment import Normalise, clip_train_transform, cnn_train_transform
from .clip_lora import inject_clip_lora


class ClipBackend:
    """LoRA on both towers of a pretrained CLIP; the head is the class prompts' text features, re-encoded
    through the text LoRA every step (a zero-shot head that trains); logits = logit_scale.exp() * cosine."""

    name = "clip"

    def __init__(self, clip_location: str, prompts: list[str], cfg, device: str = "cpu"):
        self.location, self.prompts, self.device = str(clip_location), list(prompts), device
        self.model, preprocess, self.tokenizer = load_clip(self.location)
        inject_clip_lora(self.model, cfg.rank, cfg.lora_alpha, cfg.dropout, cfg.lora_init)
        self.model.to(device)
        self.logit_scale = self.model.logit_scale.exp().detach()
        self.train_transform = clip_train_transform(preprocess_size(preprocess), cfg.augment, cfg.crop_first)
        self.eval_transform = uint8_preprocess(preprocess)        # open_clip's, ending in uint8 views
        self.inputs = Normalise(*preprocess_stats(preprocess))    # uint8 views -> the model's normalised input
        self._text = None

    @property
    def num_classes(self) -> int:
        return len(self.prompts)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def state(self) -> dict[str, torch.Tensor]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def train(self) -> None:
        self.model.train()
        self._text = None

    def eval(self) -> None:
        self.model.eval()
        with torch.no_grad():
            self._text = text_features(self.model, self.tokenizer, self.prompts, self.device)

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        text = self._text if self._text is not None else text_features(self.model, self.tokenizer, self.prompts,
                                                                       self.device)
        return self.logit_scale * image_features(self.model, pixels) @ text.T

    def describe(self) -> dict:
        return {"backend": self.name, "clip": self.location, "prompts": self.prompts}

    def saved_tensors(self) -> dict[str, torch.Tensor]:
        return lora_state_dict(self.model)

    def load_saved(self, tensors: dict[str, torch.Tensor]) -> None:
        load_lora_state_dict(self.model, tensors)


class CnnBackend:
    """SmallCNN from scratch at cfg.image_size; every weight and BatchNorm buffer is its state."""

    name = "cnn"

    def __init__(self, classes: list[str], cfg, device: str = "cpu"):
        self.classes, self.image_size, self.device = list(classes), int(cfg.image_size), device
        self.model = SmallCNN(len(self.classes)).to(device)
        self.train_transform = cnn_train_transform(self.image_size, MEAN, STD, cfg.augment)
        self.eval_transform = eval_transform(self.image_size)

    @staticmethod
    def inputs(pixels: torch.Tensor) -> torch.Tensor:
        """Its transforms normalise already (8-16 px images: nothing to gain from uint8 views)."""
        return pixels

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.model.parameters())

    def state(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def train(self) -> None:
        self.model.train()

    def eval(self) -> None:
        self.model.eval()

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)

    def describe(self) -> dict:
        return {"backend": self.name, "classes": self.classes, "image_size": self.image_size}

    def saved_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}

    def load_saved(self, tensors: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(tensors)


def make_backend(cfg, classes: list[str], prompts: list[str], clip_location: str | None, device: str):
    """The backend cfg.backend names (the CLIP one needs the CLIP's location)."""
    if cfg.backend == "cnn":
        return CnnBackend(classes, cfg, device)
    if cfg.backend == "clip":
        if clip_location is None:
            raise ValueError("classify.backend clip needs a CLIP model (models.clip)")
        return ClipBackend(clip_location, prompts, cfg, device)
    raise ValueError(f"classify.backend: unknown backend {cfg.backend!r}")


class _Saved:
    """The settings a saved classifier was trained with, as attributes (what the backends read)."""

    def __init__(self, config: dict):
        self.__dict__.update(config)


def load_classifier(path: str | Path, device: str = "cpu"):
    """A trained classifier (classifier.safetensors + .json) as its backend, weights loaded, in eval mode."""
    meta = json.loads(Path(path).with_suffix(".json").read_text())
    cfg = _Saved(meta["config"])
    backend = CnnBackend(meta["classes"], cfg, device) if meta["backend"] == "cnn" else \
        ClipBackend(meta["clip"], meta["prompts"], cfg, device)
    backend.load_saved(load_tensors(path))
    backend.model.to(device)
    backend.eval()
    return backend, meta

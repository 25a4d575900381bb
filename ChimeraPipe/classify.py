"""The classify and evaluate stages: open_clip CLIP with LoRA on both towers, a zero-shot text head that trains.

Settings follow the anchors (LoFT / DataDream): LoRA r=16, alpha 32, dropout 0.1 on q and v of every
attention block of both towers; logits = logit_scale.exp() * cosine(image, class-prompt text);
AdamW (wd 1e-4) with linear warm-up and per-iteration cosine decay; optional real+synthetic mix
with loss 0.8 * CE_real + 0.2 * CE_synth.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2
from tqdm import tqdm

from .images import load_rgb
from .io import load_tensors, save_tensors, write_csv, write_json
from .lora import MultiHeadLoRALinear, load_lora_state_dict, lora_state_dict
from .runtime import resolve_precision, warmup_cosine
from .settings import ClassifierConfig

log = logging.getLogger(__name__)


class LoRAAttention(nn.Module):
    """nn.MultiheadAttention's computation with separate q/k/v projections, LoRA on q and v."""

    def __init__(self, mha: nn.MultiheadAttention, rank: int, lora_alpha: float, dropout: float,
                 init: str = "kaiming"):
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None:
            raise ValueError("only standard self-attention blocks are supported")
        dim = mha.embed_dim
        self.num_heads, self.batch_first = mha.num_heads, mha.batch_first
        projections = []
        for i in range(3):
            linear = nn.Linear(dim, dim, bias=mha.in_proj_bias is not None)
            with torch.no_grad():
                linear.weight.copy_(mha.in_proj_weight[i * dim:(i + 1) * dim])
                if mha.in_proj_bias is not None:
                    linear.bias.copy_(mha.in_proj_bias[i * dim:(i + 1) * dim])
            linear.requires_grad_(False)
            projections.append(linear)
        self.q_proj = MultiHeadLoRALinear(projections[0], rank, 1, "both", lora_alpha, dropout, init=init)
        self.k_proj = projections[1]
        self.v_proj = MultiHeadLoRALinear(projections[2], rank, 1, "both", lora_alpha, dropout, init=init)
        self.out_proj = mha.out_proj
        self.out_proj.requires_grad_(False)

    def forward(self, query, key=None, value=None, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if need_weights:
            raise NotImplementedError("LoRAAttention does not return attention weights (need_weights=True)")
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise NotImplementedError("LoRAAttention is self-attention only: key and value must be the query")
        x = query if self.batch_first else query.transpose(0, 1)                  # [N, L, D]
        n, length, dim = x.shape
        heads = lambda t: t.view(n, length, self.num_heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        mask = _additive_mask(attn_mask, key_padding_mask, n, length, q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal and mask is None)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, dim))
        return (out if self.batch_first else out.transpose(0, 1)), None


def _additive_mask(attn_mask, key_padding_mask, n: int, length: int, dtype) -> torch.Tensor | None:
    """nn.MultiheadAttention's two masks (bool: True = masked out; float: added) as one additive mask
    [N or 1, 1 or heads, L, L] for scaled_dot_product_attention."""
    def additive(mask):
        if mask.dtype == torch.bool:
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
        return mask.to(dtype)

    out = None
    if attn_mask is not None:
        out = additive(attn_mask)
        out = out.view(1, 1, length, length) if out.ndim == 2 else out.view(n, -1, length, length)
    if key_padding_mask is not None:
        padding = additive(key_padding_mask).view(n, 1, 1, length)
        out = padding if out is None else out + padding
    return out


def inject_clip_lora(model: nn.Module, rank: int, lora_alpha: float, dropout: float, init: str = "kaiming") -> int:
    """Swap every nn.MultiheadAttention of both towers for LoRAAttention; freeze everything else."""
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    if not names:
        raise ValueError("no attention blocks found in the CLIP model")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRAAttention(getattr(parent, child), rank, lora_alpha, dropout, init))
    return len(names)


def load_clip(spec_path: str):
    """(model, eval transform, tokenizer) from an open_clip local dir or 'ARCH:pretrained_tag'."""
    import open_clip

    if Path(spec_path).is_dir():
        name, pretrained = f"local-dir:{spec_path}", None
    else:
        name, _, pretrained = spec_path.partition(":")
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None)
    return model, preprocess, open_clip.get_tokenizer(name)


def train_transform(size: int, mean, std, augment: str) -> v2.Compose:
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
        raise ValueError(f"augment must be 'anchor' or 'simple', got {augment!r}")
    return v2.Compose([v2.PILToTensor(), *steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


class ImageTable(torch.utils.data.Dataset):
    def __init__(self, table: pd.DataFrame, transform):
        self.paths, self.labels = list(table["path"]), list(table["label"])
        self.real = list(table.get("real", pd.Series([True] * len(table))))
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(load_rgb(self.paths[i])), self.labels[i], bool(self.real[i])


def class_text_features(model, tokenizer, prompts: list[str], device: str) -> torch.Tensor:
    return F.normalize(model.encode_text(tokenizer(prompts).to(device)), dim=-1)


def _image_size(preprocess) -> int:
    for t in preprocess.transforms:
        if hasattr(t, "size"):
            size = t.size
            return size if isinstance(size, int) else size[0]
    raise ValueError("cannot tell the CLIP input size from its transform")


def _norm_stats(preprocess):
    for t in preprocess.transforms:
        if hasattr(t, "mean") and hasattr(t, "std"):
            return t.mean, t.std
    raise ValueError("cannot find the CLIP normalisation in its transform")


def classifier_loss(per_sample: torch.Tensor, is_real: torch.Tensor, real_weight: float | None) -> torch.Tensor:
    """Mean cross-entropy; with `real_weight` (DataDream's real+synthetic recipe) the weighted sum
    real_weight * mean CE over real samples + (1 - real_weight) * mean CE over synthetic ones, a group
    absent from the batch counting zero."""
    if real_weight is None:
        return per_sample.mean()
    loss = per_sample.new_zeros(())
    for weight, mask in ((real_weight, is_real), (1.0 - real_weight, ~is_real)):
        if mask.any():
            loss = loss + weight * per_sample[mask].mean()
    return loss


@torch.no_grad()
def predict(model, preprocess, text: torch.Tensor, paths: list[str], device: str, batch_size: int = 64) -> list[int]:
    """Zero-shot-head labels of images: argmax of cosine to each class's text feature."""
    labels = []
    for start in range(0, len(paths), batch_size):
        images = torch.stack([preprocess(load_rgb(p)) for p in paths[start:start + batch_size]]).to(device)
        labels += (F.normalize(model.encode_image(images), dim=-1) @ text.T).argmax(-1).tolist()
    return labels


def mix_batch(images: torch.Tensor, labels: torch.Tensor, num_classes: int, mix_prob: float,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix or MixUp (one of the two, evenly) on a `mix_prob` share of batches; labels become soft."""
    targets = F.one_hot(labels, num_classes).float()
    if len(labels) < 2 or torch.rand((), generator=generator) >= mix_prob:
        return images, targets
    mixer = (v2.CutMix if torch.rand((), generator=generator) < 0.5 else v2.MixUp)(num_classes=num_classes)
    return mixer(images, labels)


def train_classifier(clip_path: str, table: pd.DataFrame, prompts: list[str], out_path: str | Path,
                     cfg: ClassifierConfig, device: str = "cpu", val: pd.DataFrame | None = None) -> dict:
    """Fine-tune LoRA on both towers on `table` (path, label, real) and save the LoRA tensors + JSON.

    With `cfg.select == "val"` the saved LoRA is that of the epoch with the best accuracy on `val`
    (path, label: the dataset's validation split); otherwise the last epoch's."""
    if table.empty:
        raise ValueError("no training images for the classifier")
    if cfg.select not in ("last", "val"):
        raise ValueError(f"classify.select must be 'last' or 'val', got {cfg.select!r}")
    if cfg.select == "val" and (val is None or val.empty):
        raise ValueError("classify.select = val needs the dataset's validation images (none were given)")
    torch.manual_seed(cfg.seed)
    model, preprocess, tokenizer = load_clip(clip_path)
    inject_clip_lora(model, cfg.rank, cfg.lora_alpha, cfg.dropout, cfg.lora_init)
    model.to(device).train()
    mean, std = _norm_stats(preprocess)
    transform = train_transform(_image_size(preprocess), mean, std, cfg.augment)

    precision = resolve_precision(device, cfg.precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.scale_loss)
    mixed = table["real"].any() and not table["real"].all()
    if mixed:  # DataDream's recipe: repeat the real shots up to the synthetic count
        real, synth = table[table["real"]], table[~table["real"]]
        table = pd.concat([synth] + [real] * max(1, math.ceil(len(synth) / len(real))), ignore_index=True)
    loader = torch.utils.data.DataLoader(
        ImageTable(table, transform), batch_size=min(cfg.batch_size, len(table)), shuffle=True, drop_last=False,
        num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total, warmup = cfg.epochs * len(loader), cfg.warmup_epochs * len(loader)

    logit_scale = model.logit_scale.exp().detach()
    mixing = torch.Generator().manual_seed(cfg.seed + 1)
    it, history, val_accuracy, best = 0, [], [], None
    for epoch in tqdm(range(cfg.epochs), desc="classifier epochs", mininterval=5):
        running, seen = 0.0, 0
        for images, labels, is_real in loader:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * warmup_cosine(it, total, warmup, floor=cfg.min_lr / cfg.lr)
            images, targets = mix_batch(images, labels, len(prompts), cfg.mix_prob, mixing)
            images, targets, is_real = images.to(device), targets.to(device), is_real.to(device)
            with precision.autocast_on(device):
                text = class_text_features(model, tokenizer, prompts, device)  # the head trains with the text LoRA
                logits = logit_scale * F.normalize(model.encode_image(images), dim=-1) @ text.T
            per_sample = F.cross_entropy(logits.float(), targets, reduction="none")
            loss = classifier_loss(per_sample, is_real, cfg.real_weight if mixed else None)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            running += loss.item() * len(labels)
            seen += len(labels)
            it += 1
        history.append(running / seen)
        if cfg.select == "val":
            model.eval()
            with torch.no_grad(), precision.autocast_on(device):
                text = class_text_features(model, tokenizer, prompts, device)
                correct = np.asarray(predict(model, preprocess, text, list(val["path"]), device)) == val["label"]
            model.train()
            val_accuracy.append(float(correct.mean()))
            if best is None or val_accuracy[-1] > max(val_accuracy[:-1]):  # earliest best epoch on ties
                best = (epoch, lora_state_dict(model))
    selected = best if best is not None else (cfg.epochs - 1, lora_state_dict(model))
    meta = {"clip": clip_path, "prompts": prompts, "config": asdict(cfg), "train_images": int(len(table)),
            "precision": precision.name, "loss_per_epoch": history, "selected_epoch": selected[0] + 1,
            "val_accuracy_per_epoch": val_accuracy or None}
    save_tensors(out_path, selected[1])
    write_json(Path(out_path).with_suffix(".json"), meta)
    return meta


@torch.no_grad()
def evaluate_classifier(classifier_path: str | Path, test: pd.DataFrame, classes: list[str],
                        out_json: str | Path, out_predictions: str | Path, device: str = "cpu",
                        batch_size: int = 64, tags: dict | None = None,
                        groups: dict[str, list[str]] | None = None) -> dict:
    """Accuracy overall and per class on the test split, and over each group of classes (`groups`: name ->
    classes, e.g. head and tail); predictions written beside."""
    meta = json.loads(Path(classifier_path).with_suffix(".json").read_text())
    cfg = meta["config"]
    if meta.get("backend") == "cnn":
        from .cnn import cnn_outputs, load_cnn

        model, _ = load_cnn(classifier_path, device)
        predictions = cnn_outputs(model, list(test["path"]), meta["image_size"], device, batch_size)[1].tolist()
    else:
        model, preprocess, tokenizer = load_clip(meta["clip"])
        inject_clip_lora(model, cfg["rank"], cfg["lora_alpha"], cfg["dropout"])
        load_lora_state_dict(model, load_tensors(classifier_path))
        model.to(device).eval()
        with resolve_precision(device, cfg.get("precision", "auto")).autocast_on(device):
            text = class_text_features(model, tokenizer, meta["prompts"], device)
            predictions = predict(model, preprocess, text, list(test["path"]), device, batch_size)
    result = test[["class", "label", "path"]].copy()
    result["predicted"] = predictions
    correct = result["predicted"] == result["label"]
    per_class = {name: float(correct[result["label"] == i].mean()) if (result["label"] == i).any() else float("nan")
                 for i, name in enumerate(classes)}
    metrics = {"accuracy": float(correct.mean()),
               "mean_per_class_accuracy": float(np.nanmean(list(per_class.values()))),
               "per_class": per_class, "n_test": int(len(result)), "classifier": str(classifier_path),
               "group_accuracy": {name: float(correct[result["class"].isin(members)].mean())
                                  for name, members in (groups or {}).items()},
               "tags": tags or {}}
    write_csv(out_predictions, result)
    write_json(out_json, metrics)
    return metrics

"""A small CNN classifier trained from scratch: the classifier backend for settings without a pretrained
CLIP (the laptop-scale experiment), and the judge whose features the gap metrics can use there."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from .classify import ImageTable, classifier_loss, mix_batch
from .images import load_rgb
from .io import load_tensors, save_tensors, write_json
from .runtime import pick_device, resolve_precision, warmup_cosine
from .settings import ClassifierConfig

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


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
    return v2.Compose([v2.PILToTensor(), v2.Resize((size, size), antialias=True),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


def train_transform(size: int, augment: str) -> v2.Compose:
    """Small shifts, turns and zooms only (`affine`; a mirrored digit is another glyph), or none."""
    steps = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))] if augment != "none" else []
    return v2.Compose([v2.PILToTensor(), v2.Resize((size, size), antialias=True), *steps,
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


def train_cnn_classifier(table: pd.DataFrame, classes: list[str], out_path: str | Path, cfg: ClassifierConfig,
                         device: str = "cpu", image_size: int = 32) -> dict:
    """Train SmallCNN on `table` (path, label, real); the same schedule fields as the CLIP classifier
    (epochs, warm-up, lr, weight decay, batch, mix_prob, real_weight when with_real)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = SmallCNN(len(classes)).to(device)
    loader = torch.utils.data.DataLoader(
        ImageTable(table, train_transform(image_size, cfg.augment)), batch_size=cfg.batch_size, shuffle=True,
        generator=gen, num_workers=cfg.num_workers, drop_last=len(table) > cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total, warmup = cfg.epochs * len(loader), cfg.warmup_epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup, cfg.min_lr / cfg.lr))
    precision = resolve_precision(device, cfg.precision)
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=precision.scale_loss)
    mixed = cfg.with_real and bool(table["real"].any()) and not bool(table["real"].all())
    losses = []
    for _ in range(cfg.epochs):
        model.train()
        for images, labels, is_real in loader:
            images, labels = images.to(device), labels.to(device)
            with precision.autocast_on(device):
                inputs, targets = mix_batch(images, labels, len(classes), cfg.mix_prob, gen)
                per_sample = F.cross_entropy(model(inputs), targets, reduction="none")
                loss = classifier_loss(per_sample, is_real.to(device), cfg.real_weight if mixed else None)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            losses.append(loss.item())
    model.eval()
    meta = {"backend": "cnn", "classes": list(classes), "image_size": image_size, "config": asdict(cfg),
            "train_images": int(len(table)), "loss_first_epoch": float(np.mean(losses[:len(loader)])),
            "loss_last_epoch": float(np.mean(losses[-len(loader):]))}
    save_tensors(out_path, {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    write_json(Path(out_path).with_suffix(".json"), meta)
    return meta


def load_cnn(path: str | Path, device: str = "cpu") -> tuple[SmallCNN, dict]:
    meta = json.loads(Path(path).with_suffix(".json").read_text())
    model = SmallCNN(len(meta["classes"]))
    model.load_state_dict(load_tensors(path))
    return model.to(device).eval(), meta


@torch.no_grad()
def cnn_outputs(model: SmallCNN, paths: list[str], image_size: int, device: str = "cpu",
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(L2-normalised 128-d features, predicted labels) of images."""
    transform = eval_transform(image_size)
    feats, preds = [], []
    for start in range(0, len(paths), batch_size):
        x = torch.stack([transform(load_rgb(p)) for p in paths[start:start + batch_size]]).to(device)
        f = model.features(x)
        feats.append(F.normalize(f, dim=-1).cpu())
        preds.append(model.head(f).argmax(-1).cpu())
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return torch.cat(feats).numpy(), torch.cat(preds).numpy()


def train_judge(table: pd.DataFrame, classes: list[str], out_path: str | Path, cfg: ClassifierConfig,
                device: str = "auto", image_size: int = 32) -> dict:
    """The judge: SmallCNN on every real training image of the dataset, scored on its test split."""
    from .datasets import eval_split, split_rows

    device = pick_device(device)
    label = {c: i for i, c in enumerate(classes)}
    train = split_rows(table, "train", classes)
    rows = pd.DataFrame({"path": train["path"], "label": train["class"].map(label), "real": True})
    meta = train_cnn_classifier(rows, classes, out_path, cfg, device, image_size)
    test = split_rows(table, eval_split(table), classes)
    model, _ = load_cnn(out_path, device)
    _, predicted = cnn_outputs(model, list(test["path"]), image_size, device)
    meta["test_accuracy"] = float((predicted == test["class"].map(label).to_numpy()).mean())
    write_json(Path(out_path).with_suffix(".json"), meta)
    return meta

"""One training loop for both classifier backends: the same data order, mixing, schedule, precision and
model selection, and a checkpoint after every epoch, so a job killed at any point resumes where its last
finished epoch left off (bit-identical on CPU).

Three random streams, each its own: the data order (and the DataLoader workers' seeds), CutMix/MixUp, and
the global torch RNG (augmentations in this process, dropout)."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.checkpoint import Checkpoint
from ..core.hashing import settings_digest
from ..core.io import load_tensors, save_tensors, write_json
from ..core.loader import image_batches
from ..core.provenance import hardware
from ..core.runtime import resolve_precision, warmup_cosine
from .data import ImageTable, SeededItems, SeededOrder, classifier_loss, is_mixed, mix_batch, training_table
from .recipes import check_settings

log = logging.getLogger(__name__)
CHECKPOINT = "classifier.checkpoint.safetensors"
BEST = "classifier.best.safetensors"


@torch.no_grad()
def predict(backend, paths: list[str], device: str, precision, batch_size: int = 64, num_workers: int = 0
            ) -> np.ndarray:
    """The backend's labels for images (its eval transform; decoded by `num_workers` workers)."""
    backend.eval()
    labels = []
    for pixels in image_batches(paths, backend.eval_transform, batch_size, num_workers,
                                pin_memory=device.startswith("cuda")):
        with precision.autocast_on(device):
            labels.append(backend.logits(backend.inputs(pixels.to(device, non_blocking=True))).float().argmax(-1).cpu())
    return torch.cat(labels).numpy() if labels else np.zeros(0, np.int64)


def table_digest(table: pd.DataFrame) -> str:
    columns = [c for c in ("path", "label", "real") if c in table]
    return settings_digest(table[columns].astype(str).values.tolist())


def fit(backend, data: torch.utils.data.Dataset, cfg, device: str = "cpu", mixed: bool = False,
        val: pd.DataFrame | None = None, checkpoint_dir: str | Path | None = None, fingerprint: str = "") -> dict:
    """Train `backend` on `data` (items: pixels, label, is_real) for cfg.epochs; returns the history.

    With cfg.select == 'val' the backend ends with the weights of the epoch most accurate on `val` (path,
    label), never the test split. With `checkpoint_dir` the state is saved after every epoch and a run
    finding a checkpoint of the same `fingerprint` continues from it."""
    device_type = device.split(":")[0]
    data_order = torch.Generator().manual_seed(cfg.seed)   # the order and each item's augmentation seed
    mixing = torch.Generator().manual_seed(cfg.seed + 1)
    workers = cfg.num_workers or 0
    loader = torch.utils.data.DataLoader(
        SeededItems(data), batch_size=min(cfg.batch_size, len(data)), sampler=SeededOrder(len(data), data_order),
        drop_last=False, generator=torch.Generator().manual_seed(cfg.seed + 2),   # (only seeds the workers)
        num_workers=workers, pin_memory=device_type == "cuda", prefetch_factor=2 if workers else None)
    optimizer = torch.optim.AdamW(backend.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total, warmup = cfg.epochs * len(loader), cfg.warmup_epochs * len(loader)
    precision = resolve_precision(device, cfg.precision)
    scaler = torch.amp.GradScaler(device_type, enabled=precision.scale_loss)
    streams = {"data": data_order, "mix": mixing}
    checkpoint = Checkpoint(Path(checkpoint_dir) / CHECKPOINT, fingerprint) if checkpoint_dir else None
    start, history = (checkpoint.load(backend.state(), optimizer, streams, scaler, global_rng=True)
                      if checkpoint else (0, {}))
    losses, val_accuracy = history.get("loss_per_epoch", []), history.get("val_accuracy_per_epoch", [])
    best_path = Path(checkpoint_dir) / BEST if checkpoint_dir else None
    best_in_memory = None
    num_classes = backend.num_classes
    it = start * len(loader)
    for epoch in tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc="classifier epochs",
                      mininterval=5):
        backend.train()
        running, seen = 0.0, 0
        for pixels, labels, is_real in loader:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * warmup_cosine(it, total, warmup, floor=cfg.min_lr / cfg.lr)
            pixels, labels = pixels.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            pixels, targets = mix_batch(backend.inputs(pixels), labels, num_classes, cfg.mix_prob, mixing)
            with precision.autocast_on(device):
                logits = backend.logits(pixels)
            per_sample = F.cross_entropy(logits.float(), targets, reduction="none")
            loss = classifier_loss(per_sample, is_real.to(device), cfg.real_weight if mixed else None)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            running += loss.item() * len(labels)
            seen += len(labels)
            it += 1
        losses.append(running / seen)
        if cfg.select == "val":
            correct = predict(backend, list(val["path"]), device, precision, num_workers=workers) \
                == val["label"].to_numpy()
            val_accuracy.append(float(correct.mean()))
            if val_accuracy[-1] > max(val_accuracy[:-1], default=-1.0):  # the earliest best epoch on ties
                if best_path is None:
                    best_in_memory = {k: v.clone() for k, v in backend.saved_tensors().items()}
                else:  # on disk: a resumed run still ends with the best epoch of the whole run
                    save_tensors(best_path, backend.saved_tensors(), metadata={"epoch": str(epoch + 1)})
        if checkpoint is not None and epoch + 1 < cfg.epochs:
            checkpoint.save(epoch + 1, backend.state(), optimizer, streams, scaler, global_rng=True,
                            extra={"loss_per_epoch": losses, "val_accuracy_per_epoch": val_accuracy})
    selected = cfg.epochs
    if cfg.select == "val":
        selected = 1 + int(np.argmax(val_accuracy))
        backend.load_saved(best_in_memory if best_path is None else load_tensors(best_path))
        if best_path is not None:
            best_path.unlink()
    if checkpoint is not None:
        checkpoint.remove()
    return {"loss_per_epoch": losses, "val_accuracy_per_epoch": val_accuracy or None, "selected_epoch": selected,
            "resumed_from_epoch": start, "precision": precision.name, "iterations": it}


def train_classifier(make_backend, table: pd.DataFrame, cfg, out_path: str | Path, device: str = "cpu",
                     val: pd.DataFrame | None = None, inputs_digest: str = "") -> dict:
    """Train a classifier on `table` (path, label, real) and write `out_path` (safetensors) + JSON.

    `make_backend()` builds the backend (after the seed is set: its initial weights are seeded);
    `inputs_digest` names what the table was read from (it joins the checkpoint's fingerprint)."""
    if table.empty:
        raise ValueError("no training images for the classifier")
    check_settings(cfg)
    if cfg.select == "val" and (val is None or val.empty):
        raise ValueError("classify.select = val needs the dataset's validation images (none were given)")
    out_path = Path(out_path)
    mixed, rows = is_mixed(table), training_table(table)
    torch.manual_seed(cfg.seed)
    backend = make_backend()
    settings = {k: v for k, v in asdict(cfg).items() if k != "num_workers"}   # the result does not depend on it
    fingerprint = settings_digest({"config": settings, "backend": backend.describe(), "table": table_digest(rows),
                                   "inputs": inputs_digest, "val": table_digest(val) if val is not None else None})
    history = fit(backend, ImageTable(rows, backend.train_transform), cfg, device, mixed, val,
                  checkpoint_dir=out_path.parent, fingerprint=fingerprint)
    meta = {**backend.describe(), "config": asdict(cfg), "train_images": int(len(rows)), **history,
            "hardware": {"device": device, **hardware()}}
    save_tensors(out_path, backend.saved_tensors())
    write_json(out_path.with_suffix(".json"), meta)
    return meta


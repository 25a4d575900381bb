"""The classifier's training data: the table of images (path, label, real), as a dataset; the real+synthetic
recipe of DataDream; CutMix/MixUp on a share of batches; the (weighted) cross-entropy."""
from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ..core.images import load_rgb


class ImageTable(torch.utils.data.Dataset):
    """(transformed image, label, is real) per row of a table with columns path, label and optionally real."""

    def __init__(self, table: pd.DataFrame, transform):
        self.paths, self.labels = list(table["path"]), [int(v) for v in table["label"]]
        self.real = [bool(v) for v in table["real"]] if "real" in table else [True] * len(table)
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        if hasattr(self.transform, "from_path"):   # decodes only what it needs (AnchorViews)
            return self.transform.from_path(self.paths[i]), self.labels[i], self.real[i]
        return self.transform(load_rgb(self.paths[i])), self.labels[i], self.real[i]


class SeededOrder(torch.utils.data.Sampler):
    """Each epoch, a shuffled order and a seed per item, both drawn from `generator` in the main process: what
    an item looks like depends on the run's seed, the epoch and its position alone, never on which DataLoader
    worker makes it or on how many there are (`SeededItems` applies the seed)."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator

    def __len__(self):
        return self.n

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator).tolist()
        seeds = torch.randint(2**62, (self.n,), generator=self.generator).tolist()
        return iter(zip(order, seeds, strict=True))


class SeededItems(torch.utils.data.Dataset):
    """`data[index]` made under the item's own seed (its augmentation draws from the global RNG, as
    torchvision's transforms do, on a forked one): items come as (index, seed) from `SeededOrder`."""

    def __init__(self, data: torch.utils.data.Dataset):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, item):
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.data[index]


def is_mixed(table: pd.DataFrame) -> bool:
    """Real and synthetic images together (DataDream's real+synthetic recipe applies)."""
    return "real" in table and bool(table["real"].any()) and not bool(table["real"].all())


def training_table(table: pd.DataFrame) -> pd.DataFrame:
    """The rows one epoch goes through: as given, or - real and synthetic mixed - the synthetic rows and the
    real ones repeated up to the synthetic count (DataDream's recipe), whatever the backend."""
    if not is_mixed(table):
        return table.reset_index(drop=True)
    real, synth = table[table["real"]], table[~table["real"]]
    return pd.concat([synth] + [real] * max(1, math.ceil(len(synth) / len(real))), ignore_index=True)


def mix_batch(images: torch.Tensor, labels: torch.Tensor, num_classes: int, mix_prob: float,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix or MixUp (one of the two, evenly) on a `mix_prob` share of batches; labels become soft.

    Every draw comes from `generator`: torchvision's mixers sample from the global RNG, so they run on a
    forked one seeded from `generator`, and mixing never shifts the augmentation or data-order streams."""
    targets = F.one_hot(labels, num_classes).float()
    if len(labels) < 2 or torch.rand((), generator=generator) >= mix_prob:
        return images, targets
    mixer = v2.CutMix if torch.rand((), generator=generator) < 0.5 else v2.MixUp
    seed = int(torch.randint(2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return mixer(num_classes=num_classes)(images, labels)


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

"""Batches of images read from disk by DataLoader workers, in order: what evaluation and embedding loop over."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from .images import load_rgb


class ImageList(torch.utils.data.Dataset):
    """Images by path (or shard reference, see core.images.load_rgb), each through `transform`."""

    def __init__(self, paths: Sequence[str], transform: Callable):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(load_rgb(self.paths[i]))


def image_batches(paths: Sequence[str], transform: Callable, batch_size: int = 64, num_workers: int = 0,
                  pin_memory: bool = False) -> Iterator[torch.Tensor]:
    """Transformed images stacked in batches of `batch_size`, in the order of `paths`; decoded by
    `num_workers` worker processes (0: in this process)."""
    if not paths:
        return iter(())
    loader = torch.utils.data.DataLoader(ImageList(paths, transform), batch_size=batch_size, shuffle=False,
                                         num_workers=num_workers, pin_memory=pin_memory,
                                         prefetch_factor=4 if num_workers else None,
                                         generator=torch.Generator().manual_seed(0))  # never the global RNG
    return iter(loader)

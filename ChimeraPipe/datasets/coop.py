"""Datasets in CoOp's layout (DATASETS.md of the few-shot CLIP literature) with its fixed split file,
split_zhou_<Name>.json = {"train" | "val" | "test": [[relative path, label, class name], ...]}."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .base import Layout, make_table
from .names import baseline_spelling


@dataclass(frozen=True)
class CoopDataset:
    kind: str
    split_file: str
    image_dir: str                 # paths in the split file are relative to root/image_dir
    expected: str                  # the whole standard layout, for error messages
    prompt_prefix: str = ""
    detect_noun: str = ""

    @property
    def layout(self) -> Layout:
        return Layout(self.kind, self.expected)

    def _entries(self, root: Path) -> dict:
        self.layout.require(root, self.split_file)
        path = root / self.split_file
        try:
            entries = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise self.layout.error(root, f"{self.split_file} is not a readable JSON file ({err})") from None
        if not isinstance(entries, dict) or "train" not in entries or "test" not in entries:
            raise self.layout.error(root, f"{self.split_file} lacks the 'train' and 'test' lists")
        return entries

    def _classes(self, entries: dict, naming: str) -> tuple[list[str], dict[int, int]]:
        """Display names in label order, and the map from the file's labels to ours (after drops)."""
        coop: dict[int, str] = {}
        folder: dict[int, str] = {}
        for split in ("train", "val", "test"):
            for rel, label, name in entries.get(split, []):
                coop.setdefault(int(label), name)
                folder.setdefault(int(label), re.split(r"[/\\]", rel)[0])
        labels = sorted(coop)
        names = [coop[label] for label in labels]
        if naming == "baseline":
            names = baseline_spelling(self.kind, [[coop[label], folder[label]] for label in labels]) or names
        return names, {old: new for new, old in enumerate(labels)}

    def classes(self, root: Path, naming: str) -> list[str]:
        return self._classes(self._entries(root), naming)[0]

    def table(self, root: Path, naming: str, **_) -> pd.DataFrame:
        self.layout.require(root, self.image_dir.rstrip("/") + "/", self.split_file)  # what the reader reads
        entries = self._entries(root)
        names, relabel = self._classes(entries, naming)
        images = root / self.image_dir
        rows = [(split, str(images / rel), relabel[int(label)])
                for split in ("train", "val", "test") for rel, label, _ in entries.get(split, [])
                if int(label) in relabel]
        return make_table(rows, names)


COOP_DATASETS = {
    "caltech101": CoopDataset("caltech101", "split_zhou_Caltech101.json", "101_ObjectCategories",
                             "101_ObjectCategories/, split_zhou_Caltech101.json"),
    "oxford_pets": CoopDataset("oxford_pets", "split_zhou_OxfordPets.json", "images",
                               "images/, annotations/, split_zhou_OxfordPets.json", "pet "),
    "stanford_cars": CoopDataset("stanford_cars", "split_zhou_StanfordCars.json", ".",
                                  "cars_train/, cars_test/, devkit/, cars_test_annos_withlabels.mat, "
                                  "split_zhou_StanfordCars.json", "car ", "car"),
    "flowers102": CoopDataset("flowers102", "split_zhou_OxfordFlowers.json", "jpg",
                              "jpg/, imagelabels.mat, cat_to_name.json, split_zhou_OxfordFlowers.json",
                              "flower ", "flower"),
    "food101": CoopDataset("food101", "split_zhou_Food101.json", "images",
                           "images/, meta/, split_zhou_Food101.json", "food ", "food"),
    "dtd": CoopDataset("dtd", "split_zhou_DescribableTextures.json", "images",
                       "images/, imdb/, labels/, split_zhou_DescribableTextures.json", "texture "),
    "eurosat": CoopDataset("eurosat", "split_zhou_EuroSAT.json", "2750", "2750/, split_zhou_EuroSAT.json",
                       "satellite "),
    "sun397": CoopDataset("sun397", "split_zhou_SUN397.json", "SUN397", "SUN397/, split_zhou_SUN397.json",
                          "scene "),
}

"""The paper's datasets read where they lie, in their standard layouts and splits, as one canonical
table (split, path, label, class id, display name); the K-shot draw from its train split.

Kinds: imagefolder (root/{train,val,test}/<class>/*), caltech101, oxford_pets, stanford_cars, flowers102,
food101, dtd, eurosat, sun397 (CoOp's layout and split_zhou files), fgvc_aircraft (the official data/
folder and split), isic2018 (ISIC 2018 Task 3), cifar10 (python batches, decoded once to PNG),
sklearn_digits (scikit-learn's digits.csv.gz, decoded once to PNG, one recorded seeded split).
`demo` makes the datasets the workflow generates itself (the shapes, the digits file) and reads shipped
box annotations.

May import: ChimeraPipe.core.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .base import COLUMNS, DatasetLayoutError, check_images_exist, class_ids, safe_id
from .coop import COOP_DATASETS
from .official import Cifar10, FgvcAircraft, ImageFolder, Isic2018, SklearnDigits

KINDS = {"imagefolder": ImageFolder(), **COOP_DATASETS, "fgvc_aircraft": FgvcAircraft(), "isic2018": Isic2018(),
         "cifar10": Cifar10(), "sklearn_digits": SklearnDigits()}
NAMINGS = ("baseline", "coop")
DEFAULT_NAMING = "baseline"            # the baselines' spelling of every class name
ON_MISSING = ("error", "skip")
DEFAULT_ON_MISSING = "error"           # a split entry whose image file is missing stops the read

__all__ = ["COLUMNS", "DEFAULT_NAMING", "DEFAULT_ON_MISSING", "KINDS", "NAMINGS", "ON_MISSING", "DatasetLayoutError",
           "class_ids", "dataset_classes", "dataset_table", "draw_longtail", "draw_shots", "eval_rows", "eval_split",
           "reader", "safe_id", "split_rows"]


def reader(kind: str):
    if kind not in KINDS:
        raise DatasetLayoutError(f"unknown dataset kind {kind!r}; expected one of {sorted(KINDS)}")
    return KINDS[kind]


def _root(kind: str, root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetLayoutError(f"{kind}: dataset root {path} does not exist; expected layout: "
                                 f"{reader(kind).layout.expected}")
    return path


def dataset_classes(kind: str, root: str | Path, naming: str = DEFAULT_NAMING) -> list[tuple[str, str]]:
    """(class id, display name) in label order, from the dataset's metadata alone (no image is opened)."""
    if naming not in NAMINGS:
        raise ValueError(f"class_names must be one of {NAMINGS}, got {naming!r}")
    kind_reader = reader(kind)
    names = kind_reader.classes(_root(kind, root), naming)
    ids = kind_reader.ids(names) if hasattr(kind_reader, "ids") else class_ids(names)
    return list(zip(ids, names, strict=True))


def dataset_table(kind: str, root: str | Path, naming: str = DEFAULT_NAMING, decoded_dir: str | Path | None = None,
                  on_missing: str = DEFAULT_ON_MISSING) -> pd.DataFrame:
    """Every split's images: columns split, path (absolute), label, class (id), class_name (display).

    An entry whose image file is missing stops the read, naming the files (on_missing='error'), or is
    left out and listed in `table.attrs['skipped']` (on_missing='skip')."""
    if naming not in NAMINGS:
        raise ValueError(f"class_names must be one of {NAMINGS}, got {naming!r}")
    path = _root(kind, root)
    table = reader(kind).table(path, naming, decoded_dir=decoded_dir)
    if table.empty:
        raise DatasetLayoutError(f"{kind}: no images listed under {path}")
    return check_images_exist(table, kind, path, on_missing)


def eval_split(table: pd.DataFrame) -> str:
    """'test' when the dataset has a test split, else 'val' (ISIC 2018 without its Test part)."""
    if (table["split"] == "test").any():
        return "test"
    if (table["split"] == "val").any():
        return "val"
    raise DatasetLayoutError("the dataset has neither a test nor a val split to evaluate on")


def split_rows(table: pd.DataFrame, split: str, classes: list[str]) -> pd.DataFrame:
    """The table's rows of one split for `classes`, labelled by position in `classes`."""
    rows = table[(table["split"] == split) & table["class"].isin(classes)].copy()
    rows["label"] = rows["class"].map({c: i for i, c in enumerate(classes)})
    return rows.reset_index(drop=True)


def eval_rows(table: pd.DataFrame, classes: list[str]) -> tuple[pd.DataFrame, str]:
    """The rows every evaluation reads - the test split, or val without one (see eval_split) - labelled by
    position in `classes`, and the split's name; no rows for these classes is an error."""
    which = eval_split(table)
    rows = split_rows(table, which, classes)
    if rows.empty:
        raise DatasetLayoutError(f"no {which} images for classes {classes[:3]}...")
    return rows, which


def draw_shots(table: pd.DataFrame, classes: list[str], shots: int, seed: int,
               shots_file: str | Path | None = None, root: str | Path | None = None) -> pd.DataFrame:
    """K images per class from the train split: a seeded draw, or a user's shot list.

    The draw: one numpy Generator seeded with `seed`; for each class in label order, `shots` distinct
    positions of the class's train images (in the table's order, i.e. the split file's or the sorted
    folder listing's) chosen uniformly without replacement, kept in that order. A shot list is a CSV
    with columns class (id or display name) and path (absolute or relative to the dataset root)."""
    train = table[table["split"] == "train"]
    if shots_file is not None:
        return _listed_shots(train, classes, shots, Path(shots_file), root)
    rng = np.random.default_rng(seed)
    picked = []
    for cls in classes:
        pool = train[train["class"] == cls]
        if len(pool) < shots:
            raise DatasetLayoutError(f"class {cls!r} has {len(pool)} training images, fewer than shots={shots}")
        chosen = pool.iloc[np.sort(rng.choice(len(pool), size=shots, replace=False))].copy()
        chosen["shot"] = range(shots)
        picked.append(chosen)
    return pd.concat(picked, ignore_index=True)[["class", "class_name", "label", "path", "shot"]]


def draw_longtail(table: pd.DataFrame, shots: pd.DataFrame, head: list[str], tail: list[str], head_max: int,
                  seed: int) -> pd.DataFrame:
    """A long-tail training set: each head class keeps up to `head_max` of its train images (a seeded draw,
    in table order; all of them when it has fewer), each tail class only its K shots from `shots`."""
    train = table[table["split"] == "train"]
    rng = np.random.default_rng([seed, 1])   # a stream of its own: the shot draw stays as it was
    picked = []
    for cls in head:
        pool = train[train["class"] == cls]
        keep = np.sort(rng.choice(len(pool), size=min(head_max, len(pool)), replace=False))
        picked.append(pool.iloc[keep].assign(group="head"))
    for cls in tail:
        rows = shots[shots["class"] == cls]
        if rows.empty:
            raise DatasetLayoutError(f"tail class {cls!r} has no shots")
        picked.append(rows.assign(group="tail"))
    return pd.concat(picked, ignore_index=True)[["class", "class_name", "label", "path", "group"]]


def _listed_shots(train: pd.DataFrame, classes: list[str], shots: int, shots_file: Path,
                  root: str | Path | None) -> pd.DataFrame:
    if not shots_file.is_file():
        raise DatasetLayoutError(f"{shots_file}: shot list not found")
    listed = pd.read_csv(shots_file)
    if not {"class", "path"} <= set(listed.columns):
        raise DatasetLayoutError(f"{shots_file}: needs columns class and path")
    by_path = train.set_index("path")
    picked = []
    for cls in classes:
        name = train.loc[train["class"] == cls, "class_name"].iloc[0] if (train["class"] == cls).any() else cls
        rows = listed[(listed["class"] == cls) | (listed["class"] == name)]
        if len(rows) != shots:
            raise DatasetLayoutError(f"{shots_file}: class {cls!r} has {len(rows)} shots listed, expected {shots}")
        for shot, rel in enumerate(rows["path"]):
            path = str(Path(root) / rel) if root is not None and not Path(rel).is_absolute() else str(rel)
            if path not in by_path.index or by_path.loc[path, "class"] != cls:
                raise DatasetLayoutError(f"{shots_file}: {rel} is not a training image of class {cls!r}")
            picked.append({"class": cls, "class_name": by_path.loc[path, "class_name"],
                           "label": int(by_path.loc[path, "label"]), "path": path, "shot": shot})
    return pd.DataFrame(picked)

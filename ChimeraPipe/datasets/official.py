"""Datasets read in their own official layouts: FGVC-Aircraft, ISIC 2018 Task 3, CIFAR-10, ImageFolder."""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..core.images import list_images
from ..core.io import atomic_dir
from .base import Layout, make_table
from .names import baseline_spelling


@dataclass(frozen=True)
class FgvcAircraft:
    """The official `data/` folder: images/<id>.jpg, variants.txt (class list), images_variant_<split>.txt
    ("<id> <variant>" per line). Names such as 'F/A-18' are kept as display names."""
    kind: str = "fgvc_aircraft"
    prompt_prefix: str = "aircraft "
    detect_noun: str = "aircraft"
    layout = Layout("fgvc_aircraft", "images/, variants.txt, images_variant_{train,val,test}.txt")

    def variants(self, root: Path) -> list[str]:
        self.layout.require(root, "variants.txt")
        return [line.strip() for line in (root / "variants.txt").read_text().splitlines() if line.strip()]

    def classes(self, root: Path, naming: str) -> list[str]:
        variants = self.variants(root)
        return (baseline_spelling(self.kind, [[v] for v in variants]) or variants) if naming == "baseline" \
            else variants

    def table(self, root: Path, naming: str, **_) -> pd.DataFrame:
        files = [f"images_variant_{split}.txt" for split in ("train", "val", "test")]
        self.layout.require(root, "images/", "variants.txt", *files)
        names = self.classes(root, naming)
        label = {name: i for i, name in enumerate(self.variants(root))}
        rows = []
        for split, name in zip(("train", "val", "test"), files, strict=True):
            for line in (root / name).read_text().splitlines():
                if not line.strip():
                    continue
                image_id, _, variant = line.strip().partition(" ")
                if variant not in label:
                    raise self.layout.error(root, f"{name}: variant {variant!r} is not in variants.txt")
                rows.append((split, str(root / "images" / f"{image_id}.jpg"), label[variant]))
        return make_table(rows, names)


ISIC_CLASSES = {"MEL": "melanoma", "NV": "melanocytic nevus", "BCC": "basal cell carcinoma",
                "AKIEC": "actinic keratosis", "BKL": "benign keratosis", "DF": "dermatofibroma",
                "VASC": "vascular lesion"}


@dataclass(frozen=True)
class Isic2018:
    """ISIC 2018 Task 3 (HAM10000) as the official zips extract. Shots from Training, model selection on
    Validation, evaluation on Test; without the Test part, evaluation falls back to Validation (the table
    then has no 'test' rows and `eval_split` says 'val'). Class ids are the challenge's codes."""
    kind: str = "isic2018"
    prompt_prefix: str = ""
    detect_noun: str = ""
    layout = Layout("isic2018", "ISIC2018_Task3_{Training,Validation,Test}_Input/*.jpg and "
                                "ISIC2018_Task3_{Training,Validation,Test}_GroundTruth/"
                                "ISIC2018_Task3_{...}_GroundTruth.csv (Test optional)")

    def classes(self, root: Path, naming: str) -> list[str]:
        return list(ISIC_CLASSES.values())

    @staticmethod
    def _truth(root: Path, part: str) -> Path:
        return root / f"ISIC2018_Task3_{part}_GroundTruth" / f"ISIC2018_Task3_{part}_GroundTruth.csv"

    def table(self, root: Path, naming: str, **_) -> pd.DataFrame:
        codes = list(ISIC_CLASSES)
        rows = []
        for split, part in (("train", "Training"), ("val", "Validation"), ("test", "Test")):
            truth = self._truth(root, part)
            if not truth.is_file():
                if split == "test":
                    continue  # evaluation then uses Validation
                self.layout.require(root, str(truth.relative_to(root)))
            frame = pd.read_csv(truth)
            missing = [c for c in ["image", *codes] if c not in frame.columns]
            if missing:
                raise self.layout.error(root, f"{truth.name} lacks columns {missing}")
            onehot = frame[codes].to_numpy(float)
            if not np.allclose(onehot.sum(1), 1):
                raise self.layout.error(root, f"{truth.name}: a row is not one-hot over {codes}")
            images = root / f"ISIC2018_Task3_{part}_Input"
            rows += [(split, str(images / f"{name}.jpg"), int(i)) for name, i in zip(frame["image"], onehot.argmax(1),
                                                                                     strict=True)]
        return make_table(rows, self.classes(root, naming), self.ids(self.classes(root, naming)))

    def ids(self, names: list[str]) -> list[str]:
        return list(ISIC_CLASSES)  # the challenge's codes: MEL, NV, ...


class _DataUnpickler(pickle.Unpickler):
    """CIFAR's batches are pickles: read them as data only (dicts, lists, bytes, numpy arrays), so a
    tampered file cannot run code."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module, name)


@dataclass(frozen=True)
class Cifar10:
    """cifar-10-batches-py/ (python pickle batches, as torchvision expects). The only kind that needs
    decoding: each image is written once as PNG under `decoded_dir` (atomically, all or nothing)."""
    kind: str = "cifar10"
    prompt_prefix: str = ""
    detect_noun: str = ""
    layout = Layout("cifar10", "cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}")

    def _batch(self, root: Path, name: str) -> dict:
        self.layout.require(root, f"cifar-10-batches-py/{name}")
        path = root / "cifar-10-batches-py" / name
        try:
            with open(path, "rb") as handle:
                return _DataUnpickler(handle, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as err:
            raise self.layout.error(root, f"cifar-10-batches-py/{name} is not a CIFAR batch ({err})") from None

    def classes(self, root: Path, naming: str) -> list[str]:
        meta = self._batch(root, "batches.meta")
        return [n.decode() if isinstance(n, bytes) else n for n in meta[b"label_names"]]

    def table(self, root: Path, naming: str, decoded_dir: str | Path | None = None) -> pd.DataFrame:
        if decoded_dir is None:
            raise ValueError("cifar10: the images must be decoded into a folder (decoded_dir)")
        decoded = Path(decoded_dir)
        batches = [("train", f"data_batch_{i}") for i in range(1, 6)] + [("test", "test_batch")]
        names = self.classes(root, naming)
        if not (decoded / "DONE").is_file():
            with atomic_dir(decoded) as tmp:
                for _, name in batches:
                    batch = self._batch(root, name)
                    pixels = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                    for j, image in enumerate(pixels):
                        Image.fromarray(image).save(tmp / f"{name}_{j:05d}.png")
                (tmp / "DONE").write_text("decoded\n")
        rows = []
        for split, name in batches:
            labels = self._batch(root, name)[b"labels"]
            rows += [(split, str(decoded / f"{name}_{j:05d}.png"), int(label)) for j, label in enumerate(labels)]
        return make_table(rows, names)


@dataclass(frozen=True)
class ImageFolder:
    """root/{train,test}/<class>/* (+ optional val/): class names are the train folder's sub-folders."""
    kind: str = "imagefolder"
    prompt_prefix: str = ""
    detect_noun: str = ""
    layout = Layout("imagefolder", "train/<class>/*, test/<class>/* (and optionally val/<class>/*)")

    def classes(self, root: Path, naming: str) -> list[str]:
        self.layout.require(root, "train/")
        names = sorted(p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise self.layout.error(root, "train/ has no class folders")
        return names

    def table(self, root: Path, naming: str, **_) -> pd.DataFrame:
        names = self.classes(root, naming)
        rows = []
        for split in ("train", "val", "test"):
            if not (root / split).is_dir():
                continue
            for label, name in enumerate(names):
                folder = root / split / name
                if split != "val" and not folder.is_dir():
                    raise self.layout.error(root, f"{split}/{name}/ (a class of train/) is missing")
                rows += [(split, str(p), label) for p in (list_images(folder) if folder.is_dir() else [])]
        return make_table(rows, names, self.ids(names))

    def ids(self, names: list[str]) -> list[str]:
        return list(names)  # the folders are the ids


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class SklearnDigits:
    """scikit-learn's handwritten digits (UCI optdigits test set, 1,797 8x8 images with 17 grey levels) in
    the file scikit-learn ships, root/digits.csv.gz (64 pixel values 0-16 and the label per row). Decoded
    once to PNG under `decoded_dir`: dark ink on white, upscaled to `size` px (bilinear). There is no
    official split: one seeded split per class (seed 0, `test_share` of each class to test), recorded in
    the dataset table. Class ids and display names are the digits' words ('a photo of a seven')."""
    kind: str = "sklearn_digits"
    prompt_prefix: str = ""
    detect_noun: str = ""
    size: int = 32
    test_share: float = 0.3
    layout = Layout("sklearn_digits", "digits.csv.gz (scikit-learn's sklearn/datasets/data/digits.csv.gz)")

    def _rows(self, root: Path) -> np.ndarray:
        self.layout.require(root, "digits.csv.gz")
        try:
            rows = np.loadtxt(root / "digits.csv.gz", delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError as err:
            raise self.layout.error(root, f"digits.csv.gz is not a digits table ({err})") from None
        if rows.shape[1] != 65 or rows[:, :64].min() < 0 or rows[:, :64].max() > 16 or not np.isin(
                rows[:, 64], range(10)).all():
            raise self.layout.error(root, "digits.csv.gz rows must be 64 pixel values in 0..16 and a label 0..9")
        return rows

    def classes(self, root: Path, naming: str) -> list[str]:
        self.layout.require(root, "digits.csv.gz")
        return list(DIGIT_WORDS)

    @staticmethod
    def fetch(root: str | Path) -> Path:
        """Copy the file scikit-learn ships (no network) to root/digits.csv.gz."""
        import shutil

        import sklearn

        source = Path(sklearn.__file__).parent / "datasets" / "data" / "digits.csv.gz"
        Path(root).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, Path(root) / "digits.csv.gz")
        return Path(root)

    def ids(self, names: list[str]) -> list[str]:
        return list(names)

    def split(self, labels: np.ndarray) -> list[str]:
        """'train' / 'test' per row: per class, a seed-0 permutation's first test_share go to test."""
        splits = np.array(["train"] * len(labels), dtype=object)
        rng = np.random.default_rng(0)
        for label in range(10):
            rows = np.flatnonzero(labels == label)
            test = rng.permutation(rows)[:round(self.test_share * len(rows))]
            splits[test] = "test"
        return list(splits)

    def table(self, root: Path, naming: str, decoded_dir: str | Path | None = None) -> pd.DataFrame:
        if decoded_dir is None:
            raise ValueError("sklearn_digits: the images must be decoded into a folder (decoded_dir)")
        rows, decoded = self._rows(root), Path(decoded_dir)
        if not (decoded / "DONE").is_file():
            with atomic_dir(decoded) as tmp:
                for j, row in enumerate(rows):
                    ink = row[:64].reshape(8, 8).astype(np.float32) / 16.0
                    grey = Image.fromarray(np.uint8(255 * (1 - ink)), mode="L")
                    grey.resize((self.size, self.size), Image.BILINEAR).convert("RGB").save(tmp / f"{j:04d}.png")
                (tmp / "DONE").write_text("decoded\n")
        labels = rows[:, 64]
        return make_table([(split, str(decoded / f"{j:04d}.png"), int(label))
                           for j, (split, label) in enumerate(zip(self.split(labels), labels, strict=True))],
                          list(DIGIT_WORDS), list(DIGIT_WORDS))

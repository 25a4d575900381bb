"""The canonical dataset table every reader returns, class ids safe for paths, and layout errors."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMNS = ["split", "path", "label", "class", "class_name"]
SPLITS = ("train", "val", "test")


class DatasetLayoutError(ValueError):
    """A dataset that is missing, partial or malformed; the message names the dataset, the file, and the
    layout the reader expects."""


@dataclass(frozen=True)
class Layout:
    kind: str
    expected: str  # what the root should hold, for error messages

    def require(self, root: Path, *names: str) -> None:
        """Each name must exist under root (a trailing '/' means a folder)."""
        for name in names:
            path = root / name.rstrip("/")
            ok = path.is_dir() if name.endswith("/") else path.exists()
            if not ok:
                raise DatasetLayoutError(f"{self.kind}: {name} not found in {root}; expected layout: {self.expected}")

    def error(self, root: Path, what: str) -> DatasetLayoutError:
        return DatasetLayoutError(f"{self.kind}: {what} in {root}; expected layout: {self.expected}")


def safe_id(name: str) -> str:
    """A path-safe class id from a display name: ASCII letters, digits, '.', '_', '-', never a leading dot
    ('F/A-18' -> 'F_A-18', 'Ram C/V Cargo Van Minivan 2012' -> 'Ram_C_V_Cargo_Van_Minivan_2012')."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("_").lstrip(".")
    return slug or "class"


def class_ids(names: list[str]) -> list[str]:
    """Unique safe ids for display names in label order (a clash gets the label appended)."""
    ids, seen = [], set()
    for label, name in enumerate(names):
        candidate = safe_id(name)
        if candidate in seen:
            candidate = f"{candidate}_{label}"
        seen.add(candidate)
        ids.append(candidate)
    return ids


def make_table(rows: list[tuple[str, str, int]], names: list[str], ids: list[str] | None = None) -> pd.DataFrame:
    """The canonical table from (split, absolute path, label) rows and display names (and ids, default
    `class_ids(names)`) in label order."""
    ids = ids or class_ids(names)
    frame = pd.DataFrame(rows, columns=["split", "path", "label"])
    frame["label"] = frame["label"].astype(int)
    frame["class"] = [ids[i] for i in frame["label"]]
    frame["class_name"] = [names[i] for i in frame["label"]]
    return frame[COLUMNS]


def check_images_exist(table: pd.DataFrame, kind: str, root: Path, on_missing: str = "error") -> pd.DataFrame:
    """Split entries whose image file is missing: an error naming them (default), or, with
    on_missing='skip', dropped and returned in `table.attrs['skipped']` so the caller records them."""
    missing = [p for p in table["path"] if not Path(p).is_file()]
    if not missing:
        table.attrs["skipped"] = []
        return table
    if on_missing != "skip":
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise DatasetLayoutError(f"{kind}: {len(missing)} image(s) of the split are missing under {root}: {shown}")
    kept = table[~table["path"].isin(set(missing))].reset_index(drop=True)
    kept.attrs["skipped"] = missing
    return kept

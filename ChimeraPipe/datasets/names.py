"""Class names as the baselines spell them: DataDream's per-dataset lists (LoFT reuses them), shipped as data in
baseline_names.json. Prompts and the CLIP text head read these names, so the spelling changes every number.

A dataset's own metadata (CoOp's split-file name, the image folder, FGVC-Aircraft's variants.txt) is matched
to the list by its words (case, punctuation and word order aside: 'american_bulldog' is 'American Bulldog',
'2012 Tesla Model S Sedan' is 'Tesla Model S Sedan 2012'), so a subset or a re-labelled split file gets
the right names; a class the list does not have is an error naming it.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from .base import DatasetLayoutError


@functools.cache
def baseline_lists() -> dict[str, list[str]]:
    """Dataset kind -> the baselines' class names in their label order (the kinds DataDream covers)."""
    return json.loads((Path(__file__).with_name("baseline_names.json")).read_text(encoding="utf-8"))["kinds"]


def words(name: str) -> tuple[str, ...]:
    """The name's words, lower-cased and sorted: what two spellings of one class share."""
    return tuple(sorted(re.findall(r"[a-z0-9]+", name.lower())))


def baseline_spelling(kind: str, spellings: list[list[str]]) -> list[str] | None:
    """For each class (the spellings the dataset's metadata has for it, e.g. CoOp's name and the folder), the
    baselines' name; None when the baselines have no list for `kind`."""
    names = baseline_lists().get(kind)
    if names is None:
        return None
    by_words = {words(n): n for n in names}
    out = []
    for candidates in spellings:
        match = next((by_words[words(c)] for c in candidates if words(c) in by_words), None)
        if match is None:
            raise DatasetLayoutError(f"{kind}: class {candidates[0]!r} is not in the baselines' class list "
                                     f"(DataDream's SUBSET_NAMES); is this the dataset's official split? "
                                     f"`class_names: coop` reads the names from the split file instead")
        out.append(match)
    return out

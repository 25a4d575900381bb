"""Classes grouped into parts: one workflow job per part instead of one per class.

At paper scale (700 classes x 8 methods) one job per class and stage puts ~13k jobs in the DAG, which
Snakemake needs ~40 s just to plan, and a cluster pays scheduling and model loading per job. A part is a
run of `classes_per_job` consecutive classes. Its job writes each class's files in the class's own
folder, a `done.json` stamp beside them, and last a part index (the rule's declared output) naming the
files. A re-run keeps every class whose stamp still matches its inputs and settings, so an interrupted
part resumes class by class (and each class's stage resumes from its own checkpoint).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ..core.hashing import settings_digest
from ..core.io import write_json

log = logging.getLogger(__name__)

STAMP = "done.json"


class PartIndexError(ValueError):
    pass


def partition(classes: list[str], per_job: int) -> dict[str, list[str]]:
    """Part name -> its classes, in order: p000, p001, ... (wider names beyond 1000 parts)."""
    if per_job < 1:
        raise ValueError(f"classes_per_job must be >= 1, got {per_job}")
    chunks = [classes[i:i + per_job] for i in range(0, len(classes), per_job)]
    width = max(3, len(str(len(chunks) - 1)))
    return {f"p{i:0{width}d}": chunk for i, chunk in enumerate(chunks)}


def fingerprint(settings: dict) -> str:
    """A digest of everything a class's result depends on (settings, input digests, model locations)."""
    return settings_digest(settings)


def is_done(class_dir: Path, print_: str, files: dict[str, str]) -> bool:
    stamp = class_dir / STAMP
    if not stamp.is_file():
        return False
    recorded = json.loads(stamp.read_text())
    return recorded.get("fingerprint") == print_ and all(Path(f).is_file() for f in files.values())


def run_classes(classes: list[str], class_dir: Callable[[str], Path], settings: Callable[[str], dict],
                files: Callable[[str], dict[str, str]], work: Callable[[str], None], stage: str) -> dict:
    """Run `work(cls)` for each class not already done with the same settings; return the part's entries.

    `settings(cls)` is what the result depends on (fingerprinted); `files(cls)` the files `work` writes.
    """
    return run_class_groups(classes, class_dir, settings, files, lambda group: work(group[0]), 1, stage)


def run_class_groups(classes: list[str], class_dir: Callable[[str], Path], settings: Callable[[str], dict],
                     files: Callable[[str], dict[str, str]], work: Callable[[list[str]], None],
                     group_size: int | None, stage: str) -> dict:
    """As `run_classes`, but the classes not done yet go to `work(group)` together, `group_size` at a time (None:
    all of them in one group), in class order; each class is stamped once its group is done."""
    todo, entries = [], {}
    for cls in classes:
        directory, print_, outputs = Path(class_dir(cls)), fingerprint(settings(cls)), files(cls)
        if is_done(directory, print_, outputs):
            log.info("%s %s: kept (done with these inputs and settings)", stage, cls)
        else:
            (directory / STAMP).unlink(missing_ok=True)
            todo.append(cls)
        entries[cls] = {"fingerprint": print_, "files": outputs}
    size = group_size or max(1, len(todo))
    for start in range(0, len(todo), size):
        group = todo[start:start + size]
        log.info("%s %s", stage, ", ".join(group))
        work(group)
        for cls in group:
            write_json(Path(class_dir(cls)) / STAMP, {"fingerprint": entries[cls]["fingerprint"],
                                                       "files": entries[cls]["files"]})
    return entries


def write_index(path: str | Path, entries: dict, **extra) -> None:
    """The part index: its classes' entries, and `extra` keys beside them (e.g. the job's hardware)."""
    write_json(path, {"classes": entries, **extra})


def read_index(path: str | Path) -> dict[str, dict]:
    """Class -> {"fingerprint", "files"} from a part index; missing class files are an error naming them."""
    try:
        entries = json.loads(Path(path).read_text())["classes"]
    except (OSError, ValueError, KeyError) as err:
        raise PartIndexError(f"{path}: not a readable part index ({err})") from None
    for cls, entry in entries.items():
        missing = [f for f in entry["files"].values() if not Path(f).is_file()]
        if missing:
            raise PartIndexError(f"{path}: class {cls!r} lists missing files {missing}; re-run its stage "
                                 f"(snakemake --forcerun on that rule)")
    return entries


def class_files(index_paths: list[str], key: str) -> dict[str, str]:
    """Class -> its file named `key`, over several part indexes (in class order)."""
    return {cls: entry["files"][key] for path in index_paths for cls, entry in read_index(path).items()}

"""Atomic writes: a stage killed half-way never leaves a file that looks finished."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the functions that need it: the Snakefile imports this module
    import numpy as np
    import torch


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` as a whole when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp"))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_image(path: str | Path, image) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def canonical_safetensors_header(path: str | Path) -> None:
    """Rewrite a safetensors file's header in place with its metadata keys sorted.

    safetensors serialises `__metadata__` from a hash map, so the same tensors and metadata come out with their
    keys in another order from one process to the next; sorted, the same content gives the same bytes. The
    compact JSON written here is never longer than the original (minimal escapes, no spaces), and the header keeps
    its length, padded with spaces as safetensors pads it, so the data offsets stand."""
    with open(path, "r+b") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        if len(header.get("__metadata__") or {}) < 2:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > size:
            raise RuntimeError(f"{path}: the sorted safetensors header ({len(text)} bytes) outgrew the original "
                               f"({size} bytes)")
        f.seek(8)
        f.write(text.ljust(size, b" "))


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors' save_file, atomic, with the metadata in a fixed order (canonical_safetensors_header)."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        canonical_safetensors_header(tmp)


def _tensor_file(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such tensor file")
    return str(path)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(_tensor_file(path))


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """`save_tensors` for numpy arrays, without torch: the same safetensors file."""
    import numpy as np
    from safetensors.numpy import save_file

    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), metadata=metadata)
        canonical_safetensors_header(tmp)


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """`load_tensors` as numpy arrays, without torch."""
    from safetensors.numpy import load_file

    return load_file(_tensor_file(path))

"""Digests that decide what is reused: of files, of settings, and seeds derived from names. Torch-free."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def stable_seed(*parts) -> int:
    """A 31-bit seed derived from any parts (class names, indices): stable across runs and machines."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def settings_digest(settings) -> str:
    """A digest of everything a result depends on (settings, input digests, model locations): key order
    does not matter; values that JSON cannot write are taken by their str()."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:32]

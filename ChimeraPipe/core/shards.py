"""A set of generated images as a few tar shards instead of a file per image.

Layout (webdataset's): a shard `shard-<first>-<last>.tar` holds, per image j, `<j>.<ext>` (the encoded image)
and `<j>.json` (its manifest row), in index order. An image is named by a reference `<shard>::<member>`,
which `core.images.load_rgb` reads like a path (a seek and a read: the member offsets of a shard are read
once per process).

Written batch by batch: every finished batch is first its own small tar (`.pending-<first>-<last>.tar`,
written atomically), so a killed job keeps every finished batch; once `shard_size` images are pending they
become one shard, and a shard once written is never rewritten (a larger volume adds shards).
"""
from __future__ import annotations

import functools
import io
import json
import os
import re
import tarfile
from pathlib import Path

from .io import atomic_path

REF_SEP = "::"
FORMATS = {"png": "png", "jpeg": "jpg", "webp": "webp"}   # generate.format -> member extension
_RANGE = re.compile(r"^\.?(?:shard|pending)-(\d+)-(\d+)\.tar$")


def encode(image, fmt: str, quality: int) -> bytes:
    """The image's bytes in `fmt`: png (lossless), jpeg or webp at `quality`."""
    if fmt not in FORMATS:
        raise ValueError(f"generate.format must be one of {sorted(FORMATS)}, got {fmt!r}")
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG")
    elif fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()


def is_ref(path) -> bool:
    """A shard reference '<...>.tar::<member>' (not a plain file path)."""
    text = str(path)
    return REF_SEP in text and text.split(REF_SEP, 1)[0].endswith(".tar")


def ref(shard: str | Path, member: str) -> str:
    return f"{shard}{REF_SEP}{member}"


@functools.lru_cache(maxsize=256)
def _members(shard: str, pid: int, mtime_ns: int) -> dict[str, tuple[int, int]]:
    """member -> (data offset, size) of a shard (cached per process and file version)."""
    with tarfile.open(shard, "r:") as tar:
        return {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}


def read(reference: str) -> bytes:
    """The bytes of the member a reference names; a missing shard or member is an error naming both."""
    shard, member = str(reference).split(REF_SEP, 1)
    try:
        members = _members(shard, os.getpid(), os.stat(shard).st_mtime_ns)
    except (OSError, tarfile.TarError) as err:
        raise FileNotFoundError(f"{shard}: cannot read shard ({err})") from err
    if member not in members:
        raise FileNotFoundError(f"{shard}: no member {member!r}")
    offset, size = members[member]
    with open(shard, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def _write_tar(path: Path, items: list[tuple[int, bytes, dict]], ext: str) -> None:
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for index, data, row in sorted(items, key=lambda item: item[0]):
            for name, payload in ((f"{index:06d}.{ext}", data), (f"{index:06d}.json",
                                                                  json.dumps(row, sort_keys=True).encode())):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(payload), 0   # mtime 0: the same images give the same bytes
                tar.addfile(info, io.BytesIO(payload))


class ShardStore:
    """The shards of one set in `folder`, `shard_size` images each (the last ones of a set may hold fewer)."""

    def __init__(self, folder: str | Path, shard_size: int, fmt: str):
        if shard_size < 1:
            raise ValueError(f"generate.shard_size must be at least 1, got {shard_size}")
        self.folder, self.shard_size, self.ext = Path(folder), shard_size, FORMATS[fmt]
        self.folder.mkdir(parents=True, exist_ok=True)

    def _files(self, pattern: str) -> list[Path]:
        return sorted(p for p in self.folder.glob(pattern) if _RANGE.match(p.name))

    def shards(self) -> list[Path]:
        return self._files("shard-*.tar")

    def _pending(self) -> list[Path]:
        return self._files(".pending-*.tar")

    def _image_members(self, path: Path) -> dict[int, str]:
        members = _members(str(path), os.getpid(), os.stat(path).st_mtime_ns)
        return {int(name.split(".")[0]): name for name in members if name.endswith(f".{self.ext}")}

    def done(self) -> dict[int, str]:
        """index -> reference of every image kept, in shards or in finished batches."""
        found = {}
        for path in self._pending() + self.shards():       # a shard wins over a batch it was merged from
            found.update({i: ref(path, name) for i, name in self._image_members(path).items()})
        return dict(sorted(found.items()))

    def add_batch(self, items: list[tuple[int, bytes, dict]]) -> None:
        """Keep a finished batch (index, encoded image, manifest row); merge into a shard when enough wait."""
        if not items:
            return
        first, last = min(i for i, _, _ in items), max(i for i, _, _ in items)
        _write_tar(self.folder / f".pending-{first:06d}-{last:06d}.tar", items, self.ext)
        self.compact(final=False)

    def _read_items(self, path: Path) -> list[tuple[int, bytes, dict]]:
        items = []
        with tarfile.open(path, "r:") as tar:
            rows = {}
            for member in tar.getmembers():
                index, _, kind = member.name.partition(".")
                payload = tar.extractfile(member).read()
                rows.setdefault(int(index), {})[kind] = payload
        for index, parts in rows.items():
            items.append((index, parts[self.ext], json.loads(parts["json"])))
        return items

    def compact(self, final: bool = True) -> None:
        """Merge finished batches into shards of `shard_size` (all of them when `final`); drop batches whose
        images are all in shards already (a merge killed before its clean-up). Batches are read only when a
        shard is to be written (their headers say how many images wait)."""
        in_shards = set()
        for path in self.shards():
            in_shards.update(self._image_members(path))
        pending = {}
        for path in self._pending():
            indices = set(self._image_members(path)) - in_shards
            if indices:
                pending[path] = indices
            else:
                path.unlink()
        waiting = sorted(set().union(*pending.values())) if pending else []
        if len(waiting) < self.shard_size and not (final and waiting):
            return
        items = {}
        for path in pending:
            items.update({item[0]: item for item in self._read_items(path) if item[0] in set(waiting)})
        while len(waiting) >= self.shard_size or (final and waiting):
            chunk = [items[i] for i in waiting[:self.shard_size]]
            _write_tar(self.folder / f"shard-{chunk[0][0]:06d}-{chunk[-1][0]:06d}.tar", chunk, self.ext)
            waiting = waiting[self.shard_size:]
        left = set(waiting)
        for path, indices in pending.items():   # a batch now in a shard goes; one half merged keeps the rest
            if indices <= left:
                continue
            rest = sorted(indices & left)
            if rest:                            # written before the old batch goes: nothing is ever lost
                _write_tar(self.folder / f".pending-{rest[0]:06d}-{rest[-1]:06d}.tar", [items[i] for i in rest],
                           self.ext)
            path.unlink()

    def clear(self) -> None:
        for path in self.shards() + self._pending():
            path.unlink()

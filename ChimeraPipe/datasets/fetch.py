"""Fetch a dataset into its root in the layout its reader expects (coop.py, official.py): the official archives
(URLs and MD5s as torchvision's dataset classes publish them), CoOp's split files from Google Drive (ids from
CoOp's DATASETS.md, through gdown), ISIC 2018 Task 3 from the challenge's public bucket.

Safe to interrupt: a download goes to `<root>/.fetch/<file>.part` through torchvision's downloader (gdown for
Google Drive files) and takes its name only when it is whole: an interrupted one is started again from scratch.
A body cut short is caught by the published MD5 where there is one and by the archive's own integrity (gzip's
CRC, zip's directory) where there is not: every download without an MD5 is an archive, and an archive that
does not extract is deleted. An archive is extracted into a temporary folder beside the root and its parts
moved into place (a journal lists them, so a re-run replaces its own half-moved parts); a stamp
`<root>/.fetch/<file>.json` (size, MD5, SHA-256) is written last, and a download with a stamp is skipped.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import socket
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from ..core.io import write_json

log = logging.getLogger(__name__)

WORK = ".fetch"           # under the dataset root: downloads in progress, extraction journals, stamps
CHUNK = 1 << 20
TIMEOUT_S = 60          # a server silent this long breaks the download off
GDRIVE_URL = "https://drive.google.com/uc?id={}"


class FetchError(RuntimeError):
    """A download or extraction that failed; nothing it left looks complete, and a re-run starts it over."""


class ManualDownloadError(FetchError):
    """A dataset (or part of one) that cannot be fetched automatically: the message says what to download and
    where to put it."""


@dataclass(frozen=True)
class Download:
    file: str                                   # saved under this name (what `urls` overrides are keyed by)
    url: str | None = None                      # the official URL
    md5: str | None = None                      # the published checksum, where there is one
    gdrive: str | None = None                   # a Google Drive file id (CoOp's split files), fetched with gdown
    members: tuple[tuple[str, str], ...] = ()   # (path in the extracted archive, path under the root); "." in
    #                                             the root: the folder's children; () for a plain file: itself
    inner: str | None = None                    # an archive inside the archive, extracted in turn

    @property
    def source(self) -> str:
        return self.url or GDRIVE_URL.format(self.gdrive)


@dataclass(frozen=True)
class Recipe:
    downloads: tuple[Download, ...]
    manual: tuple[str, ...] = ()                # paths under the root that must be put there by hand
    instructions: str = ""                      # how to get them


def _split(name: str, gdrive: str) -> Download:
    return Download(f"split_zhou_{name}.json", gdrive=gdrive)


_VGG = "https://www.robots.ox.ac.uk/~vgg/data"
_ISIC = "https://isic-challenge-data.s3.amazonaws.com/2018"
_ISIC_PARTS = [f"ISIC2018_Task3_{part}_{what}" for part in ("Training", "Validation", "Test")
               for what in ("Input", "GroundTruth")]

RECIPES = {
    "caltech101": Recipe((
        Download("caltech-101.zip", "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",
                 "3138e1922a9193bfa496528edbbc45d0", inner="caltech-101/101_ObjectCategories.tar.gz",
                 members=(("101_ObjectCategories", "101_ObjectCategories"),)),
        _split("Caltech101", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"))),
    "oxford_pets": Recipe((
        Download("images.tar.gz", f"{_VGG}/pets/data/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c",
                 members=(("images", "images"),)),
        Download("annotations.tar.gz", f"{_VGG}/pets/data/annotations.tar.gz", "95a8c909bbe2e81eed6a22bccdf3f68f",
                 members=(("annotations", "annotations"),)),
        _split("OxfordPets", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"))),
    "stanford_cars": Recipe(
        (_split("StanfordCars", "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),),
        manual=("cars_train/", "cars_test/", "devkit/", "cars_test_annos_withlabels.mat"),
        instructions="Stanford Cars' official site is gone and its files may not be re-hosted here: get "
                     "cars_train.tgz, cars_test.tgz, car_devkit.tgz and cars_test_annos_withlabels.mat from a copy "
                     "you are licensed to use (e.g. a lab mirror) and extract them so that the root holds"),
    "flowers102": Recipe((
        Download("102flowers.tgz", f"{_VGG}/flowers/102/102flowers.tgz", "52808999861908f626f3c1f4e79d11fa",
                 members=(("jpg", "jpg"),)),
        Download("imagelabels.mat", f"{_VGG}/flowers/102/imagelabels.mat", "e0620be6f572b9609742df49c70aed4d"),
        Download("cat_to_name.json", gdrive="1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0"),
        _split("OxfordFlowers", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"))),
    "food101": Recipe((
        Download("food-101.tar.gz", "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
                 "85eeb15f3717b99a5da872d97d918f87",
                 members=(("food-101/images", "images"), ("food-101/meta", "meta"))),
        _split("Food101", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"))),
    "dtd": Recipe((
        Download("dtd-r1.0.1.tar.gz", f"{_VGG}/dtd/download/dtd-r1.0.1.tar.gz", "fff73e5086ae6bdbea199a49dfb8a4c1",
                 members=(("dtd/images", "images"), ("dtd/imdb", "imdb"), ("dtd/labels", "labels"))),
        _split("DescribableTextures", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"))),
    "eurosat": Recipe((
        Download("EuroSAT.zip", "https://huggingface.co/datasets/torchgeo/eurosat/resolve/"
                 "c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip", "c8fa014336c82ac7804f0398fcb19387",
                 members=(("2750", "2750"),)),
        _split("EuroSAT", "1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"))),
    "sun397": Recipe((
        Download("SUN397.tar.gz", "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz",
                 "8ca2778205c41d23104230ba66911c7a", members=(("SUN397", "SUN397"),)),
        _split("SUN397", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"))),
    "fgvc_aircraft": Recipe((   # no published checksum: the stamp records the SHA-256 of what was fetched
        Download("fgvc-aircraft-2013b.tar.gz", f"{_VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                 members=(("fgvc-aircraft-2013b/data", "."),)),)),
    "isic2018": Recipe(tuple(Download(f"{part}.zip", f"{_ISIC}/{part}.zip", members=((part, part),))
                             for part in _ISIC_PARTS)),
    "cifar10": Recipe((
        Download("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                 "c58f30108f718f92721af3b95e74349a", members=(("cifar-10-batches-py", "cifar-10-batches-py"),)),)),
}


def recipe(kind: str) -> Recipe:
    if kind not in RECIPES:
        raise ManualDownloadError(f"{kind}: no download is known for this kind; lay the dataset out by hand "
                                  "(the layout is in ChimeraPipe/datasets)")
    return RECIPES[kind]


# --- one download -----------------------------------------------------------------------------------------

def _http(url: str, part: Path) -> None:
    """Download `url` into `part` with torchvision's downloader (redirects followed), from scratch: a part file
    left by a download that broke off is dropped first, never taken for the whole file."""
    from torchvision.datasets.utils import download_url

    part.unlink(missing_ok=True)
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_S)   # torchvision's urlopen takes none: a dead server must not hang the job
    try:
        download_url(url, str(part.parent), part.name)
    except (OSError, http.client.HTTPException, urllib.error.URLError, RuntimeError) as err:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: the download failed ({type(err).__name__}: {err}); nothing was kept: run the "
                         "fetch again") from None
    finally:
        socket.setdefaulttimeout(before)


def _gdrive(file_id: str, part: Path) -> None:
    """A Google Drive file (CoOp's split files) into `part`, with torchvision's gdown-based downloader."""
    from torchvision.datasets.utils import download_file_from_google_drive

    part.unlink(missing_ok=True)
    try:
        download_file_from_google_drive(file_id, str(part.parent), part.name)
    except Exception as err:   # gdown raises its own and requests' errors
        raise FetchError(f"Google Drive file {file_id}: {type(err).__name__}: {err}") from None
    if not part.is_file():
        raise FetchError(f"Google Drive file {file_id}: nothing fetched (quota, or the file is gone)")


def _digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def download(item: Download, work: Path, url: str | None = None) -> dict:
    """The verified file `work/<file>` and its record (url, size, md5, sha256); a wrong checksum deletes it."""
    target, part = work / item.file, work / f"{item.file}.part"
    url = url or item.url
    if not target.is_file():
        work.mkdir(parents=True, exist_ok=True)
        log.info("fetching %s from %s", item.file, url or f"Google Drive {item.gdrive}")
        _http(url, part) if url else _gdrive(item.gdrive, part)
        os.replace(part, target)
    md5, sha256 = _digests(target)
    if item.md5 and md5 != item.md5:
        target.unlink()
        raise FetchError(f"{url or item.source}: MD5 {md5} is not the published {item.md5} (a corrupt or changed "
                         "download; deleted: run the fetch again)")
    return {"file": item.file, "url": url or item.source, "size": target.stat().st_size, "md5": md5,
            "md5_published": item.md5, "sha256": sha256}


# --- into the dataset root --------------------------------------------------------------------------------

def _extract(archive: Path, into: Path, inner: str | None) -> None:
    from torchvision.datasets.utils import extract_archive

    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    try:
        extract_archive(str(archive), str(into))
        if inner:
            extract_archive(str(into / inner), str(into))
    except Exception as err:   # tarfile / zipfile / gzip errors
        shutil.rmtree(into, ignore_errors=True)
        archive.unlink(missing_ok=True)   # cut short or corrupt: the next fetch downloads it again
        raise FetchError(f"{archive.name}: cannot extract ({type(err).__name__}: {err}): the download is "
                         "incomplete or corrupt; deleted: run the fetch again") from None


def _moves(item: Download, extracted: Path, root: Path) -> list[tuple[Path, Path]]:
    moves = []
    for inside, dest in item.members:
        source = extracted / inside
        if not source.exists():
            raise FetchError(f"{item.file}: holds no {inside} (not the expected archive)")
        if dest == ".":
            moves += [(child, root / child.name) for child in sorted(source.iterdir())]
        else:
            moves.append((source, root / dest))
    return moves


def _place(item: Download, work: Path, root: Path) -> list[str]:
    """Move the download's content into the root; returns the paths placed (relative to the root)."""
    archive = work / item.file
    if not item.members:
        os.replace(archive, root / item.file)
        return [item.file]
    extracted = work / f"{item.file}.extracted"
    journal = work / f"{item.file}.moving.json"
    ours = set(json.loads(journal.read_text())) if journal.is_file() else set()
    _extract(archive, extracted, item.inner)
    moves = _moves(item, extracted, root)
    placed = [dest.relative_to(root).as_posix() for _, dest in moves]
    clash = [p for p in placed if (root / p).exists() and p not in ours]
    if clash:
        raise FetchError(f"{root}: {', '.join(clash)} already there but not placed by a fetch of {item.file}; "
                         "move it away (or delete it) and fetch again")
    write_json(journal, sorted(ours | set(placed)))
    for source, dest in moves:
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        os.replace(source, dest)
    shutil.rmtree(extracted, ignore_errors=True)
    archive.unlink()
    journal.unlink()
    return placed


def _done(stamp: Path, root: Path) -> dict | None:
    try:
        record = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if all((root / p).exists() for p in record.get("placed", [])) else None


def fetch_dataset(kind: str, root: str | Path, urls: dict[str, str] | None = None) -> list[dict]:
    """Fetch dataset `kind` into `root`; returns a record per download (url, size, md5, sha256, what it placed).
    `urls` replaces the official URL of named downloads (a mirror). Parts that must come by hand are checked
    last, and their absence is a ManualDownloadError saying what to put where."""
    root = Path(root).expanduser()
    if kind == "sklearn_digits":   # shipped with scikit-learn: nothing to download
        from .official import SklearnDigits

        SklearnDigits.fetch(root)
        return [{"file": "digits.csv.gz", "url": "scikit-learn's sklearn/datasets/data/digits.csv.gz",
                 "placed": ["digits.csv.gz"]}]
    plan = recipe(kind)
    unknown = sorted(set(urls or {}) - {d.file for d in plan.downloads})
    if unknown:
        raise FetchError(f"datasets.*.urls: {unknown} are not downloads of {kind}; "
                         f"its downloads: {[d.file for d in plan.downloads]}")
    work = root / WORK
    work.mkdir(parents=True, exist_ok=True)
    records = []
    for item in plan.downloads:
        stamp = work / f"{item.file}.json"
        record = _done(stamp, root)
        if record is None:
            record = download(item, work, (urls or {}).get(item.file))
            record["placed"] = _place(item, work, root)
            write_json(stamp, record)   # last: a download with a stamp is complete
        records.append(record)
    missing = [p for p in plan.manual if not (root / p.rstrip("/")).exists()]
    if missing:
        raise ManualDownloadError(f"{kind}: {', '.join(missing)} missing in {root}. {plan.instructions} "
                                  f"{', '.join(plan.manual)} (the split file is fetched already).")
    return records

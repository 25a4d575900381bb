"""Test fixtures: miniature replicas of each dataset in its official file layout and formats (JSON split files, txt
lists, CSV ground truth, pickle batches, image folders): what the tests read, what the DAG benchmark
plans, and a way to try a kind without downloading it. Class names include the awkward ones of the
real datasets ('F/A-18', 'Ram C/V Cargo Van Minivan 2012', a leading dot, unicode)."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ChimeraPipe.datasets.official import ISIC_CLASSES

# (CoOp display name, raw folder or file stem) per kind: the replicas' default classes.
COOP_CLASSES = {
    "caltech101": [("airplane", "airplanes"), ("face", "Faces"), ("dalmatian", "dalmatian")],
    "oxford_pets": [("abyssinian", "Abyssinian"), ("great pyrenees", "great_pyrenees"), ("pug", "pug")],
    "stanford_cars": [("2012 Ram C/V Cargo Van Minivan", ""), ("2012 Tesla Model S Sedan", ""),
                      ("2000 AM General Hummer SUV", "")],
    "flowers102": [("pink primrose", ""), ("hard-leaved pocket orchid", ""), ("canterbury bells", "")],
    "food101": [("apple pie", "apple_pie"), ("crème brûlée", "creme_brulee"), ("pho", "pho")],
    "dtd": [("banded", "banded"), ("blotchy", "blotchy"), ("zigzagged", "zigzagged")],
    "eurosat": [("Annual Crop Land", "AnnualCrop"), ("Forest", "Forest"), ("Herbaceous Vegetation Land",
                                                                          "HerbaceousVegetation")],
    "sun397": [("abbey", "a/abbey"), ("airplane cabin", "a/airplane_cabin"), ("apse indoor", "a/apse/indoor")],
}
AIRCRAFT_CLASSES = ["707-320", "F/A-18", ".Falcon 2000"]
SPLIT_COUNTS = {"train": 5, "val": 2, "test": 2}


def _image(path: Path, rng: np.random.Generator, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _coop_rel(kind: str, folder: str, index: int, counter: list[int]) -> str:
    """Relative image path as the kind's split file writes it."""
    counter[0] += 1
    if kind == "oxford_pets":
        return f"{folder}_{index + 1}.jpg"
    if kind == "stanford_cars":
        return f"cars_{'train' if counter[0] % 2 else 'test'}/{counter[0]:05d}.jpg"
    if kind == "flowers102":
        return f"image_{counter[0]:05d}.jpg"
    if kind == "dtd":
        return f"{folder}/{folder}_{index + 1:04d}.jpg"
    if kind == "eurosat":
        return f"{folder}/{folder}_{index + 1}.jpg"
    if kind == "sun397":
        return f"{folder}/sun_{counter[0]:06d}.jpg"
    return f"{folder}/image_{index + 1:04d}.jpg"  # caltech101, food101


def write_coop(kind: str, root: Path, classes: list[tuple[str, str]] | None = None, counts: dict | None = None,
               images: bool = True, size: tuple[int, int] = (40, 30), seed: int = 0) -> Path:
    from ChimeraPipe.datasets.coop import COOP_DATASETS

    spec = COOP_DATASETS[kind]
    classes = classes or COOP_CLASSES[kind]
    counts = counts or SPLIT_COUNTS
    rng, counter, index = np.random.default_rng(seed), [0], {}
    entries = {split: [] for split in counts}
    for split, count in counts.items():
        for label, (name, folder) in enumerate(classes):
            for _ in range(count):
                i = index[label] = index.get(label, -1) + 1
                rel = _coop_rel(kind, folder, i, counter)
                entries[split].append([rel, label, name])
                if images:
                    _image(root / spec.image_dir / rel, rng, size)
    (root / spec.image_dir).mkdir(parents=True, exist_ok=True)
    (root / spec.split_file).write_text(json.dumps(entries))
    if kind == "flowers102":
        (root / "cat_to_name.json").write_text(json.dumps({str(i + 1): n for i, (n, _) in enumerate(classes)}))
    return root


def write_aircraft(root: Path, classes: list[str] | None = None, counts: dict | None = None, images: bool = True,
                   seed: int = 0) -> Path:
    classes, counts = classes or AIRCRAFT_CLASSES, counts or SPLIT_COUNTS
    rng, next_id = np.random.default_rng(seed), 1000000
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "variants.txt").write_text("\n".join(classes) + "\n")
    for split, count in counts.items():
        lines = []
        for name in classes:
            for _ in range(count):
                next_id += 1
                lines.append(f"{next_id:07d} {name}")
                if images:
                    _image(root / "images" / f"{next_id:07d}.jpg", rng, (48, 32))
        (root / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_isic(root: Path, counts: dict | None = None, with_test: bool = True, images: bool = True,
               seed: int = 0) -> Path:
    counts, codes = counts or SPLIT_COUNTS, list(ISIC_CLASSES)
    rng, n = np.random.default_rng(seed), 0
    for split, part in (("train", "Training"), ("val", "Validation"), ("test", "Test")):
        if split == "test" and not with_test:
            continue
        rows = []
        for label, _ in enumerate(codes):
            for _ in range(counts[split]):
                n += 1
                name = f"ISIC_{n:07d}"
                rows.append({"image": name, **{c: float(c == codes[label]) for c in codes}})
                if images:
                    _image(root / f"ISIC2018_Task3_{part}_Input" / f"{name}.jpg", rng, (60, 45))
        truth = root / f"ISIC2018_Task3_{part}_GroundTruth" / f"ISIC2018_Task3_{part}_GroundTruth.csv"
        truth.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(truth, index=False)
    return root


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, per_class: int = 2, seed: int = 0) -> Path:
    """cifar-10-batches-py as the official archive holds it: 5 train batches, a test batch, batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [label for label in range(10) for _ in range(per_class)]
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))]}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [n.encode() for n in CIFAR_CLASSES], b"num_vis": 3072}, handle, protocol=2)
    return root


def write_imagefolder(root: Path, classes: list[str] | None = None, counts: dict | None = None,
                      seed: int = 0) -> Path:
    classes, counts = classes or ["circle", "square"], counts or SPLIT_COUNTS
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for name in classes:
            for i in range(count):
                _image(root / split / name / f"{i:03d}.png", rng, (40, 40))
    return root


def numbered_classes(kind: str, count: int):
    """`count` classes for replicas at a real dataset's class count: the baselines' own names where the kind
    has a list (so the default naming finds them), else made-up ones in the kind's naming."""
    from ChimeraPipe.datasets.base import safe_id
    from ChimeraPipe.datasets.names import baseline_lists

    listed = baseline_lists().get(kind, [])
    if count <= len(listed):
        if kind == "fgvc_aircraft":
            return listed[:count]
        return [(name, ("s/" if kind == "sun397" else "") + safe_id(name)) for name in listed[:count]]
    if kind == "fgvc_aircraft":
        return [f"Variant {i:03d}" for i in range(count)]
    if kind == "stanford_cars":
        return [(f"2012 Make Model {i:03d}", "") for i in range(count)]
    if kind == "sun397":
        return [(f"scene {i:03d}", f"s/scene_{i:03d}") for i in range(count)]
    return [(f"class {i:03d}", f"class_{i:03d}") for i in range(count)]


def write_replica(kind: str, root: str | Path, n_classes: int | None = None, **options) -> Path:
    """A miniature replica of dataset `kind` at root (created); `n_classes` made-up classes instead of the
    default awkward few (kinds with a fixed class list, ISIC and CIFAR-10, ignore it)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if n_classes is not None and kind not in ("isic2018", "cifar10"):
        options["classes"] = numbered_classes(kind, n_classes)
    if kind == "fgvc_aircraft":
        return write_aircraft(root, **options)
    if kind == "isic2018":
        return write_isic(root, **options)
    if kind == "cifar10":
        return write_cifar10(root, **options)
    if kind == "imagefolder":
        return write_imagefolder(root, **options)
    return write_coop(kind, root, **options)


# --- replica downloads: the official archives' layouts, served from 127.0.0.1 ----------------------------------

def _tar_gz(tree: Path, arcname: str) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tree, arcname=arcname)
    return buffer.getvalue()


def _zip(tree: Path, arcname: str) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(tree.rglob("*")):
            archive.write(path, f"{arcname}/{path.relative_to(tree).as_posix()}")
    return buffer.getvalue()


def replica_downloads(kind: str, work: Path, **options) -> dict[str, bytes]:
    """The files a fetch of `kind` downloads (ChimeraPipe.datasets.fetch.RECIPES), made from a replica: each
    archive in the official archive's layout (EuroSAT.zip holds 2750/, FGVC's tarball fgvc-aircraft-2013b/data/,
    Caltech's zip a nested 101_ObjectCategories.tar.gz, ...), split files as they are; `options` go to
    write_replica."""
    src = write_replica(kind, work / "replica", **options)
    files = {p.name: p.read_bytes() for p in src.glob("split_zhou_*.json")}
    if kind == "eurosat":
        files["EuroSAT.zip"] = _zip(src / "2750", "2750")
    elif kind == "fgvc_aircraft":
        files["fgvc-aircraft-2013b.tar.gz"] = _tar_gz(src, "fgvc-aircraft-2013b/data")
    elif kind == "caltech101":
        inner = work / "caltech-101"
        inner.mkdir(parents=True, exist_ok=True)
        (inner / "101_ObjectCategories.tar.gz").write_bytes(_tar_gz(src / "101_ObjectCategories",
                                                                    "101_ObjectCategories"))
        files["caltech-101.zip"] = _zip(inner, "caltech-101")
    elif kind == "dtd":
        for folder in ("imdb", "labels"):
            (src / folder).mkdir(exist_ok=True)
            (src / folder / "README").write_text(folder)
        tree = work / "dtd-tree"
        shutil.copytree(src, tree / "dtd", ignore=shutil.ignore_patterns("split_zhou_*"))
        files["dtd-r1.0.1.tar.gz"] = _tar_gz(tree / "dtd", "dtd")
    elif kind == "cifar10":
        files["cifar-10-python.tar.gz"] = _tar_gz(src / "cifar-10-batches-py", "cifar-10-batches-py")
    else:
        raise ValueError(f"no replica downloads for {kind}")
    return files


class FileServer:
    """A local HTTP server (127.0.0.1, a free port, a daemon thread that stops itself after `lifetime_s`)
    serving `files` by name (Range requests honoured); `cut` makes the next responses break off half-way and
    `corrupt` flips a byte of the named files. `requests` logs (path, Range header) of each request."""

    def __init__(self, files: dict[str, bytes], lifetime_s: float = 120.0):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files, self.cut, self.corrupt, self.requests = dict(files), 0, set(), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):   # noqa: N802 - the http.server API
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                if name in server.corrupt:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.cut:
                    server.cut -= 1
                    body, self.close_connection = body[:len(body) // 2], True
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client hung up (torchvision's redirect probe is a GET it does not read)

            def log_message(self, *_):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.timer = threading.Timer(lifetime_s, self.stop)
        self.timer.daemon = True
        self.timer.start()

    def urls(self, names=None) -> dict[str, str]:
        return {name: f"{self.base}/{name}" for name in (names if names is not None else self.files)}

    def stop(self) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

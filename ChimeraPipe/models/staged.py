"""Hub models staged on disk (rule `fetch_models`): the one reader of their manifests and of the lock file.

Layout: `<models_dir>/hub/<org>--<name>/` holds a model's files and a `manifest.json` (id, revision, files:
path -> size and sha256); `<models_dir>/models.lock.json` maps each model kind to the staged model
(spec, id, revision, files). The preflight checks a staged model against both; the report cites them.
Torch-free.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.hashing import file_digest
from .specs import BUILT_SPECS

LOCK_FILE = "models.lock.json"
MANIFEST = "manifest.json"
HUB_FOLDER = "hub"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
FETCH_HINT = "snakemake fetch_models --configfile <your config> (on a node with network: the login node)"


def staged_folder(models_dir: str | Path, repo_id: str) -> Path:
    """Where a hub model is staged: <models_dir>/hub/<org>--<name>."""
    return Path(models_dir) / HUB_FOLDER / repo_id.replace("/", "--")


def _files(entry: dict) -> dict[str, dict]:
    """path -> {"size", "sha256"} from a lock entry or manifest (a mapping, or a list of {"path", ...})."""
    files = entry.get("files") or {}
    if isinstance(files, list):
        files = {f["path"]: {k: v for k, v in f.items() if k != "path"} for f in files}
    return {str(path): {"size": int(meta["size"]), "sha256": str(meta["sha256"])} for path, meta in files.items()}


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def read_lock(models_dir: str | Path) -> dict[str, dict]:
    """kind -> {"spec", "id", "revision", "files": {path: {"size", "sha256"}}}; {} without a lock file."""
    lock = _read_json(Path(models_dir) / LOCK_FILE) or {}
    return {kind: {**entry, "files": _files(entry)} for kind, entry in lock.items()}


def read_manifest(folder: str | Path) -> dict | None:
    """A staged folder's manifest (id, revision, files), or None when there is none."""
    manifest = _read_json(Path(folder) / MANIFEST)
    return None if manifest is None else {**manifest, "files": _files(manifest)}


def weight_files(files: dict[str, dict]) -> dict[str, str]:
    """path -> sha256 of the weight files among a manifest's files."""
    return {path: meta["sha256"] for path, meta in sorted(files.items()) if path.endswith(WEIGHT_SUFFIXES)}


@dataclass
class StagedModel:
    """What is staged for one model kind, and what is wrong with it (empty `problems`: staged and verified)."""
    kind: str
    spec: str
    id: str | None = None
    revision: str | None = None
    folder: Path | None = None
    files: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def size(self) -> int:
        return sum(meta["size"] for meta in self.files.values())


def staged_model(kind: str, spec: str, models_dir: str | Path) -> StagedModel:
    """The lock's entry for `kind` and its staged folder, read but not verified (see verify_staged)."""
    lock_path = Path(models_dir) / LOCK_FILE
    entry = read_lock(models_dir).get(kind)
    model = StagedModel(kind, spec)
    if entry is None:
        model.problems.append(f"not staged ({lock_path} has no entry for {kind}): run {FETCH_HINT}")
        return model
    model.id, model.revision, model.files = entry.get("id"), entry.get("revision"), entry["files"]
    if entry.get("spec") != spec:
        model.problems.append(f"{lock_path} stages {entry.get('spec')!r} for {kind}, the config names {spec!r}: "
                              f"run {FETCH_HINT}")
        return model
    if not model.id:
        model.problems.append(f"{lock_path}: the {kind} entry names no hub id")
        return model
    model.folder = staged_folder(models_dir, model.id)
    manifest = read_manifest(model.folder)
    if manifest is None:
        model.problems.append(f"{model.folder / MANIFEST} is missing: run {FETCH_HINT}")
    elif (manifest.get("id"), manifest.get("revision"), manifest["files"]) != (model.id, model.revision,
                                                                                model.files):
        model.problems.append(f"{model.folder / MANIFEST} does not match {lock_path} (id, revision or files): "
                              f"run {FETCH_HINT}")
    if not model.files:
        model.problems.append(f"{lock_path}: the {kind} entry lists no files")
    return model


def verify_staged(model: StagedModel, checksums: bool = True) -> StagedModel:
    """Every file the lock lists is in the staged folder with its size and (with `checksums`) its SHA-256;
    each mismatch is added to `model.problems`."""
    if model.folder is None or not model.ok:
        return model
    for path, meta in sorted(model.files.items()):
        local = model.folder / path
        if not local.is_file():
            model.problems.append(f"{local} is missing: run {FETCH_HINT}")
        elif local.stat().st_size != meta["size"]:
            model.problems.append(f"{local}: {local.stat().st_size} bytes, the lock says {meta['size']}: "
                                  f"run {FETCH_HINT}")
        elif checksums and file_digest(local) != meta["sha256"]:
            model.problems.append(f"{local}: SHA-256 differs from the lock's: run {FETCH_HINT}")
    return model


def describe_model(kind: str, spec: str, models_dir: str | Path) -> dict:
    """What a model spec stands for, for a report to cite: random weights (`tiny`), built by the workflow, a
    local path, or a staged hub model with its id, revision and the SHA-256 of its weight files (the lock's)."""
    if spec == "tiny":
        return {"kind": kind, "spec": spec, "weights": "random (tiny, built offline by the workflow)"}
    if BUILT_SPECS.get(spec) == kind:
        return {"kind": kind, "spec": spec, "weights": "pretrained by the workflow (rule pretrain_base)"}
    local = Path(spec).expanduser()
    if local.exists():
        manifest = read_manifest(local) if local.is_dir() else None
        described = {"kind": kind, "spec": spec, "weights": f"local {'folder' if local.is_dir() else 'file'}"}
        if manifest is not None:
            described.update(id=manifest.get("id"), revision=manifest.get("revision"),
                             sha256=weight_files(manifest["files"]))
        return described
    model = staged_model(kind, spec, models_dir)
    if model.id is None or model.problems:
        return {"kind": kind, "spec": spec, "weights": "hub model, not staged: " + "; ".join(model.problems)}
    return {"kind": kind, "spec": spec, "weights": "hub model, staged", "id": model.id, "revision": model.revision,
            "sha256": weight_files(model.files)}

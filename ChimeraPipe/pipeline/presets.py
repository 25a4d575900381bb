"""Method presets: ChimeraLoRA, its ablations and the baselines, with the references' settings.

kind: real (classifier on the real shots only), synth (generation without an adapter), lora.
crop: the training views (see crops.py): box (box-constrained around the dataset's detected box:
    semantic boosting), random (DataDream: a random square of the shorter side), center (LoFT: the
    centre square).
mixing: how head weights are drawn per generated image (see generate.py).
guidance (synth only): text (plain text-to-image) or real (img2img from the shots at `strength`);
    clip_filter drops images zero-shot CLIP does not label as their class (He et al., ICLR 2023).

Where each value comes from is tabulated in the README ("Methods").
"""
from __future__ import annotations

import copy

DEFAULT_LORA_RANK = 16

# What a method's setting is when neither its preset nor its method_overrides entry says (a method defined
# from scratch with a `kind`): box crops, Dirichlet mixing, text guidance, no CLIP filter.
METHOD_DEFAULTS = {"crop": "box", "mixing": "dirichlet", "guidance": "text", "strength": 0.5, "clip_filter": False,
                   "alpha": None}


def option(settings: dict, key: str):
    """A method's setting `key` (METHOD_DEFAULTS where the method leaves it out)."""
    return settings.get(key, METHOD_DEFAULTS[key])

# The ablation family (the paper's component table: LoFT, + multi-head, + semantic boosting, both,
# and the shared-B variant). Its members share rank (the config's `lora_rank`), steps, warm-up,
# batch and the B learning rate, and differ only in head tying (share, the tied A's learning rate,
# mixing) and crops. A shared A gets ChimeraLoRA's lower learning rate (1e-4 vs 1e-3 for B).
FAMILY = ("loft", "loft_box", "chimera_nobox", "chimera", "shared_b", "classwise_split")
FAMILY_TRAIN = {"rank": DEFAULT_LORA_RANK, "steps": 600, "batch_per_image": 1, "warmup_steps": 10, "lr_b": 1e-3}
MULTI_HEAD = {"mixing": "dirichlet", "train": {**FAMILY_TRAIN, "share": "A", "lr_a": 1e-4}}
IMAGE_WISE = {"mixing": "pairs", "train": {**FAMILY_TRAIN, "share": "none", "lr_a": 1e-3}}

PRESETS: dict[str, dict] = {
    "real": {"kind": "real"},
    # IsSynth as He et al. run it few-shot: real guidance from the shots, CLIP filtering.
    "issynth": {"kind": "synth", "mixing": "single", "guidance": "real", "strength": 0.5, "clip_filter": True},
    "text2img": {"kind": "synth", "mixing": "single", "guidance": "text"},
    "loft": {"kind": "lora", "crop": "center", **IMAGE_WISE},
    "loft_box": {"kind": "lora", "crop": "box", **IMAGE_WISE},
    "chimera_nobox": {"kind": "lora", "crop": "center", **MULTI_HEAD},
    "chimera": {"kind": "lora", "crop": "box", **MULTI_HEAD},
    "shared_b": {"kind": "lora", "crop": "box", "mixing": "dirichlet",
                 "train": {**FAMILY_TRAIN, "share": "B", "lr_a": 1e-3, "lr_b": 1e-4}},
    # A control no paper ran: ChimeraLoRA with one class-wise head (A and B both shared) and its A/B
    # learning-rate split - is the gain from the per-image heads or from the learning rates?
    "classwise_split": {"kind": "lora", "crop": "box", "mixing": "single",
                        "train": {**FAMILY_TRAIN, "share": "both", "lr_a": 1e-4}},
    # DataDream (class-wise): one r16 LoRA on UNet + text encoder, lr 1e-4, warm-up 100, 200 epochs of
    # a batch of 8 with the partial batch kept: at 4 shots, 4 images per step.
    "datadream": {"kind": "lora", "crop": "random", "mixing": "single",
                  "train": {"share": "both", "rank": 16, "lr_a": 1e-4, "lr_b": 1e-4, "steps": 200,
                            "batch_per_image": 1, "warmup_steps": 100, "text_encoder_lora": True}},
}


def method_settings(name: str, overrides: dict | None = None, global_train: dict | None = None,
                    lora_rank: int = DEFAULT_LORA_RANK) -> dict:
    """The method's settings; later layers win: the preset (the ablation family at `lora_rank`), then the
    config's global `train:` section (`global_train`, applied to every LoRA method), then the method's own
    `method_overrides` entry (`overrides`: top-level keys, and `train` merged key by key)."""
    if name not in PRESETS and not (overrides and "kind" in overrides):
        raise KeyError(f"unknown method {name!r}; presets are {sorted(PRESETS)} (or define it with a 'kind')")
    settings = copy.deepcopy(PRESETS.get(name, {}))
    if name in FAMILY:
        settings["train"]["rank"] = lora_rank
    overrides = copy.deepcopy(overrides or {})
    own_train = overrides.pop("train", {})
    settings.update(overrides)
    if settings["kind"] == "lora":
        settings["train"] = {**settings.get("train", {}), **(global_train or {}), **own_train}
    return settings

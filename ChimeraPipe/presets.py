"""Method presets: ChimeraLoRA, its ablations and the baselines, with the anchors' published settings.

kind: real (classifier on the real shots only), synth (generation without an adapter: IsSynth), lora.
boxes: detect (the dataset's detect backend: semantic boosting) or full (whole-image crops).
mixing: how head weights are drawn per generated image (see generate.py).
"""
from __future__ import annotations

import copy

# ChimeraLoRA: shared A (class prior), one B head per image, A at lr 1e-4 and B at 1e-3.
CHIMERA_TRAIN = {"share": "A", "rank": 16, "lr_a": 1e-4, "lr_b": 1e-3, "steps": 600, "batch_per_image": 1,
                 "warmup_steps": 10}
# LoFT (image-wise): K independent r2 LoRAs at lr 1e-3, ~600 steps each, batch 1 per image.
LOFT_TRAIN = {"share": "none", "rank": 2, "lr_a": 1e-3, "lr_b": 1e-3, "steps": 600, "batch_per_image": 1,
              "warmup_steps": 10}

PRESETS: dict[str, dict] = {
    "real": {"kind": "real"},
    "issynth": {"kind": "synth", "mixing": "single"},
    "chimera": {"kind": "lora", "boxes": "detect", "mixing": "dirichlet", "train": CHIMERA_TRAIN},
    # Ablations (paper Table: multi-head only / semantic boosting only / shared B).
    "chimera_nobox": {"kind": "lora", "boxes": "full", "mixing": "dirichlet", "train": CHIMERA_TRAIN},
    "loft_box": {"kind": "lora", "boxes": "detect", "mixing": "pairs", "train": LOFT_TRAIN},
    "shared_b": {"kind": "lora", "boxes": "detect", "mixing": "dirichlet", "train": {**CHIMERA_TRAIN, "share": "B"}},
    # DataDream (class-wise): one LoRA r16 on UNet + text encoder, lr 1e-4, warm-up 100, batch 8.
    "datadream": {"kind": "lora", "boxes": "full", "mixing": "single",
                  "train": {"share": "both", "rank": 16, "lr_a": 1e-4, "lr_b": 1e-4, "steps": 200,
                            "batch_per_image": 2, "warmup_steps": 100, "text_encoder_lora": True}},
    # LoFT: generation fuses random pairs of the K image-wise LoRAs at 0.5/0.5.
    "loft": {"kind": "lora", "boxes": "full", "mixing": "pairs", "train": LOFT_TRAIN},
}


def method_settings(name: str, overrides: dict | None = None, train_overrides: dict | None = None) -> dict:
    """The preset `name` with per-method `overrides` (top-level keys, `train` merged) and then
    `train_overrides` applied to every LoRA method (e.g. a short demo schedule)."""
    if name not in PRESETS and not (overrides and "kind" in overrides):
        raise KeyError(f"unknown method {name!r}; presets are {sorted(PRESETS)} (or define it with a 'kind')")
    settings = copy.deepcopy(PRESETS.get(name, {}))
    overrides = copy.deepcopy(overrides or {})
    train = {**settings.get("train", {}), **overrides.pop("train", {})}
    settings.update(overrides)
    if settings["kind"] == "lora":
        settings["train"] = {**train, **(train_overrides or {})}
    return settings


def generation_tag(settings: dict, alpha: float, num_images: int) -> str:
    """Path tag of the synthetic set: only Dirichlet mixing depends on alpha."""
    if settings["kind"] == "real":
        return "real"
    if settings.get("mixing") == "dirichlet":
        return f"alpha{alpha:g}_n{num_images}"
    return f"n{num_images}"

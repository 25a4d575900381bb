"""What each classifier backend understands, as names (torch-free, so a config is checked while it plans)."""
from __future__ import annotations

BACKENDS = ("clip", "cnn")
# Train-time augmentation recipes per backend: `anchor` is the anchors' list (RandAugment(2, 9), bicubic
# RandomResizedCrop 0.25-1, flip, colour jitter, grey, blur, solarize); `affine` small shifts, turns and
# zooms (a mirrored digit is another glyph); `simple` and `none` what their names say.
AUGMENTS = {"clip": ("anchor", "simple"), "cnn": ("affine", "none")}
SELECTIONS = ("last", "val")
LORA_INITS = ("kaiming", "gaussian")


def check_settings(cfg) -> None:
    """Raise ValueError naming the setting when the classifier settings do not fit their backend."""
    if cfg.backend not in BACKENDS:
        raise ValueError(f"classify.backend: unknown backend {cfg.backend!r}; expected one of {BACKENDS}")
    if cfg.augment not in AUGMENTS[cfg.backend]:
        raise ValueError(f"classify.augment: {cfg.augment!r} is not a recipe of the {cfg.backend} backend; it "
                         f"knows {AUGMENTS[cfg.backend]} (the default 'anchor' is the CLIP backend's)")
    if cfg.select not in SELECTIONS:
        raise ValueError(f"classify.select: must be one of {SELECTIONS}, got {cfg.select!r}")
    if cfg.lora_init not in LORA_INITS:
        raise ValueError(f"classify.lora_init: must be one of {LORA_INITS}, got {cfg.lora_init!r}")
    if cfg.real_weight is not None and not 0.0 <= cfg.real_weight <= 1.0:
        raise ValueError(f"classify.real_weight: a weight in [0, 1] or null, got {cfg.real_weight}")

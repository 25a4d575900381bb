"""Names stated once: the tags in output paths (a synthetic set's generation tag, a classifier's tag), the
label a synthetic set carries in every table, grid and plot, and the class prompt.

Torch-free: the Snakefile and the report read these.
"""
from __future__ import annotations

FIXED_TAG = "fixed"   # the synthetic set of a method without a mixing dial (no alpha)
REAL_TAG = "real"     # the classifier of the real-only row (no synthetic set)
HEAD_TAG = "onehead"  # a multi-head LoRA's images made through one head alone (the regime metrics' probe)


def alpha_tag(alpha: float) -> str:
    """'alpha0.5': short where that names the value exactly, else the float's full repr."""
    short = f"{alpha:g}"
    return f"alpha{short}" if float(short) == alpha else f"alpha{alpha!r}"


def tag_alpha(gen: str) -> float | None:
    """The alpha an 'alpha<value>' generation tag names; None for any other tag."""
    return float(gen.removeprefix("alpha")) if gen.startswith("alpha") else None


def eval_tag(gen: str, volume: int) -> str:
    """A classifier's tag: its synthetic set's generation tag and the images per class it trains on."""
    return f"{gen}_n{int(volume)}"


def split_eval_tag(tag: str) -> tuple[str, int | None]:
    """A classifier's tag -> (its synthetic set's generation tag, the volume per class): 'alpha1_n500' ->
    ('alpha1', 500); 'real' -> ('real', None)."""
    gen, sep, volume = tag.rpartition("_n")
    if not sep or not volume.isdigit():
        return tag, None
    return gen, int(volume)


def set_label(method: str, gen: str | None = None, with_real: bool = False) -> str:
    """The one label of a synthetic set (or a classifier's row) everywhere: 'chimera (α=1)', 'loft',
    'real'; '+ real shots' when the classifier also saw the real images."""
    dial = isinstance(gen, str) and tag_alpha(gen) is not None
    label = f"{method} (α={gen.removeprefix('alpha')})" if dial else f"{method} (one head)" if gen == HEAD_TAG \
        else method
    return f"{label} + real shots" if with_real else label


def class_prompt(class_name: str, prefix: str = "") -> str:
    """The anchors' template "a {prefix}photo of a {class}" (prefix e.g. "aircraft ", or empty). The name is
    used as the baselines spell it (their prompts read e.g. "a food photo of a apple_pie")."""
    return f"a {prefix}photo of a {class_name}"

"""The laptop-scale base that knows something: the digits 0-9 rendered with matplotlib's fonts (the source
domain), a tiny text-to-image pipeline in Stable Diffusion's layout pretrained on them, and its check (does
it draw the digit its prompt names?).

- `glyphs`: the rendered source domain; `base`: pretrain_base; `check`: the source-domain judge and samples.

May import: ChimeraPipe.classify, ChimeraPipe.core, ChimeraPipe.models, ChimeraPipe.datasets.
"""

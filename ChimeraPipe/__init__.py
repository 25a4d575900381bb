"""ChimeraPipe: ChimeraLoRA few-shot synthetic training data as plain, importable stages.

Modules: `lora` (multi-head LoRA layer), `crops` (box-constrained crops), `detect` (Grounded-SAM and
other box backends), `views` (crop cache), `train` / `generate` (per-class LoRA and Dirichlet-mixed
generation), `classify` (CLIP LoRA classifier), `report`, `quality`; `stages` has one function per
workflow rule; `models` resolves `tiny` / local / hub model specs.
"""

__version__ = "0.1.0"

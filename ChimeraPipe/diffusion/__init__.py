"""The diffusion stages: multi-head LoRA training on cached views (one adapter per class; the classes of a
part batched in one model), generation with per-image head weights (Dirichlet mixing and the baselines'
schemes), real guidance, and the CLIP filter of IsSynth.

- `train`: train_lora, the training target; `generate`: mixing weights, generate_class, the pixel fingerprint;
  `clip_filter`: zero-shot CLIP filtering.

May import: ChimeraPipe.boxes, ChimeraPipe.core, ChimeraPipe.models, ChimeraPipe.lora, ChimeraPipe.datasets.
"""

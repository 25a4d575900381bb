"""How far a synthetic set is from the real images: embeddings of image sets (cached per set), the gap
metrics computed in them, and a t-SNE view. Definitions and sources: docs/metrics.md.

- `features`: feature extractors by name (CLIP, the judge CNN); `embeddings`: the per-set files;
  `gap`: Fréchet distance, CLIP score, centroid similarity, PRDC, copy rate, diversity; `tsne`: the map.

May import: ChimeraPipe.core, ChimeraPipe.models.
"""

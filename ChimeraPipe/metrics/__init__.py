"""How far a synthetic set is from the real images: embeddings of image sets (cached per set), the gap
metrics computed in them, and a t-SNE view. Definitions and sources: docs/metrics.md."""

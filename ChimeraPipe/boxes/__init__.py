"""Semantic boosting: the object box b* of each reference image (Grounded-SAM, shipped annotations, or the
whole image), training-view crops that keep b* inside (and the baselines' own random and centre squares),
the view caches of VAE latents the LoRA trains on, and box quality against ground truth.

- `detect`: box backends; `crops`: crop sampling and resampling; `views`: view caches; `quality`: IoU.

May import: ChimeraPipe.core, ChimeraPipe.models, ChimeraPipe.datasets.
"""

"""The bottom layer: what every stage needs and nothing stage-specific.

- `io`: atomic writes (temp file + rename), JSON/CSV/safetensors helpers.
- `images`: one RGB convention for reading images, uint8 -> [-1, 1] tensors, bytes per pixel of each format.
- `runtime`: device and precision choice, seeds, the warm-up/cosine schedule, logging set-up.
- `names`: the tags and labels that name synthetic sets and classifiers, the class prompt.
- `checkpoint`: resumable training state (tensors + RNG + optimizer) in one safetensors file.
- `provenance`: what produced a result (package version, git commit, hardware).

May import: nothing of ChimeraPipe (third-party libraries only).
"""

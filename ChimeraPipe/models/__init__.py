"""The models the stages load, and how they are named and found.

- `specs`: model kinds, config specs (`tiny`, a workflow-built base, a local folder, a hub id) -> locations.
- `tiny`: offline random-weight models in the real models' layouts; `tokenizer`: the offline CLIP tokenizer.
- `clip`: the one open_clip loader, with one text-feature and one image-feature helper.
- `cnn`: the small CNN (classifier backend and judge architecture) and its saved form.
- `staged`: hub models staged by fetch_models (manifests, the lock): read, verified, described.

May import: ChimeraPipe.core.
"""

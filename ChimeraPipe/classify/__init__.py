"""The classifier stages: one training loop (resumable, epoch checkpoints) shared by two backends - LoRA on
both towers of a pretrained CLIP (the paper's) and a small CNN from scratch (no pretrained CLIP, the
laptop-scale experiment) - their augmentation recipes, evaluation, and the dataset judge.

- `recipes`: backend and augmentation names, the settings check run at planning (torch-free).
- `augment`: the train transforms; `data`: the training table, dataset, CutMix/MixUp, the loss.
- `clip_lora`: LoRA attention for CLIP; `backends`: the CLIP and CNN backends.
- `loop`: train_classifier; `evaluate`: evaluate_classifier; `judge`: the CNN trained on all real images.

May import: ChimeraPipe.core, ChimeraPipe.models, ChimeraPipe.lora.
"""

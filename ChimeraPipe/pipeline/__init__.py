"""The top layer: the workflow config and what the rules ask of it, every stage's settings (every default),
the method presets, parts of classes, and one plain function per workflow stage.

- `settings`: the settings dataclasses and their canonical form (torch-free).
- `presets`: the methods (ChimeraLoRA, its ablations, the baselines) with the references' settings.
- `config`: WorkflowConfig (torch-free: the Snakefile builds it while it plans).
- `parts`: classes grouped into parts (one job per part), their stamps and indexes.
- `stages`: one function per rule: paths and settings in, files out.
- `preflight`: a config checked and its run's work estimated before anything is submitted.

May import: everything below it (report, metrics, classify, diffusion, pretrain, boxes, datasets, models,
lora, core). Nothing below imports it.
"""

"""ChimeraPipe: ChimeraLoRA few-shot synthetic training data as plain, importable stages.

The package's folders are the pipeline's stages, layered; a module imports only from its own layer's
package or the layers below (an import-linter contract, `make lint`):

    pipeline                                      config, settings (every default), presets, parts, stages
    report | metrics | diffusion | pretrain       tables and figures; gap metrics; LoRA training and
                                                  generation; the laptop-scale base
    classify | boxes                              the classifier loop, backends, evaluation; detection,
                                                  crops, view caches
    datasets | models | lora                      official layouts; model specs, tiny models, CLIP / CNN;
                                                  the multi-head LoRA layer and adapter files
    core                                          io, images, runtime, names, hashing, checkpoints

Each folder's `__init__` says what lives there and what it may import.
"""

__version__ = "0.2.0"

"""The multi-head LoRA layer (one layer, four ways of tying K heads; per-sample head weights) and its
adapter files (safetensors + JSON; export of a mixed adapter as a plain diffusers LoRA).

- `layer`: MultiHeadLoRALinear, inject_multihead_lora, head_weights, state dicts.
- `adapter`: save_adapter, load_adapter, read_adapter_meta, export_mixed_lora.

May import: ChimeraPipe.core.
"""
from .layer import (
    MultiHeadLoRALinear,
    class_rows,
    count_lora_parameters,
    head_counts,
    head_weights,
    inject_multihead_lora,
    load_lora_state_dict,
    lora_layers,
    lora_state_dict,
    stacked_routing,
)

__all__ = ["MultiHeadLoRALinear", "class_rows", "count_lora_parameters", "head_counts", "head_weights",
           "inject_multihead_lora", "load_lora_state_dict", "lora_layers", "lora_state_dict", "stacked_routing"]

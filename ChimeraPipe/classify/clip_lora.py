"""LoRA on both towers of an open_clip CLIP, as the anchors (LoFT / DataDream): r=16, alpha 32, dropout 0.1
on q and v of every attention block. nn.MultiheadAttention fuses q/k/v into one projection, so each block
is swapped for LoRAAttention: the same computation with separate projections, LoRA on q and v."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..lora.layer import MultiHeadLoRALinear


class LoRAAttention(nn.Module):
    """nn.MultiheadAttention's computation with separate q/k/v projections, LoRA on q and v."""

    def __init__(self, mha: nn.MultiheadAttention, rank: int, lora_alpha: float, dropout: float,
                 init: str = "kaiming"):
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None:
            raise ValueError("only standard self-attention blocks are supported")
        dim = mha.embed_dim
        self.num_heads, self.batch_first = mha.num_heads, mha.batch_first
        projections = []
        for i in range(3):
            linear = nn.Linear(dim, dim, bias=mha.in_proj_bias is not None)
            with torch.no_grad():
                linear.weight.copy_(mha.in_proj_weight[i * dim:(i + 1) * dim])
                if mha.in_proj_bias is not None:
                    linear.bias.copy_(mha.in_proj_bias[i * dim:(i + 1) * dim])
            linear.requires_grad_(False)
            projections.append(linear)
        self.q_proj = MultiHeadLoRALinear(projections[0], rank, 1, "both", lora_alpha, dropout, init=init)
        self.k_proj = projections[1]
        self.v_proj = MultiHeadLoRALinear(projections[2], rank, 1, "both", lora_alpha, dropout, init=init)
        self.out_proj = mha.out_proj
        self.out_proj.requires_grad_(False)

    def forward(self, query, key=None, value=None, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if need_weights:
            raise NotImplementedError("LoRAAttention does not return attention weights (need_weights=True)")
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise NotImplementedError("LoRAAttention is self-attention only: key and value must be the query")
        x = query if self.batch_first else query.transpose(0, 1)                  # [N, L, D]
        n, length, dim = x.shape
        heads = lambda t: t.view(n, length, self.num_heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        mask = _additive_mask(attn_mask, key_padding_mask, n, length, q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal and mask is None)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, dim))
        return (out if self.batch_first else out.transpose(0, 1)), None


def _additive_mask(attn_mask, key_padding_mask, n: int, length: int, dtype) -> torch.Tensor | None:
    """nn.MultiheadAttention's two masks (bool: True = masked out; float: added) as one additive mask
    [N or 1, 1 or heads, L, L] for scaled_dot_product_attention."""
    def additive(mask):
        if mask.dtype == torch.bool:
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
        return mask.to(dtype)

    out = None
    if attn_mask is not None:
        out = additive(attn_mask)
        out = out.view(1, 1, length, length) if out.ndim == 2 else out.view(n, -1, length, length)
    if key_padding_mask is not None:
        padding = additive(key_padding_mask).view(n, 1, 1, length)
        out = padding if out is None else out + padding
    return out


def inject_clip_lora(model: nn.Module, rank: int, lora_alpha: float, dropout: float, init: str = "kaiming") -> int:
    """Swap every nn.MultiheadAttention of both towers for LoRAAttention; freeze everything else."""
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    if not names:
        raise ValueError("no attention blocks found in the CLIP model")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRAAttention(getattr(parent, child), rank, lora_alpha, dropout, init))
    return len(names)

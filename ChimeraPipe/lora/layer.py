"""Multi-head LoRA: one layer, four ways of tying K heads.

For a sample with head weights w (length K) the layer computes

    y = base(x) + scale * sum_k w_k B_{b(k)} A_{a(k)} x,      scale = lora_alpha / rank

with A stacked as [n_a, rank, in] and B as [n_b, out, rank]:

    share="A"     ChimeraLoRA: one A, K heads B_k        (n_a=1, n_b=K)
    share="B"     ablation: K heads A_k, one B           (n_a=K, n_b=1)
    share="none"  LoFT-style: K independent LoRAs       (n_a=n_b=K)
    share="both"  DataDream-style: one LoRA             (n_a=n_b=1)

Every sample in a batch carries its own w (set with `head_weights`), and the mixing happens inside
one batched forward without materialising a per-sample [out, in] matrix.

A layer can also hold the adapters of C classes at once (`classes=C`: A stacked as [C * n_a, rank, in],
B as [C * n_b, out, rank], class-major), for training several classes in one model. Inside
`stacked_routing` a batch ordered (class, head, repeat) goes, block by block, through its own class's A and
its own head's B: the batch is cut into C * n_a equal blocks for A and C * n_b for B, and each block meets
one matrix in one batched matmul (no per-sample gather, no path through every head).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

SHARE_MODES = ("A", "B", "none", "both")


def head_counts(share: str, heads: int) -> tuple[int, int]:
    """(n_a, n_b): how many distinct A and B matrices a layer holds."""
    if share not in SHARE_MODES:
        raise ValueError(f"share must be one of {SHARE_MODES}, got {share!r}")
    n_a = 1 if share in ("A", "both") else heads
    n_b = 1 if share in ("B", "both") else heads
    return n_a, n_b


class MultiHeadLoRALinear(nn.Module):
    """A frozen nn.Linear plus K LoRA heads tied according to `share`."""

    def __init__(self, base: nn.Linear, rank: int, heads: int, share: str = "A",
                 lora_alpha: float | None = None, dropout: float = 0.0,
                 default_weights: Sequence[float] | None = None, init: str = "gaussian", classes: int = 1):
        super().__init__()
        if rank < 1 or heads < 1 or classes < 1:
            raise ValueError(f"rank, heads and classes must be positive, got {rank}, {heads}, {classes}")
        self.base = base
        for param in self.base.parameters():
            param.requires_grad_(False)
        self.rank, self.heads, self.share, self.classes = rank, heads, share, classes
        self.lora_alpha = float(rank if lora_alpha is None else lora_alpha)
        self.scale = self.lora_alpha / rank
        n_a, n_b = head_counts(share, heads)
        factory = {"device": base.weight.device, "dtype": torch.float32}
        # Zero B, so the layer starts as base. A: Gaussian with std 1/r (peft's "gaussian", the diffusion
        # anchors' choice) or kaiming-uniform with a = sqrt(5) (loralib's, the CLIP classifier anchors').
        # One class's draws, repeated for every class: C classes start as C single-class layers would.
        if init == "gaussian":
            first = torch.randn(n_a, rank, base.in_features, **factory) / rank
        elif init == "kaiming":
            first = torch.empty(n_a, rank, base.in_features, **factory)
            for head in first:
                nn.init.kaiming_uniform_(head, a=math.sqrt(5))
        else:
            raise ValueError(f"init must be 'gaussian' or 'kaiming', got {init!r}")
        self.lora_A = nn.Parameter(first.repeat(classes, 1, 1))
        self.lora_B = nn.Parameter(torch.zeros(classes * n_b, base.out_features, rank, **factory))
        self.stacked = False                      # set through `stacked_routing`
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.weights: torch.Tensor | None = None  # [batch, K], set through `head_weights`
        # Used when no head weights are set: the caller's explicit choice (one head needs none).
        if default_weights is None and heads == 1:
            default_weights = [1.0]
        self.default_weights = None if default_weights is None else \
            torch.as_tensor(default_weights, dtype=torch.float32).reshape(1, -1)
        if self.default_weights is not None and self.default_weights.shape[1] != heads:
            raise ValueError(f"default_weights needs {heads} values, got {self.default_weights.shape[1]}")

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:  # some callers read .weight.dtype/.device of a projection
        return self.base.weight

    def extra_repr(self) -> str:
        classes = f", classes={self.classes}" if self.classes > 1 else ""
        return f"rank={self.rank}, heads={self.heads}, share={self.share!r}, scale={self.scale:g}{classes}"

    def _batch_weights(self, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        w = self.weights if self.weights is not None else self.default_weights
        if w is None:
            raise RuntimeError(f"{self.heads} LoRA heads but no head weights: run the model inside "
                               "`head_weights(model, w)` or build the layer with `default_weights`")
        if w.ndim != 2 or w.shape[1] != self.heads:
            raise ValueError(f"head weights must have shape [batch, {self.heads}], got {tuple(w.shape)}")
        if batch % w.shape[0]:
            raise ValueError(f"input batch {batch} is not a multiple of the {w.shape[0]} head-weight rows")
        # Classifier-free guidance runs the batch twice ([uncond; cond]): tile the rows to match.
        return w.to(device=device, dtype=dtype).repeat(batch // w.shape[0], 1)

    def _stacked_delta(self, x: torch.Tensor) -> torch.Tensor:
        """Each equal block of the batch through its own A row, each (finer or coarser) block through its own
        B row: batch = C * n_a blocks for A and C * n_b blocks for B, in row order."""
        batch, lead = x.shape[0], x.shape[1:-1]
        A, B = self.lora_A.to(x.dtype), self.lora_B.to(x.dtype)
        if batch % A.shape[0] or batch % B.shape[0]:
            raise ValueError(f"a stacked batch of {batch} does not split into {A.shape[0]} A blocks and "
                             f"{B.shape[0]} B blocks")
        flat = self.dropout(x).reshape(A.shape[0], -1, x.shape[-1])          # [G_a, (batch/G_a) * L, in]
        h = torch.bmm(flat, A.transpose(1, 2)).reshape(B.shape[0], -1, self.rank)
        out = torch.bmm(h, B.transpose(1, 2))                                 # [G_b, (batch/G_b) * L, out]
        return (out * self.scale).reshape(batch, *lead, -1)

    def lora_delta(self, x: torch.Tensor) -> torch.Tensor:
        """scale * sum_k w_nk B_k A_k x_n for x of shape [batch, ..., in]."""
        if self.stacked:
            return self._stacked_delta(x)
        if self.classes > 1:
            raise RuntimeError("a layer holding several classes runs inside `stacked_routing` only")
        batch, lead = x.shape[0], x.shape[1:-1]
        dtype = x.dtype
        flat = self.dropout(x).reshape(batch, -1, x.shape[-1])       # [N, L, in]
        w = self._batch_weights(batch, x.device, dtype)               # [N, K]
        A, B = self.lora_A.to(dtype), self.lora_B.to(dtype)
        if self.share == "A":
            h = flat @ A[0].transpose(0, 1)                           # [N, L, r]
            mixed_b = torch.einsum("nk,kor->nro", w, B)               # per-sample B' (transposed)
            out = torch.bmm(h, mixed_b)
        elif self.share == "B":
            mixed_a = torch.einsum("nk,kri->nir", w, A)               # per-sample A' (transposed)
            out = torch.bmm(flat, mixed_a) @ B[0].transpose(0, 1)
        elif self.share == "none":
            # K rank-r paths stacked into one rank K*r path; each path scaled by its head weight.
            h = flat @ A.reshape(-1, A.shape[-1]).transpose(0, 1)     # [N, L, K*r]
            h = h * w.repeat_interleave(self.rank, dim=1).unsqueeze(1)
            out = h @ B.permute(0, 2, 1).reshape(-1, B.shape[1])     # [K*r, out]
        else:  # both
            out = (flat @ A[0].transpose(0, 1)) @ B[0].transpose(0, 1)
            out = out * w.sum(dim=1).view(-1, 1, 1)
        return (out * self.scale).reshape(batch, *lead, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_delta(x)

    def delta_weight(self, w: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """The merged [out, in] weight delta for one head-weight vector of length K."""
        w = torch.as_tensor(w, dtype=torch.float32, device=self.lora_A.device).reshape(-1)
        if w.shape[0] != self.heads:
            raise ValueError(f"expected {self.heads} head weights, got {w.shape[0]}")
        n_a, n_b = self.lora_A.shape[0], self.lora_B.shape[0]
        delta = torch.zeros(self.out_features, self.in_features, device=w.device)
        for k in range(self.heads):
            delta += w[k] * (self.lora_B[k if n_b > 1 else 0] @ self.lora_A[k if n_a > 1 else 0])
        return self.scale * delta

    def low_rank_factors(self, w: torch.Tensor | Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """(down [r', in], up [out, r']) with up @ down == delta_weight(w): the mixed model as one
        plain LoRA of the smallest rank the tying allows (r for shared A or B, K*r otherwise)."""
        w = torch.as_tensor(w, dtype=torch.float32, device=self.lora_A.device).reshape(-1)
        A, B = self.lora_A.detach(), self.lora_B.detach()
        if self.share == "A":
            return A[0], self.scale * torch.einsum("k,kor->or", w, B)
        if self.share == "B":
            return torch.einsum("k,kri->ri", w, A), self.scale * B[0]
        if self.share == "both":
            return A[0], self.scale * w.sum() * B[0]
        down = A.reshape(-1, A.shape[-1])
        up = (B * w.view(-1, 1, 1)).permute(1, 0, 2).reshape(B.shape[1], -1)
        return down, self.scale * up


def lora_layers(model: nn.Module) -> dict[str, MultiHeadLoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, MultiHeadLoRALinear)}


@contextlib.contextmanager
def head_weights(module: nn.Module, w: torch.Tensor) -> Iterator[None]:
    """Set per-sample head weights [batch, K] on every multi-head LoRA layer in `module`."""
    layers = [module] if isinstance(module, MultiHeadLoRALinear) else list(lora_layers(module).values())
    previous = [layer.weights for layer in layers]
    w = torch.as_tensor(w, dtype=torch.float32)
    if w.ndim == 1:
        w = w.unsqueeze(0)
    try:
        for layer in layers:
            layer.weights = w
        yield
    finally:
        for layer, old in zip(layers, previous, strict=True):
            layer.weights = old


@contextlib.contextmanager
def stacked_routing(module: nn.Module) -> Iterator[None]:
    """Route a batch ordered (class, head, repeat) through every layer's stacked class and head rows."""
    layers = [module] if isinstance(module, MultiHeadLoRALinear) else list(lora_layers(module).values())
    try:
        for layer in layers:
            layer.stacked = True
        yield
    finally:
        for layer in layers:
            layer.stacked = False


def class_rows(layer: MultiHeadLoRALinear, c: int) -> tuple[slice, slice]:
    """The rows of class c in the layer's stacked A and B."""
    n_a, n_b = head_counts(layer.share, layer.heads)
    return slice(c * n_a, (c + 1) * n_a), slice(c * n_b, (c + 1) * n_b)


def _matches(name: str, targets: Sequence[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_multihead_lora(model: nn.Module, target_modules: Sequence[str], rank: int, heads: int,
                          share: str = "A", lora_alpha: float | None = None, dropout: float = 0.0,
                          default_weights: Sequence[float] | None = None,
                          classes: int = 1) -> dict[str, MultiHeadLoRALinear]:
    """Replace every nn.Linear whose name ends with a target by a MultiHeadLoRALinear (in place).

    Freezes the whole model first: only the LoRA matrices train. Returns {module name: layer}.
    """
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, target_modules)]
    if not names:
        raise ValueError(f"no nn.Linear in {type(model).__name__} matches target_modules={list(target_modules)}")
    layers = {}
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = MultiHeadLoRALinear(getattr(parent, child), rank, heads, share, lora_alpha, dropout, default_weights,
                                    classes=classes)
        setattr(parent, child, layer)
        layers[name] = layer
    return layers


def lora_state_dict(model: nn.Module, class_index: int | None = None) -> dict[str, torch.Tensor]:
    """Only the LoRA tensors, keyed '{module}.lora_A' / '{module}.lora_B'; of one class's rows when the layers
    hold several classes (`class_index`), in the single-class shape an adapter file has."""
    state = {}
    for name, layer in lora_layers(model).items():
        a_rows, b_rows = class_rows(layer, class_index) if class_index is not None else (slice(None),) * 2
        state[f"{name}.lora_A"] = layer.lora_A[a_rows].detach().float().cpu().contiguous()
        state[f"{name}.lora_B"] = layer.lora_B[b_rows].detach().float().cpu().contiguous()
    return state


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    layers = lora_layers(model)
    expected = {f"{n}.lora_{m}" for n in layers for m in "AB"}
    if set(state) != expected:
        missing, extra = sorted(expected - set(state))[:3], sorted(set(state) - expected)[:3]
        raise ValueError(f"adapter does not match the model: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for name, layer in layers.items():
            for m in "AB":
                param = getattr(layer, f"lora_{m}")
                value = state[f"{name}.lora_{m}"]
                if value.shape != param.shape:
                    raise ValueError(f"{name}.lora_{m}: shape {tuple(value.shape)} != {tuple(param.shape)}")
                param.copy_(value)


def count_lora_parameters(model: nn.Module) -> int:
    return sum(layer.lora_A.numel() + layer.lora_B.numel() for layer in lora_layers(model).values())

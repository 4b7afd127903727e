"""GateBench's first frozen base (``model.arch: home``), kept to compare with the ``transformers``
bases (``hf_base``): a tiny causal MoE transformer with sliding-window attention.

Blocks are pre-norm: attention over the last ``window`` tokens (rotary positions, so retrieval
learned at one depth works at any depth), then a feed-forward mixture of experts with a softmax
router mixing every expert (soft dispatch; 4 experts at this scale cost less than a sparse
dispatch). The updater sits in the last block: it reads the MoE's input ``u`` and returns LoRA
factors that the experts apply on top of their frozen weights, shared by every expert (as in the
preprint's retrofit)::

    hidden_e = gelu(u W1_e + b1_e + (u A1) B1)
    out_e    = hidden_e W2_e + b2_e + (hidden_e A2) B2
"""

from __future__ import annotations

import functools
import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Factors = tuple[Tensor, ...]
"""Per-position LoRA factors (A1 (B,T,D,r), B1 (B,T,r,F), A2 (B,T,F,r), B2 (B,T,r,D)), or ()."""


class FrozenBase(Protocol):
    """What the protocol reads of a base: this hand-written one or a ``transformers`` model
    (``hf_base.HFBase``)."""

    def trunk(self, tokens: Tensor) -> tuple[Tensor, Tensor]: ...

    def finish(self, x: Tensor, u: Tensor, factors: Factors = ()) -> Tensor: ...


@functools.lru_cache(maxsize=64)
def _rotations(
    T: int, d: int, dtype: torch.dtype, device: torch.device, base: float
) -> tuple[Tensor, Tensor]:
    """cos and sin of every (position, frequency) angle, (T, d/2): the same few lengths come back
    at every call of a run, so they are computed once (read only)."""
    freqs = base ** (-torch.arange(0, d, 2, dtype=dtype, device=device) / d)
    angles = torch.arange(T, dtype=dtype, device=device)[:, None] * freqs  # (T, d/2)
    return angles.cos(), angles.sin()


def rotary(x: Tensor, base: float = 10000.0) -> Tensor:
    """Rotary position embedding over the last dim of (B, H, T, d) queries or keys."""
    cos, sin = _rotations(x.shape[-2], x.shape[-1], x.dtype, x.device, base)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


@functools.lru_cache(maxsize=64)
def window_mask(T: int, window: int, device: torch.device | None = None) -> Tensor:
    """(T, T) bool, True where position t may attend to s: s <= t and t - s < window (cached,
    read only)."""
    t = torch.arange(T, device=device)
    diff = t[:, None] - t[None, :]
    return (diff >= 0) & (diff < window)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, window: int) -> None:
        super().__init__()
        self.n_heads, self.window = n_heads, window
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (B, H, T, d)
        mask = window_mask(T, self.window, x.device)
        y = F.scaled_dot_product_attention(rotary(q), rotary(k), v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class SoftMoE(nn.Module):
    """Every expert computes; a softmax router mixes them."""

    def __init__(self, d_model: int, d_ff: int, n_experts: int, clamp: float = 4.0) -> None:
        super().__init__()
        E, D, Fd = n_experts, d_model, d_ff
        self.clamp = clamp
        self.router = nn.Linear(D, E)
        self.w1 = nn.Parameter(torch.randn(E, D, Fd) / math.sqrt(D))
        self.b1 = nn.Parameter(torch.zeros(E, Fd))
        self.w2 = nn.Parameter(torch.randn(E, Fd, D) / math.sqrt(Fd))
        self.b2 = nn.Parameter(torch.zeros(E, D))

    def forward(self, u: Tensor, factors: Factors = ()) -> Tensor:
        pre = torch.einsum("btd,edf->btef", u, self.w1) + self.b1
        if factors:
            a1, b1 = factors[0], factors[1]
            low = torch.einsum("btd,btdr->btr", u, a1)
            pre = pre + self._clamped(torch.einsum("btr,btrf->btf", low, b1))[:, :, None]
        hidden = F.gelu(pre)  # (B, T, E, F)
        out = torch.einsum("btef,efd->bted", hidden, self.w2) + self.b2
        if factors:
            a2, b2 = factors[2], factors[3]
            low = torch.einsum("btef,btfr->bter", hidden, a2)
            out = out + self._clamped(torch.einsum("bter,btrd->bted", low, b2))
        weights = torch.softmax(self.router(u), dim=-1)  # (B, T, E)
        return torch.einsum("bte,bted->btd", weights, out)

    def _clamped(self, correction: Tensor) -> Tensor:
        """A LoRA correction with its norm capped at ``clamp`` (the preprint clamps them too)."""
        norm = correction.norm(dim=-1, keepdim=True)
        return correction * (self.clamp / norm.clamp(min=1e-12)).clamp(max=1.0)


class Block(nn.Module):
    def __init__(
        self, d_model: int, n_heads: int, d_ff: int, n_experts: int, window: int, clamp: float
    ) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, window)
        self.moe = SoftMoE(d_model, d_ff, n_experts, clamp)

    def mixed(self, x: Tensor) -> Tensor:
        """The residual stream after attention."""
        return x + self.attn(self.ln1(x))

    def forward(self, x: Tensor, factors: Factors = ()) -> Tensor:
        x = self.mixed(x)
        return x + self.moe(self.ln2(x), factors)


class BaseModel(nn.Module):
    """Token ids -> next-token logits; the updater's input and output are in the last block."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ff: int,
        n_experts: int,
        window: int,
        clamp: float = 4.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, n_experts, window, clamp) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def trunk(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """The residual stream after the last block's attention, and the MoE input ``u`` (what
        the updater reads)."""
        x = self.embed(tokens)
        for block in self.blocks[:-1]:
            x = block(x)
        last = self.blocks[-1]
        x = last.mixed(x)
        return x, last.ln2(x)

    def finish(self, x: Tensor, u: Tensor, factors: Factors = ()) -> Tensor:
        """Logits from the trunk's outputs, the last MoE adapted by ``factors``."""
        x = x + self.blocks[-1].moe(u, factors)
        return self.head(self.norm(x))

    def forward(self, tokens: Tensor) -> Tensor:
        x, u = self.trunk(tokens)
        return self.finish(x, u)

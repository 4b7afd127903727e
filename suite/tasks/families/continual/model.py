"""The frozen base and the pool of low-rank sub-experts a router chooses from.

The base is a per-position network (an input layer, one residual MLP block, a head): every task
of a sequence depends on the current position only, so what a router can add from context is
*which task* a sequence belongs to. The sub-experts are LoRA-style branches beside the frozen
block (as in MoSEs): expert e adds ``(h A_e) B_e`` to the hidden state, mixed by the router's
top-k weights. B starts at zero, so before any training the model is the base.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FrozenBase(nn.Module):
    def __init__(
        self, input_kind: str, n_inputs: int, d_model: int, d_hidden: int, n_outputs: int
    ) -> None:
        super().__init__()
        self.input_kind = input_kind
        self.embed = (
            nn.Embedding(n_inputs, d_model)
            if input_kind == "tokens"
            else nn.Linear(n_inputs, d_model)
        )
        self.block = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, d_hidden),
            nn.GELU(),
            nn.Linear(d_hidden, d_model),
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_outputs)

    def features(self, inputs: Tensor) -> Tensor:
        """Hidden states h (N, T, D): what the router and the sub-experts read."""
        x = self.embed(inputs)
        return x + self.block(x)

    def logits(self, h: Tensor) -> Tensor:
        return self.head(self.norm(h))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.logits(self.features(inputs))


class SubExperts(nn.Module):
    """E rank-r branches, all computed at once and mixed by (N, T, E) weights."""

    def __init__(self, n_experts: int, d_model: int, rank: int) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.randn(n_experts, d_model, rank) / math.sqrt(d_model))
        self.B = nn.Parameter(torch.zeros(n_experts, rank, d_model))

    def forward(self, h: Tensor, weights: Tensor) -> Tensor:
        low = torch.einsum("ntd,edr->nter", h, self.A)
        delta = torch.einsum("nter,erd->nted", low * weights.unsqueeze(-1), self.B)
        return h + delta.sum(2)


def top_k_weights(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Mixing weights (N, T, E) that are a softmax over each position's k largest logits (zero
    elsewhere), and the chosen experts (N, T, k)."""
    values, chosen = logits.topk(k, dim=-1)
    weights = torch.zeros_like(logits).scatter(-1, chosen, torch.softmax(values, dim=-1))
    return weights, chosen

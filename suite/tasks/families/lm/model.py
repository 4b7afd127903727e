"""The character LM around the gate: embedding, one MoE layer, residual + LayerNorm, linear head.

Two ways to run the experts (MLP d → ff_mult·d → d, GELU):

* ``soft``: every expert on every token, mixed by the gate's softmax (the paper's model); the
  experts are one batched einsum, mixed by ``suite.tasks.mixing.mix_experts``;
* ``top-k``: each token goes to its k best experts only. Tokens are sorted by expert, padded to the
  largest expert's load and run as one ``torch.bmm`` per layer: no Python loop over experts.

``looped_experts`` is the plain per-expert loop: the equivalence oracle of the tests and the
"looped MoE" row of the efficiency table.

The spec's ``model.layer`` may replace the experts by a layer that routes by itself (or not at
all), sized to the top-k MoE's active parameters per token: ``dsc`` (``dsc.py``) or ``dense`` (one
MLP of hidden k · ff_mult · d). The gate's logits then mix nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.tasks.families.lm import dsc
from suite.tasks.mixing import mix_experts


class ExpertBank(nn.Module):
    """E two-layer MLPs stored as stacked weights."""

    def __init__(self, n_experts: int, d_model: int, d_hidden: int) -> None:
        super().__init__()
        bound1, bound2 = 1 / math.sqrt(d_model), 1 / math.sqrt(d_hidden)
        self.W1 = nn.Parameter(torch.empty(n_experts, d_model, d_hidden).uniform_(-bound1, bound1))
        self.b1 = nn.Parameter(torch.empty(n_experts, 1, d_hidden).uniform_(-bound1, bound1))
        self.W2 = nn.Parameter(torch.empty(n_experts, d_hidden, d_model).uniform_(-bound2, bound2))
        self.b2 = nn.Parameter(torch.empty(n_experts, 1, d_model).uniform_(-bound2, bound2))

    def soft(self, x: Tensor, weights: Tensor) -> Tensor:
        """Σ_e w_e · expert_e(x) for x (N, D), weights (N, E)."""
        h = F.gelu(torch.einsum("nd,edh->enh", x, self.W1) + self.b1)
        y = torch.einsum("enh,ehd->end", h, self.W2) + self.b2  # (E, N, D)
        return mix_experts(y.permute(1, 0, 2), weights)

    def sparse(self, x: Tensor, chosen: Tensor, weights: Tensor) -> Tensor:
        """Σ over each token's chosen experts of w · expert(x): x (N, D), chosen and weights
        (N, k). Sorted by expert, padded to the busiest expert's load, two ``bmm``."""
        N, k = chosen.shape
        E = self.W1.shape[0]
        expert = chosen.reshape(-1)
        token = torch.arange(N, device=x.device).repeat_interleave(k)
        order = torch.argsort(expert, stable=True)
        expert, token, w = expert[order], token[order], weights.reshape(-1)[order]
        counts = torch.bincount(expert, minlength=E)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(expert.numel(), device=x.device) - starts[expert]
        capacity, D = int(counts.max()), x.shape[1]
        where = expert * capacity + slot  # each (token, choice)'s row in the padded layout
        padded = x.new_zeros(E * capacity, D).index_copy(0, where, x.index_select(0, token))
        h = F.gelu(torch.baddbmm(self.b1, padded.view(E, capacity, D), self.W1))
        y = torch.baddbmm(self.b2, h, self.W2).view(E * capacity, D)
        return x.new_zeros(x.shape).index_add(0, token, y.index_select(0, where) * w[:, None])

    def activation_norms(self, points: Tensor) -> Tensor:
        """(P, E): the norm of expert e's hidden activation on point p (ERC's matrix M)."""
        h = F.gelu(torch.einsum("pd,edh->peh", points, self.W1) + self.b1.squeeze(1))
        return h.norm(dim=-1)


def looped_experts(bank: ExpertBank, x: Tensor, weights: Tensor) -> Tensor:
    """The reference: each expert in turn on the tokens that give it weight (N, E) > 0."""
    out = torch.zeros_like(x)
    for e in range(bank.W1.shape[0]):
        rows = torch.nonzero(weights[:, e] > 0).squeeze(1)
        if rows.numel():
            h = F.gelu(x[rows] @ bank.W1[e] + bank.b1[e])
            out = out.index_add(0, rows, (h @ bank.W2[e] + bank.b2[e]) * weights[rows, e, None])
    return out


def route(logits: Tensor, dispatch: str, k: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Mixing weights (N, E) and, for top-k dispatch, the chosen experts and their weights."""
    if dispatch == "soft":
        return torch.softmax(logits, dim=-1), None, None
    values, chosen = logits.topk(k, dim=-1)
    w = torch.softmax(values, dim=-1)
    return torch.zeros_like(logits).scatter(-1, chosen, w), chosen, w


def moe_active_parameters(d_model: int, n_experts: int, d_hidden: int, k: int) -> int:
    """Parameters one token touches in a top-k MoE: the router (d·E + E) and k experts."""
    return d_model * n_experts + n_experts + k * (2 * d_model * d_hidden + d_hidden + d_model)


def dense_ffn(d_model: int, d_hidden: int) -> nn.Sequential:
    """One MLP d → d_hidden → d (GELU); iso-active with a top-k MoE at d_hidden = k × the
    expert's: 2·d·k·h + k·h + d parameters, the k experts' less their (k − 1)·d output biases and
    the router's d·E + E."""
    return nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model))


class CharLM(nn.Module):
    def __init__(
        self,
        vocab: int,
        d_model: int,
        n_experts: int,
        ff_mult: int,
        layer: str = "moe",
        active: int = 1,
    ) -> None:
        super().__init__()
        h = ff_mult * d_model
        self.layer, self.n_experts = layer, n_experts
        self.embed = nn.Embedding(vocab, d_model)
        if layer == "moe":
            self.experts: nn.Module = ExpertBank(n_experts, d_model, h)
        elif layer == "dense":  # sized to the ``active`` experts a token uses in the MoE
            self.experts = dense_ffn(d_model, active * h)
        elif layer == "dsc":
            self.experts = dsc.matched(
                d_model, moe_active_parameters(d_model, n_experts, h, active)
            )
        else:
            raise ValueError(f"layer must be 'moe', 'dsc' or 'dense', got '{layer}'")
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def finish(
        self, x: Tensor, logits: Tensor, dispatch: str, k: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Character logits (B, T, V) from the embeddings x (B, T, D) and the gate's logits
        (B, T, E); also the mixing weights (B, T, E) the experts were given (uniform where the
        layer is not the MoE: the gate's logits mix nothing) and the layer's own auxiliary loss
        (DSC's four losses, weighted; 0 otherwise)."""
        B, T, D = x.shape
        flat = x.reshape(B * T, D)
        aux = flat.new_zeros(())
        if self.layer == "moe":
            weights, chosen, w = route(logits.reshape(B * T, -1), dispatch, k)
            mixed = (
                self.experts.soft(flat, weights)
                if chosen is None
                else self.experts.sparse(flat, chosen, w)
            )
        else:
            weights = torch.full((B * T, self.n_experts), 1 / self.n_experts, device=x.device)
            mixed = self.experts(flat)
            if self.layer == "dsc":
                mixed, aux = mixed
        y = self.norm(flat + mixed).reshape(B, T, D)
        return self.head(y), weights.reshape(B, T, -1), aux

    def sampled(self, x: Tensor, experts: Tensor) -> Tensor:
        """Character logits (M, B, T, V) with each of M expert sets (M, B, T, k) weighted
        equally: a router's ``Samples``, all M in one sparse dispatch."""
        M, (B, T, D), k = experts.shape[0], x.shape, experts.shape[-1]
        flat = x.reshape(1, B * T, D).expand(M, -1, -1).reshape(M * B * T, D)
        chosen = experts.reshape(M * B * T, k)
        mixed = self.experts.sparse(flat, chosen, torch.full(chosen.shape, 1.0 / k).to(x))
        return self.head(self.norm(flat + mixed)).reshape(M, B, T, -1)

    def probe(self, points: Tensor) -> Tensor:
        """ERC's (E, E) activation norms of a router's ``Probes``."""
        return self.experts.activation_norms(points)

"""Shared pieces of the router zoo.

A router whose method picks a sparse set of experts returns as logits the *log of its own mixing
weights* (a finite floor for the experts it leaves out), so that a family's softmax over the
logits reproduces its mixture exactly and a family's top-k dispatch picks its experts. Every zoo
router runs only where the family declares a vocabulary and a dispatch k (the lm family); the
other families' router tasks would otherwise pair it with inputs it was never meant for.
"""

from __future__ import annotations

import torch
from torch import Tensor

from suite.contract import TaskInfo
from suite.seeding import generator

FLOOR = -1e4  # log-weight of an expert the router leaves out (finite, so outputs stay finite)


def own_generator() -> torch.Generator:
    """A gate's private RNG (for sampling while training), seeded from the global RNG the harness
    seeds at build: deterministic in any process, including behind the proxy."""
    return generator(int(torch.randint(0, 2**62, (1,)).item()))


def needs_lm(info: TaskInfo) -> tuple[bool, str]:
    if info.get("vocab_size") is None or info.get("top_k") is None:
        return False, "a router-zoo gate runs on the character-LM family (vocab_size and top_k)"
    return True, ""


def log_weights(weights: Tensor) -> Tensor:
    """Logits whose softmax is ``weights`` (rows summing to 1, zeros allowed)."""
    return torch.where(weights > 0, weights.clamp(min=1e-30).log(), torch.full_like(weights, FLOOR))


def top_k_mask(probs: Tensor, k: int) -> Tensor:
    """(..., E) boolean mask of each position's k most probable experts."""
    chosen = probs.topk(k, dim=-1).indices
    return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, chosen, True)


def load_balancing_loss(probs: Tensor, dispatched: Tensor, alpha: float) -> Tensor:
    """Switch/GShard: alpha · E · Σ_e f_e · P_e, with f_e the share of dispatches that went to
    expert e (over every position of the call) and P_e its mean router probability."""
    E = probs.shape[-1]
    flat_mask = dispatched.reshape(-1, E).float()
    f = flat_mask.sum(0) / flat_mask.sum().clamp(min=1.0)
    P = probs.reshape(-1, E).mean(0)
    return alpha * E * (f * P).sum()


def z_loss(logits: Tensor, weight: float) -> Tensor:
    """ST-MoE's router z-loss: weight · mean over positions of logsumexp(logits)²."""
    return weight * torch.logsumexp(logits, dim=-1).pow(2).mean()

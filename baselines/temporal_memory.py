"""Temporal memory (beta): a leaky-integrate membrane without spikes (Wong 2026, section 3.1).

    h_t = beta ⊙ h_{t-1} + x_t,   h_{-1} = 0 per sequence,   beta = sigmoid(raw), one per dimension

Unrolled, h_t = sum_{s<=t} beta^(t-s) ⊙ x_s + beta^(t+1) ⊙ h_{-1}: a causal, decaying sum that is
computed for all t at once with a (T, T, D) lower-triangular decay tensor. The exponent is masked
to -inf *before* exp so the upper triangle can neither overflow nor poison the backward pass.
Cost is O(T^2 D) per sequence, which is cheaper than a Python loop for T up to a few hundred.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LeakyIntegrator(nn.Module):
    """Per-dimension leaky integration with a learnable or fixed decay."""

    def __init__(self, d_model: int, beta_init: float = 0.9, learn: bool = True) -> None:
        super().__init__()
        if not 0.0 < beta_init < 1.0:
            raise ValueError(f"beta_init must lie in (0, 1), got {beta_init}")
        raw = torch.full((d_model,), math.log(beta_init / (1.0 - beta_init)))  # logit(beta)
        if learn:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)

    def beta(self) -> Tensor:
        return torch.sigmoid(self.raw)  # (D,)

    def scan(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """All membrane states at once: x (B, T, D) -> h (B, T, D)."""
        T = x.shape[1]
        log_beta = F.logsigmoid(self.raw)  # (D,)
        idx = torch.arange(T, device=x.device)
        lag = (idx[:, None] - idx[None, :]).to(x.dtype)  # (T, T): t - s
        exponent = (lag[..., None] * log_beta).masked_fill((lag < 0)[..., None], float("-inf"))
        decay = torch.exp(exponent)  # (T, T, D): beta^(t-s) for s <= t, else 0
        h = torch.einsum("tsd,bsd->btd", decay, x)
        if h0 is not None:
            carry = torch.exp((idx + 1).to(x.dtype)[:, None] * log_beta)  # (T, D): beta^(t+1)
            h = h + carry[None] * h0[:, None, :]
        return h

    def step(self, x_t: Tensor, h: Tensor | None = None) -> Tensor:
        """One membrane update: the recurrence the scan is checked against."""
        return x_t if h is None else self.beta() * h + x_t

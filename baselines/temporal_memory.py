"""Temporal memory (beta): a leaky-integrate membrane without spikes (Wong 2026, section 3.1).

    h_t = beta ⊙ h_{t-1} + x_t,   h_{-1} = 0 per sequence,   beta = sigmoid(raw), one per dimension

Unrolled, h_t = sum_{s<=t} beta^(t-s) ⊙ x_s + beta^(t+1) ⊙ h_{-1}: a causal, decaying sum that is
computed for all t at once with a (T, T, D) lower-triangular decay tensor. The exponent is masked
to -inf *before* exp so the upper triangle can neither overflow nor poison the backward pass.
That costs O(T^2 D) per sequence; beyond ``CHUNK`` positions the sequence is cut into chunks of
``CHUNK``: the same decay tensor inside each chunk, and the chunks' end states combined by the
same formula with decay beta^CHUNK, O(T · CHUNK · D + (T / CHUNK)^2 D), still with no loop
(``nox -s bench``, item 10: at T = 1024 the plain form cost 50x affinity's epoch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CHUNK = 64  # the longest sequence scanned in one piece; every task's T so far is within it


def _decayed_sums(x: Tensor, log_beta: Tensor) -> Tensor:
    """h_t = sum_{s<=t} beta^(t-s) x_s for x (B, T, D), through the (T, T, D) decay tensor."""
    idx = torch.arange(x.shape[1], device=x.device)
    lag = (idx[:, None] - idx[None, :]).to(x.dtype)  # (T, T): t - s
    exponent = (lag[..., None] * log_beta).masked_fill((lag < 0)[..., None], float("-inf"))
    return torch.einsum("tsd,bsd->btd", torch.exp(exponent), x)


def _chunked_sums(x: Tensor, log_beta: Tensor) -> Tensor:
    """The same sums over chunks of ``CHUNK`` (the last one zero-padded at its end, which no
    earlier position reads): inside each chunk, then the state each chunk starts from."""
    B, T, D = x.shape
    n = -(-T // CHUNK)
    padded = F.pad(x, (0, 0, 0, n * CHUNK - T)).view(B * n, CHUNK, D)
    local = _decayed_sums(padded, log_beta).view(B, n, CHUNK, D)
    ends = _decayed_sums(local[:, :, -1], CHUNK * log_beta)  # (B, n, D): state after chunk c
    start = F.pad(ends[:, :-1], (0, 0, 1, 0))  # the state entering each chunk (0 for the first)
    within = torch.arange(1, CHUNK + 1, device=x.device).to(x.dtype)[:, None] * log_beta
    h = local + torch.exp(within) * start[:, :, None]  # beta^(i+1) carries the entering state
    return h.reshape(B, n * CHUNK, D)[:, :T]


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
        h = _decayed_sums(x, log_beta) if T <= CHUNK else _chunked_sums(x, log_beta)
        if h0 is not None:
            carry = torch.exp((idx + 1).to(x.dtype)[:, None] * log_beta)  # (T, D): beta^(t+1)
            h = h + carry[None] * h0[:, None, :]
        return h

    def step(self, x_t: Tensor, h: Tensor | None = None) -> Tensor:
        """One membrane update: the recurrence the scan is checked against."""
        return x_t if h is None else self.beta() * h + x_t

"""Precision weighting (Pi): trust experts in inverse proportion to their recent error
(Wong 2026, section 3.2, after Friston's precision-weighted prediction error).

    Pi_e = 1 / (var_e + 1e-4),    var_e <- 0.95 var_e + 0.05 err_e   after every optimiser step

Pi multiplies the routing scores. ``var`` lives outside autograd and is updated from the task's
feedback, one exponential-moving-average update per scored step, in time order. In the routing
ablation err_e is "expert e was not the correct one" (so Pi tends to [2, 1, 2, 1]); in the
regression tasks it is each expert's squared error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PrecisionTracker(nn.Module):
    def __init__(
        self, n_experts: int, momentum: float = 0.95, eps: float = 1e-4, var_init: float = 0.5
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.momentum, self.eps, self.var_init = momentum, eps, var_init
        self.register_buffer("var", torch.full((n_experts,), float(var_init)))

    def pi(self) -> Tensor:
        return 1.0 / (self.var + self.eps)  # (E,)

    @torch.no_grad()
    def update(self, expert_error: Tensor) -> None:
        """expert_error (B, S, E): S sequential EMA updates of the batch-mean error, vectorised:
        var_S = m^S var_0 + (1 - m) sum_s m^(S-1-s) err_s."""
        err = expert_error.mean(dim=0).to(self.var.dtype)  # (S, E)
        S = err.shape[0]
        m = self.momentum
        powers = torch.arange(S - 1, -1, -1, device=err.device, dtype=err.dtype)
        weights = (1.0 - m) * torch.pow(torch.tensor(m, dtype=err.dtype), powers)  # (S,)
        self.var.mul_(m**S).add_((weights[:, None] * err).sum(dim=0))

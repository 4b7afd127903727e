"""Anticipatory routing (Ant): route on a prediction of the next token (Wong 2026, section 3.3).

    x̂_{t+1} = f(u_t),   f: MLP in -> 4d -> d (ReLU),   aux loss 0.5 * MSE(x̂_{t+1}, x_{t+1})

u_t is x_t for the stateless predictor and [x_t, h_t] for the stateful one. The auxiliary loss
reads x_{t+1}, which is allowed: it only trains f; the logits at t never see the future.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class NextStatePredictor(nn.Module):
    def __init__(self, in_dim: int, d_model: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, 4 * d_model), nn.ReLU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, u: Tensor) -> Tensor:
        return self.net(u)  # (..., D)


def prediction_loss(x_hat: Tensor, x: Tensor, weight: float) -> Tensor | None:
    """weight * MSE between x̂_{t+1} (made at t) and the actual x_{t+1}; None for T = 1."""
    if x.shape[1] < 2:
        return None
    return weight * F.mse_loss(x_hat[:, :-1], x[:, 1:].detach())

"""Selective memory: a router whose memory decays at a rate read from the input.

    a_t      = sigmoid(U x_t + c)          per dimension: how much of the past to keep at t
    h_t      = a_t ⊙ h_{t-1} + x_t         h_{-1} = 0
    logits_t = W2 relu(W1 [x_t, h_t])

The recurrence is linear in h, so with C_t = sum_{k<=t} log a_k it unrolls to
h_t = sum_{s<=t} exp(C_t - C_s) ⊙ x_s + exp(C_t) ⊙ h_{-1}: all positions at once, with the
exponent masked to -inf above the diagonal *before* exp (else exp overflows and the backward
pass turns 0 * inf into NaN). step() is the plain recurrence the harness checks forward against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.contract import GateOutput, RouterGate, State, TaskInfo


class SelectiveMemoryRouter(RouterGate):
    causal = True

    def __init__(self, info: TaskInfo, hidden: int = 32, keep_init: float = 0.9) -> None:
        super().__init__(info)
        D, E = info.d_model, info.n_experts
        self.keep = nn.Linear(D, D)  # U, c
        nn.init.normal_(self.keep.weight, std=0.01)
        nn.init.constant_(self.keep.bias, math.log(keep_init / (1 - keep_init)))
        self.head = nn.Sequential(nn.Linear(2 * D, hidden), nn.ReLU(), nn.Linear(hidden, E))

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        T = x.shape[1]
        log_keep = F.logsigmoid(self.keep(x))  # (B, T, D)
        C = torch.cumsum(log_keep, dim=1)  # (B, T, D)
        gap = C[:, :, None, :] - C[:, None, :, :]  # (B, T, S, D): C_t - C_s
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)  # s > t
        decay = torch.exp(gap.masked_fill(future[None, :, :, None], float("-inf")))
        h = torch.einsum("btsd,bsd->btd", decay, x)  # (B, T, D)
        if state is not None:
            h = h + torch.exp(C) * state[:, None, :]
        logits = self.head(torch.cat([x, h], dim=-1))  # (B, T, E)
        return GateOutput(logits, h[:, -1])

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        h = x_t if state is None else torch.sigmoid(self.keep(x_t)) * state + x_t  # (B, D)
        return GateOutput(self.head(torch.cat([x_t, h], dim=-1)), h)

    def diagnostics(self) -> dict[str, Tensor]:
        return {"keep_bias": torch.sigmoid(self.keep.bias).detach()}

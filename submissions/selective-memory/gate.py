"""Selective memory: a router whose memory decays at a rate read from the input.

    a_t      = sigmoid(U x_t + c)          per dimension: how much of the past to keep at t
    h_t      = a_t ⊙ h_{t-1} + x_t         h_{-1} = 0
    logits_t = W2 relu(W1 [x_t, h_t])

The recurrence is linear in h, so with C_t = sum_{k<=t} log a_k it unrolls to
h_t = exp(C_t) ⊙ (sum_{s<=t} exp(-C_s) ⊙ x_s + h_{-1}): two cumulative sums, O(T) work, no loop
over tokens. exp(-C) grows with the sequence, so time is cut into chunks of 16 positions (C
restarts at each, the state is carried between them) and a_t is kept >= e^-5, which bounds the
exponents by 80 (float32 overflows at 88). step() is the plain recurrence the harness checks
forward against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.contract import GateOutput, RouterGate, State, TaskInfo

CHUNK = 16  # positions per chunk of the scan
MIN_LOG_KEEP = -5.0  # a_t >= e^-5, so |C| <= 16 * 5 = 80 within a chunk


class SelectiveMemoryRouter(RouterGate):
    causal = True

    def __init__(self, info: TaskInfo, hidden: int = 32, keep_init: float = 0.9) -> None:
        super().__init__(info)
        D, E = info.d_model, info.n_experts
        self.keep = nn.Linear(D, D)  # U, c
        nn.init.normal_(self.keep.weight, std=0.01)
        nn.init.constant_(self.keep.bias, math.log(keep_init / (1 - keep_init)))
        self.head = nn.Sequential(nn.Linear(2 * D, hidden), nn.ReLU(), nn.Linear(hidden, E))

    def _log_keep(self, x: Tensor) -> Tensor:
        return F.logsigmoid(self.keep(x)).clamp(min=MIN_LOG_KEEP)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        log_keep = self._log_keep(x)  # (B, T, D)
        carry = torch.zeros_like(x[:, 0]) if state is None else state  # (B, D)
        chunks = []
        for start in range(0, x.shape[1], CHUNK):  # one pass for T <= 16
            C = torch.cumsum(log_keep[:, start : start + CHUNK], dim=1)  # (B, L, D)
            inputs = torch.cumsum(torch.exp(-C) * x[:, start : start + CHUNK], dim=1)
            h = torch.exp(C) * (inputs + carry[:, None, :])  # (B, L, D)
            chunks.append(h)
            carry = h[:, -1]
        h = torch.cat(chunks, dim=1)  # (B, T, D)
        logits = self.head(torch.cat([x, h], dim=-1))  # (B, T, E)
        return GateOutput(logits, h[:, -1])

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        keep = torch.exp(self._log_keep(x_t))
        h = x_t if state is None else keep * state + x_t  # (B, D)
        return GateOutput(self.head(torch.cat([x_t, h], dim=-1)), h)

    def diagnostics(self) -> dict[str, Tensor]:
        return {"keep_bias": torch.sigmoid(self.keep.bias).detach()}

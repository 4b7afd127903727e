"""Stateless mean-pool control of Table 1 (Wong 2026, section 4.1), made causal.

    logits_t = W mean(x_0 .. x_t)

The running mean is a cumulative sum divided by the count; the state is (sum, count).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._papers import WONG_2026, WONG_2026_URL
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "mean-pool",
    description="Table 1 control: route on the running mean of the tokens so far.",
    paper=WONG_2026,
    equation="logits_t = W mean(x_0..x_t)",
    url=WONG_2026_URL,
)
class MeanPoolGate(RouterGate):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        if info.seq_len < 2:
            return False, "a running mean needs sequences of at least two tokens"
        return True, ""

    def _start(self, x: Tensor, state: State) -> tuple[Tensor, Tensor]:
        if state is None:
            return x.new_zeros(x.shape[0], x.shape[-1]), x.new_zeros(())
        return state

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        total, count = self._start(x, state)
        T = x.shape[1]
        sums = torch.cumsum(x, dim=1) + total[:, None, :]  # (B, T, D)
        counts = count + torch.arange(1, T + 1, device=x.device, dtype=x.dtype)  # (T,)
        logits = self.W(sums / counts[None, :, None])  # (B, T, E)
        return GateOutput(logits, (sums[:, -1], counts[-1]))

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        total, count = self._start(x_t, state)
        total, count = total + x_t, count + 1
        return GateOutput(self.W(total / count), (total, count))

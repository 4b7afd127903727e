"""A shortcut detector: logits from the position alone, never the input.

    logits_t = e(t)      (a learned vector per position t)

It can score well only where a task can be solved by counting positions (a switch at a fixed
step, a start domain that is always the same); elsewhere it learns the base rates. A gate whose
gain over affinity is matched by the clock's has learned the task's schedule, not its signal.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._budget import needs_sequences
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "clock",
    description="Shortcut detector: a learned vector per position t, no input at all.",
    equation="logits_t = e(t)",
)
class ClockRouter(RouterGate):
    def __init__(self, info: TaskInfo, positions: int | None = None) -> None:
        super().__init__(info)
        self.positions = positions or max(info.seq_len, 64)  # later positions share the last
        self.e = nn.Parameter(torch.zeros(self.positions, info.n_experts))

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_sequences(info)

    def initial_state(self, batch_size: int) -> State:
        return torch.zeros(batch_size, dtype=torch.long)  # positions seen so far

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        B, T, _ = x.shape
        seen = self.initial_state(B).to(x.device) if state is None else state
        t = seen[:, None] + torch.arange(T, device=x.device)  # (B, T)
        logits = self.e[t.clamp(max=self.positions - 1)]  # (B, T, E)
        return GateOutput(logits, seen + T)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        out = self.forward(x_t.unsqueeze(1), state)
        return GateOutput(out.logits.squeeze(1), out.state)

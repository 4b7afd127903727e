"""A generic recurrent router: a GRU over the tokens, read out with the current token.

    h_t = GRU(x_t, h_{t-1}),    logits_t = W [x_t, h_t]

No idea from any paper: the control that shows what a learned memory alone achieves on a task.
Its width is the largest whose parameter count fits in beta+pi+ant's on the same task.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._budget import needs_sequences, reference_budget, widest
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


def gru_parameters(d_model: int, hidden: int, n_experts: int, gates: int = 3) -> int:
    recurrent = gates * (d_model * hidden + hidden * hidden + 2 * hidden)
    return recurrent + (d_model + hidden) * n_experts + n_experts


@register_gate(
    "gru",
    description="Generic memory: a GRU over the tokens, read out with the current token "
    "(width matched to beta+pi+ant's parameter count).",
    equation="h_t = GRU(x_t, h_{t-1}), logits_t = W [x_t, h_t]",
)
class GRURouter(RouterGate):
    cell = nn.GRU
    gates_per_unit = 3

    def __init__(self, info: TaskInfo, hidden: int | None = None) -> None:
        super().__init__(info)
        D, E = info.d_model, info.n_experts
        if hidden is None:
            budget = reference_budget(info)
            hidden = widest(lambda h: gru_parameters(D, h, E, self.gates_per_unit), budget)
        self.hidden = hidden
        self.rnn = self.cell(D, hidden, batch_first=True)
        self.W = nn.Linear(D + hidden, E)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_sequences(info)

    def initial_state(self, batch_size: int) -> State:
        return torch.zeros(batch_size, self.hidden)

    def _to_rnn(self, state: State, batch: int) -> Any:
        h = self.initial_state(batch).to(self.W.weight) if state is None else state
        return h.unsqueeze(0).contiguous()

    def _from_rnn(self, final: Any) -> State:
        return final.squeeze(0)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        hs, final = self.rnn(x, self._to_rnn(state, x.shape[0]))  # (B, T, H)
        return GateOutput(self.W(torch.cat([x, hs], dim=-1)), self._from_rnn(final))

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        out = self.forward(x_t.unsqueeze(1), state)
        return GateOutput(out.logits.squeeze(1), out.state)

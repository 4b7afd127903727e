"""A generic recurrent router with an LSTM memory (the GRU router's sibling).

    (h_t, c_t) = LSTM(x_t, h_{t-1}, c_{t-1}),    logits_t = W [x_t, h_t]

Its width is the largest whose parameter count fits in beta+pi+ant's on the same task.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from baselines.gru import GRURouter
from suite.contract import State
from suite.gates.entries import register_gate


@register_gate(
    "lstm",
    description="Generic memory: an LSTM over the tokens, read out with the current token "
    "(width matched to beta+pi+ant's parameter count).",
    equation="(h_t, c_t) = LSTM(x_t, h_{t-1}, c_{t-1}), logits_t = W [x_t, h_t]",
)
class LSTMRouter(GRURouter):
    cell = nn.LSTM
    gates_per_unit = 4

    def initial_state(self, batch_size: int) -> State:
        return torch.zeros(batch_size, self.hidden), torch.zeros(batch_size, self.hidden)

    def _to_rnn(self, state: State, batch: int) -> Any:
        h, c = self.initial_state(batch) if state is None else state
        h, c = h.to(self.W.weight), c.to(self.W.weight)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def _from_rnn(self, final: Any) -> State:
        return final[0].squeeze(0), final[1].squeeze(0)

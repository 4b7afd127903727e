"""A generic attention router: one head of causal self-attention over the tokens so far.

    a_t = sum_{s<=t} softmax_s(q_t . k_s / sqrt(d)) v_s,    logits_t = W [x_t, a_t]

No position encoding: it sees which tokens came before, not where. The state is the keys and
values seen so far, so a stream continues exactly where ``forward`` stopped. Its key width is the
largest whose parameter count fits in beta+pi+ant's on the same task.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from baselines._budget import needs_sequences, reference_budget, widest
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


def attention_parameters(d_model: int, width: int, n_experts: int) -> int:
    return 3 * (d_model * width + width) + (d_model + width) * n_experts + n_experts


@register_gate(
    "causal-attention",
    description="Generic memory: one head of causal self-attention over x_<=t, read out with the "
    "current token (width matched to beta+pi+ant's parameter count).",
    equation="logits_t = W [x_t, sum_{s<=t} softmax(q_t k_s / sqrt d) v_s]",
)
class CausalAttentionRouter(RouterGate):
    def __init__(self, info: TaskInfo, width: int | None = None) -> None:
        super().__init__(info)
        D, E = info.d_model, info.n_experts
        if width is None:
            width = widest(lambda w: attention_parameters(D, w, E), reference_budget(info))
        self.width = width
        self.qkv = nn.Linear(D, 3 * width)
        self.W = nn.Linear(D + width, E)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_sequences(info)

    def initial_state(self, batch_size: int) -> State:
        empty = torch.zeros(batch_size, 0, self.width)
        return empty, empty.clone()

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.width, dim=-1)  # (B, T, w) each
        past_k, past_v = self.initial_state(B) if state is None else state
        keys = torch.cat([past_k.to(k), k], dim=1)  # (B, P + T, w)
        values = torch.cat([past_v.to(v), v], dim=1)
        P = keys.shape[1] - T
        scores = q @ keys.transpose(1, 2) / math.sqrt(self.width)  # (B, T, P + T)
        visible = (
            torch.arange(P + T, device=x.device) <= (P + torch.arange(T, device=x.device))[:, None]
        )
        weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
        attended = weights @ values  # (B, T, w)
        return GateOutput(self.W(torch.cat([x, attended], dim=-1)), (keys, values))

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        out = self.forward(x_t.unsqueeze(1), state)
        return GateOutput(out.logits.squeeze(1), out.state)

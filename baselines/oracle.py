"""The oracle ceiling: route on the *next* token (Wong 2026, Table 5).

    logits_t = W x_{t+1}

It reads the future, so it is not causal: the harness labels it a ceiling and never ranks it. It
only makes sense where the target is the next token's domain.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._papers import WONG_2026, WONG_2026_URL
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "oracle",
    description="Non-causal ceiling: routes on the next token x_{t+1}.",
    paper=WONG_2026,
    equation="logits_t = W x_{t+1}",
    url=WONG_2026_URL,
)
class OracleGate(RouterGate):
    causal = False

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        if info.get("target") != "next-domain":
            return False, "the oracle reads x[t+1]; it is a ceiling only for next-domain targets"
        return True, ""

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        following = torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)  # (B, T, D)
        return GateOutput(self.W(following))

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        raise NotImplementedError("the oracle needs the next token and cannot stream")

"""The standard dense softmax router (Shazeer et al. 2017, without noise or top-k).

    logits_t = W x_t + b        (every expert mixed by softmax)

The "standard" gate of Table 6 in Wong (2026) is the same rule; `affinity` holds it for every
family, and this id is its name in the router zoo, where it runs on the character LM only.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from baselines._papers import SHAZEER_2017, SHAZEER_2017_URL
from baselines.zoo._common import needs_lm
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "softmax",
    description="The dense softmax router: every expert, mixed by softmax(W x_t).",
    paper=SHAZEER_2017,
    equation="logits_t = W x_t + b",
    url=SHAZEER_2017_URL,
)
class SoftmaxRouter(RouterGate):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_lm(info)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self.W(x))

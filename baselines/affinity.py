"""Affinity routing, the stateless gate of standard MoE layers (Wong 2026, eq. 1).

    logits_t = W x_t        (g_t = softmax of the logits)

It is the reference gate of every transition task (normalised score 0) and the smallest complete
example of the gate contract in ``suite/contract.py``.
"""

from __future__ import annotations

from torch import Tensor, nn

from baselines._papers import WONG_2026, WONG_2026_URL
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "affinity",
    description="Stateless affinity routing: each token is routed on its own representation.",
    paper=WONG_2026,
    equation="logits_t = W x_t",
    url=WONG_2026_URL,
)
class AffinityGate(RouterGate):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self.W(x))  # (B, T, E); stateless, so no state to carry

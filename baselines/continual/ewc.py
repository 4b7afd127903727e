"""Elastic weight consolidation (Kirkpatrick et al. 2017, eq. 3) over a linear router.

    logits_t = [x_t, 1] Wᵀ,   loss = L_task + λ/2 Σ_i F_i (θ_i − θ*_i)²

θ are the adapters' and the router's parameters, θ* their values after the previous tasks and F
the diagonal Fisher information there. The penalty needs the family's data, so the family applies
it (``regime = "ewc"``, strength ``ewc_lambda``); the gate itself is a plain linear router.
"""

from __future__ import annotations

from typing import ClassVar

from baselines._papers import KIRKPATRICK_2017, KIRKPATRICK_2017_URL
from baselines.continual._common import LinearRouter
from suite.contract import TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "ewc",
    description="Linear router; the family adds the EWC penalty over adapters and router.",
    paper=KIRKPATRICK_2017,
    equation="loss = L_task + lambda/2 sum_i F_i (theta_i - theta*_i)^2",
    url=KIRKPATRICK_2017_URL,
)
class EWCGate(LinearRouter):
    regime: ClassVar[str] = "ewc"

    def __init__(self, info: TaskInfo, ewc_lambda: float = 100.0) -> None:
        super().__init__(info)
        self.ewc_lambda = float(ewc_lambda)

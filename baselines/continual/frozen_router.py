"""Control: a linear router trained on the first task only, then frozen.

    logits_t = [x_t, 1] W₀ᵀ        (W₀: the weight at the end of the first task)

The routing half of freezing old gates when learning new distributions (as Lifelong-MoE keeps
earlier experts' gating fixed, Chen et al. 2023): routing can never drift, so any forgetting left
is in the adapters. After the first ``end_task`` the weight is used detached (and no longer
requires a gradient), so it gets no gradient and Adam skips it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines._papers import CHEN_2023, CHEN_2023_URL
from baselines.continual._common import LinearRouter
from suite.contract import TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "frozen-router",
    description="Linear router trained on the first task only, then frozen (no routing drift).",
    paper=CHEN_2023,
    equation="logits_t = W_0 [x_t, 1]",
    url=CHEN_2023_URL,
)
class FrozenRouterGate(LinearRouter):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    def weight(self) -> Tensor:
        return self.W.detach() if bool(self.frozen) else self.W

    def end_task(self, index: int) -> None:
        self.frozen.fill_(
            True
        )  # the first task has ended (end_task(0)); later calls change nothing
        self.W.requires_grad_(False)  # and nothing left to train: optimisers leave it out

"""Expert-choice routing (Zhou et al. 2022): each expert takes its top-C tokens of the batch.

    S = softmax(W x) over experts;  expert e keeps the C positions with the largest S[:, e]
    C = capacity · (B·T) · k / E

A token's routing depends on every other token of the batch, later ones included, so the rule
cannot run causally (nor one sequence at a time). It is registered as an ordinary router on
purpose, as a naive port would be: the harness's causality and isolation checks must reject it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._papers import ZHOU_2022, ZHOU_2022_URL
from baselines.zoo._common import log_weights, needs_lm
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "expert-choice",
    description="Expert-choice routing: experts pick their top-C tokens of the batch (not "
    "causal: the checks reject it).",
    paper=ZHOU_2022,
    equation="expert e takes the C tokens with the largest softmax(W x)[:, e]",
    url=ZHOU_2022_URL,
)
class ExpertChoiceRouter(RouterGate):
    def __init__(self, info: TaskInfo, capacity: float = 1.0) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)
        self.capacity = float(capacity)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_lm(info)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        scores = torch.softmax(self.W(x), dim=-1)  # (B, T, E)
        flat = scores.reshape(-1, scores.shape[-1])
        k = int(self.info.get("top_k", 1))
        C = max(1, min(flat.shape[0], round(self.capacity * flat.shape[0] * k / flat.shape[1])))
        taken = flat.topk(C, dim=0).indices  # (C, E): the positions each expert keeps
        mask = torch.zeros_like(flat).scatter(0, taken, 1.0)
        kept = flat * mask
        total = kept.sum(-1, keepdim=True)
        weights = torch.where(
            total > 0, kept / total.clamp(min=1e-30), torch.full_like(kept, 1 / flat.shape[1])
        )
        return GateOutput(log_weights(weights).reshape(scores.shape))

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self.forward(x_t[:, None]).logits[:, 0], None)

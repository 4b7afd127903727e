"""Top-k routing with the Switch/GShard load-balancing loss (Fedus et al. 2021, eq. 4; Lepikhin
et al. 2020), optionally with ST-MoE's router z-loss (Zoph et al. 2022, eq. 5).

    p_t = softmax(W x_t);  keep the k largest, renormalised (log-weights as logits)
    L_aux = α · E · Σ_e f_e · P_e   (+ z · mean_t logsumexp(W x_t)²)

f_e is the share of (position, choice) dispatches that went to expert e and P_e the mean router
probability, both over every position of the call: the loss pushes towards equal loads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._papers import FEDUS_2021, FEDUS_2021_URL, ZOPH_2022, ZOPH_2022_URL
from baselines.zoo._common import load_balancing_loss, log_weights, needs_lm, top_k_mask, z_loss
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "topk-z",
    description="Top-k routing with load balancing and the router z-loss (ST-MoE).",
    paper=ZOPH_2022,
    equation="top-k of softmax(W x_t); + α E Σ f_e P_e + z mean logsumexp(W x_t)^2",
    url=ZOPH_2022_URL,
    z_weight=1e-3,
)
@register_gate(
    "topk-lb",
    description="Top-k routing with the Switch load-balancing loss.",
    paper=FEDUS_2021,
    equation="top-k of softmax(W x_t), renormalised; + α E Σ_e f_e P_e",
    url=FEDUS_2021_URL,
)
class TopKRouter(RouterGate):
    def __init__(self, info: TaskInfo, balance: float = 0.01, z_weight: float = 0.0) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)
        self.k = int(info.get("top_k", 1))
        self.balance, self.z_weight = float(balance), float(z_weight)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_lm(info)

    def _route(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raw = self.W(x)
        probs = torch.softmax(raw, dim=-1)
        mask = top_k_mask(probs, self.k)
        kept = probs * mask
        aux = load_balancing_loss(probs, mask, self.balance)
        if self.z_weight:
            aux = aux + z_loss(raw, self.z_weight)
        return log_weights(kept / kept.sum(-1, keepdim=True)), aux

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        logits, aux = self._route(x)
        return GateOutput(logits, None, aux)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self._route(x_t)[0], None)

"""The expert-router coupling (ERC) loss (2025) on top-k routing with load balancing.

    p = softmax(W x_t), top-k renormalised (as ``topk-lb``);  probe i = W_i + noise
    M_ij = ‖expert j's hidden activation on probe i‖  (E × E: a cost independent of the batch)
    L_ERC = mean_{i≠j} ReLU(M_ij − α M_ii) + ReLU(M_ij − α M_jj)

Each router row stands in for the tokens routed to its expert: the loss makes every expert answer
its own row more strongly than other experts do, and every row move its own expert more than any
other, so the router's choice and the experts' abilities stay tied. The family runs the probes
through its experts (``suite.contract``, Requests: ``Probes``). The reference gives no α, weight
or noise: α = 0.5, weight 0.01 (the load-balancing loss's) and Gaussian noise of 5% of each row's
size per coordinate are ours.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from baselines._papers import ERC_2025, ERC_2025_URL
from baselines.zoo._common import own_generator
from baselines.zoo.topk import TopKRouter
from suite.contract import GateOutput, Probes, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "erc",
    description="Top-k routing with load balancing and the expert-router coupling loss: each "
    "router row, perturbed, is run through every expert.",
    paper=ERC_2025,
    equation="topk-lb + λ mean_{i≠j} ReLU(M_ij − α M_ii) + ReLU(M_ij − α M_jj), "
    "M_ij = ‖act_j(W_i + ε)‖",
    url=ERC_2025_URL,
)
class ERCRouter(TopKRouter):
    def __init__(
        self,
        info: TaskInfo,
        balance: float = 0.01,
        alpha: float = 0.5,
        weight: float = 0.01,
        noise: float = 0.05,
    ) -> None:
        super().__init__(info, balance=balance)
        self.alpha, self.weight, self.noise = float(alpha), float(weight), float(noise)
        self.generator = own_generator()

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        ok, why = super().supports(info, **hparams)
        if ok and "probes" not in (info.get("requests") or ()):
            return False, "ERC needs a family that runs probes through its experts (requests)"
        return ok, why

    def probes(self) -> Tensor:
        rows = self.W.weight  # (E, D)
        size = rows.detach().norm(dim=-1, keepdim=True) / rows.shape[-1] ** 0.5
        eps = torch.randn(rows.shape, generator=self.generator, dtype=rows.dtype).to(rows.device)
        return rows + self.noise * size * eps

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        logits, aux = self._route(x)
        probes = None
        if self.training and torch.is_grad_enabled():
            probes = Probes(self.probes(), self.alpha, self.weight)
        return GateOutput(logits, None, aux, None, probes)

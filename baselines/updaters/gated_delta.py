"""The gated delta rule on the B factors of LoRA (Gated DeltaNet: Yang, Kautz & Hatamizadeh 2025).

The delta rule of ``delta_rule.py`` with a learned decay alpha_t = sigmoid(w_a h_t + b_a) of the
whole memory before each write, so stale facts fade while a write still replaces what its key held:

    M_t = alpha_t (M_{t-1} - beta_t k_t k_t^T M_{t-1}) + beta_t k_t v_t^T

Chunkwise like the delta rule, with the decays folded into the triangular solve in log space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.updaters.delta_rule import DeltaRuleUpdater
from suite.contract import TaskInfo
from suite.gates.entries import register_gate

GATED_DELTANET = "Yang, Kautz & Hatamizadeh (2025), Gated Delta Networks"
GATED_DELTANET_URL = "https://arxiv.org/abs/2412.06464"


@register_gate(
    "gated-delta",
    description="Gated DeltaNet's rule (decay, then delta write) on the B factors of LoRA.",
    paper=GATED_DELTANET,
    url=GATED_DELTANET_URL,
    equation="M_t = alpha_t (M_{t-1} - beta_t k_t k_t^T M_{t-1}) + beta_t k_t v_t^T",
)
class GatedDeltaUpdater(DeltaRuleUpdater):
    def __init__(
        self, info: TaskInfo, chunk: int = 16, beta_init: float = 0.5, alpha_init: float = 0.99
    ) -> None:
        super().__init__(info, chunk=chunk, beta_init=beta_init)
        self.alpha = nn.Linear(info.d_model, 1)
        with torch.no_grad():
            self.alpha.weight.mul_(0.1)
            self.alpha.bias.fill_(float(torch.logit(torch.tensor(alpha_init))))

    def _decay(self, h: Tensor) -> Tensor:
        return F.logsigmoid(self.alpha(h))[..., 0]

    def diagnostics(self) -> dict[str, Tensor]:
        return {"alpha_bias": torch.sigmoid(self.alpha.bias.detach())}

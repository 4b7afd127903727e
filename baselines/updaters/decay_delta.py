"""Decay gate + delta rule: one of the preprint's ablated update rules (16.1% persistent there).

A learned, input-dependent decay alpha_t of the memory and a delta-rule write of constant learned
strength beta (one scalar), on the B factors of LoRA as in ``delta_rule.py``:

    M_t = alpha_t (M_{t-1} - beta k_t k_t^T M_{t-1}) + beta k_t v_t^T,  alpha_t = sigmoid(w h_t + b)

Unlike ``gated-delta``, the write strength does not depend on the token: only forgetting does.
Chunkwise, with the decays folded into the triangular solve.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.updaters._factors import PREPRINT, PREPRINT_URL
from baselines.updaters.gated_delta import GatedDeltaUpdater
from suite.contract import TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "decay-delta",
    description="The preprint's ablation: a learned decay gate with a constant-strength delta "
    "write.",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="M_t = alpha_t (M_{t-1} - beta k k^T M_{t-1}) + beta k v^T, beta a learned scalar",
)
class DecayDeltaUpdater(GatedDeltaUpdater):
    def __init__(
        self, info: TaskInfo, chunk: int = 16, beta_init: float = 0.5, alpha_init: float = 0.99
    ) -> None:
        super().__init__(info, chunk=chunk, beta_init=beta_init, alpha_init=alpha_init)
        del self.beta
        self.beta_logit = nn.Parameter(torch.logit(torch.tensor(beta_init)))

    def _inputs(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return *self._keys_values(h), torch.sigmoid(self.beta_logit).expand(h.shape[:-1])

    def diagnostics(self) -> dict[str, Tensor]:
        return {"beta": torch.sigmoid(self.beta_logit.detach()), **super().diagnostics()}

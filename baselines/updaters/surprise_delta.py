"""Surprise gate + delta rule: one of the preprint's ablated update rules (14.6% persistent there).

The delta rule of ``delta_rule.py`` whose write strength grows with the memory's surprise, the
error of what it recalls for the current key against the value it is offered:

    s_t = ||v_t - M_{t-1}^T k_t|| / sqrt(d),   beta_t = sigmoid(a s_t + w h_t + b)
    M_t = M_{t-1} + beta_t k_t (v_t - M_{t-1}^T k_t)^T

beta_t depends on the memory itself, so no chunkwise form exists: ``forward`` runs the
recurrence position by position (kept sequential on purpose, as in the preprint).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.updaters._factors import PREPRINT, PREPRINT_URL
from baselines.updaters.delta_rule import DeltaRuleUpdater
from suite.contract import State, TaskInfo, UpdaterOutput
from suite.gates.entries import register_gate


@register_gate(
    "surprise-delta",
    description="The preprint's ablation: a delta rule written harder where the memory is "
    "surprised (sequential).",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="beta_t = sigmoid(a ||v_t - M^T k_t|| + w h_t + b), delta-rule write",
)
class SurpriseDeltaUpdater(DeltaRuleUpdater):
    def __init__(self, info: TaskInfo, beta_init: float = 0.5) -> None:
        super().__init__(info, beta_init=beta_init)
        self.surprise_scale = nn.Parameter(torch.tensor(1.0))

    def _write(self, M: Tensor, k: Tensor, v: Tensor, gate_logit: Tensor) -> Tensor:
        """One position: its key k (B, r), value v (B, d) and gate logit w h_t + b (B,)."""
        error = v - (M * k[..., None]).sum(1)  # (B, d)
        surprise = error.norm(dim=-1) / error.shape[-1] ** 0.5
        beta = torch.sigmoid(self.surprise_scale * surprise + gate_logit)
        return M + beta[:, None, None] * k[..., None] * error[:, None, :]

    def _projections(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """What does not depend on the state: keys, values and gate logits."""
        return *self._keys_values(h), self.beta(h)[..., 0]

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        M = self.initial_state(x.shape[0]) if state is None else state
        states = []
        for k, v, logit in zip(*(z.unbind(1) for z in self._projections(x)), strict=True):
            M = self._write(M, k, v, logit)
            states.append(M)
        return UpdaterOutput(self._factors(torch.stack(states, dim=1)), M)

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        M = self.initial_state(x_t.shape[0]) if state is None else state
        M = self._write(M, *self._projections(x_t))
        return UpdaterOutput(self._factors(M), M)

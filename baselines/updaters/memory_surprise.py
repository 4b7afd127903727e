"""Memory-surprise gate on the interpolation: one of the preprint's ablated update rules (3.6%
persistent there), after Titans' momentum of surprise (Behrouz, Zhong & Mirrokni 2025).

The gated interpolation of ``lerp.py`` whose gate is driven by a running (momentum) average of
how far each proposed write is from the factors already held:

    s_t = ||v_t - S_{t-1}|| / sqrt(P),   m_t = eta m_{t-1} + (1 - eta) s_t
    beta_t = sigmoid(a m_t + w h_t + b),  S_t = (1 - beta_t) S_{t-1} + beta_t v_t

The gate depends on the state, so ``forward`` is the sequential recurrence.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from baselines.updaters._factors import PREPRINT, PREPRINT_URL
from baselines.updaters.lerp import LerpUpdater
from suite.contract import State, TaskInfo, UpdaterOutput
from suite.gates.entries import register_gate


@register_gate(
    "memory-surprise",
    description="The preprint's ablation: lerp of LoRA factors gated by a momentum of surprise "
    "(sequential).",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="m_t = eta m_{t-1} + (1 - eta) ||v_t - S_{t-1}||, beta_t = sigmoid(a m_t + w h_t + b)",
)
class MemorySurpriseUpdater(LerpUpdater):
    def __init__(self, info: TaskInfo, beta_init: float = 0.1, eta: float = 0.9) -> None:
        super().__init__(info, parallel=False, beta_init=beta_init)
        self.eta = eta
        self.surprise_scale = nn.Parameter(torch.tensor(1.0))

    def initial_state(self, batch_size: int) -> State:
        S = super().initial_state(batch_size)
        return (S, S.new_zeros(batch_size))

    def _write(self, state: State, v: Tensor, gate_logit: Tensor) -> tuple[Tensor, Tensor]:
        """One position: its proposed write v (B, P) and its input's gate logit w h_t + b (B,)."""
        S, m = state
        surprise = (v - S).norm(dim=-1) / math.sqrt(v.shape[-1])
        m = self.eta * m + (1 - self.eta) * surprise
        beta = torch.sigmoid(self.surprise_scale * m + gate_logit)[:, None]
        return (1 - beta) * S + beta * v, m

    def _projections(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """What does not depend on the state, for every position at once: writes and gate
        logits."""
        return self.write(h), self.beta(h)[..., 0]

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        state = self.initial_state(x.shape[0]) if state is None else state
        states = []
        for v, logit in zip(*(z.unbind(1) for z in self._projections(x)), strict=True):
            state = self._write(state, v, logit)
            states.append(state[0])
        return UpdaterOutput(self.layout.split(torch.stack(states, dim=1)), state)

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        state = self.initial_state(x_t.shape[0]) if state is None else state
        state = self._write(state, *self._projections(x_t))
        return UpdaterOutput(self.layout.split(state[0]), state)

"""Gated linear interpolation of LoRA factors: the preprint's DeltaNet-LoRA update rule.

    S_t = (1 - beta_t) S_{t-1} + beta_t v_t,    beta_t = sigmoid(w . h_t + b),  b = logit(0.1)

S is every adapted matrix's LoRA factors, flattened; v_t is generated from h_t. ``lerp`` runs the
recurrence position by position (the preprint's sequential form, kept sequential on purpose: its
speed against the scan is one of the claims); ``lerp-scan`` computes the same S_t in parallel,
with C_t = sum_{s<=t} log(1 - beta_s):

    S_t = sum_{j<=t} exp(C_t - C_j) beta_j v_j + exp(C_t) S_0

masking j > t to -inf *before* exp (the preprint's note: masking after exp overflows and the
backward pass yields NaN).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.updaters._factors import (
    PREPRINT,
    PREPRINT_URL,
    FactorLayout,
    WriteGenerator,
    needs_adapted,
    zero_state,
)
from suite.contract import State, TaskInfo, UpdaterGate, UpdaterOutput
from suite.gates.entries import register_gate


@register_gate(
    "lerp",
    description="Gated linear interpolation of LoRA factors, sequential (the preprint's rule).",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="S_t = (1 - beta_t) S_{t-1} + beta_t v_t, beta_t = sigmoid(w h_t + b)",
    parallel=False,
)
@register_gate(
    "lerp-scan",
    description="The same rule as lerp in its parallel log-space form.",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="S_t = sum_{j<=t} exp(C_t - C_j) beta_j v_j, C_t = sum_{s<=t} log(1 - beta_s)",
    parallel=True,
)
class LerpUpdater(UpdaterGate):
    def __init__(self, info: TaskInfo, parallel: bool = True, beta_init: float = 0.1) -> None:
        super().__init__(info)
        self.parallel = parallel
        self.layout = FactorLayout(info)
        self.write = WriteGenerator(info.d_model, self.layout)
        self.beta = nn.Linear(info.d_model, 1)
        with torch.no_grad():
            self.beta.weight.mul_(0.1)
            self.beta.bias.fill_(math.log(beta_init / (1 - beta_init)))

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_adapted(info)

    def initial_state(self, batch_size: int) -> State:
        return zero_state(batch_size, self.layout, self.beta.weight)

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        S0 = self.initial_state(x.shape[0]) if state is None else state
        logit = self.beta(x)[..., 0]  # (B, T)
        v = self.write(x)  # (B, T, P)
        S = self._scan(logit, v, S0) if self.parallel else self._loop(logit, v, S0)
        return UpdaterOutput(self.layout.split(S), S[:, -1])

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        S = self.initial_state(x_t.shape[0]) if state is None else state
        beta = torch.sigmoid(self.beta(x_t))  # (B, 1)
        S = (1 - beta) * S + beta * self.write(x_t)
        return UpdaterOutput(self.layout.split(S), S)

    @staticmethod
    def _loop(logit: Tensor, v: Tensor, S: Tensor) -> Tensor:
        beta = torch.sigmoid(logit).unsqueeze(-1)  # (B, T, 1)
        states = []
        # unbind, not v[:, t]: each indexed slice's backward would write a whole (B, T, P) zero
        # tensor, T of them per pass
        for beta_t, v_t in zip(beta.unbind(1), v.unbind(1), strict=True):
            S = (1 - beta_t) * S + beta_t * v_t
            states.append(S)
        return torch.stack(states, dim=1)

    @staticmethod
    def _scan(logit: Tensor, v: Tensor, S0: Tensor) -> Tensor:
        T = v.shape[1]
        log_keep = -F.softplus(logit)  # log(1 - beta), stable for any logit
        log_beta = -F.softplus(-logit)  # log(beta)
        C = torch.cumsum(log_keep, dim=1)  # (B, T)
        exponent = C[:, :, None] - C[:, None, :] + log_beta[:, None, :]  # (B, t, j)
        future = torch.ones(T, T, dtype=torch.bool, device=v.device).triu(1)
        weights = torch.exp(exponent.masked_fill(future, float("-inf")))  # mask BEFORE exp
        return weights @ v + torch.exp(C).unsqueeze(-1) * S0.unsqueeze(1)

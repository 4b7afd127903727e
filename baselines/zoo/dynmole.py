"""DynMoLE's hybrid routing (Li et al. 2025): top-p with a Tsallis-entropy fallback to all experts.

    p = softmax(W x_t);  keep the fewest top experts whose probabilities sum to top_p (0.75),
    at least min_experts (2); if S_q(p) / S_q(uniform) > 0.9 (Tsallis, q = 1.1) keep them all
    L_aux = 0.01 · mean_t S_q(p_t) + 0.001 · E · Σ_e f_e P_e

An uncertain router spreads a token over every expert instead of betting on a few; the entropy
term pushes it to be certain. f_e is the share of activations that went to expert e.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._papers import DYNMOLE_2025, DYNMOLE_2025_URL
from baselines.zoo._common import load_balancing_loss, log_weights, needs_lm
from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate


def tsallis(p: Tensor, q: float) -> Tensor:
    """Tsallis entropy (1 - Σ p^q) / (q - 1) over the last axis."""
    return (1.0 - p.pow(q).sum(-1)) / (q - 1.0)


def top_p_mask(p: Tensor, top_p: float, at_least: int) -> Tensor:
    """The fewest most probable experts whose probabilities reach top_p (and at least k)."""
    ranked, order = p.sort(dim=-1, descending=True)
    before = ranked.cumsum(-1) - ranked  # mass of the experts ranked above each one
    rank = torch.arange(p.shape[-1], device=p.device)
    keep_ranked = (before < top_p) | (rank < at_least)
    return torch.zeros_like(keep_ranked).scatter(-1, order, keep_ranked)


@register_gate(
    "dynmole",
    description="DynMoLE: top-p (0.75, at least 2) routing that falls back to every expert when "
    "the Tsallis entropy is high.",
    paper=DYNMOLE_2025,
    equation="top-p(softmax(W x)), all if S_q/S_q(uniform) > 0.9; + 0.01 S_q + 0.001 E Σ f P",
    url=DYNMOLE_2025_URL,
)
class DynMoLERouter(RouterGate):
    def __init__(
        self,
        info: TaskInfo,
        top_p: float = 0.75,
        min_experts: int = 2,
        q: float = 1.1,
        threshold: float = 0.9,
        entropy_weight: float = 0.01,
        balance: float = 0.001,
    ) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)
        self.top_p, self.min_experts, self.q = float(top_p), int(min_experts), float(q)
        self.threshold, self.entropy_weight = float(threshold), float(entropy_weight)
        self.balance = float(balance)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_lm(info)

    def _route(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = torch.softmax(self.W(x), dim=-1)
        E = p.shape[-1]
        entropy = tsallis(p, self.q)
        uniform = (1.0 - E ** (1.0 - self.q)) / (self.q - 1.0)
        unsure = (entropy / uniform > self.threshold).unsqueeze(-1)
        active = top_p_mask(p, self.top_p, min(self.min_experts, E)) | unsure
        kept = p * active
        aux = self.entropy_weight * entropy.mean() + load_balancing_loss(p, active, self.balance)
        return log_weights(kept / kept.sum(-1, keepdim=True)), aux

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        logits, aux = self._route(x)
        return GateOutput(logits, None, aux)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self._route(x_t)[0], None)

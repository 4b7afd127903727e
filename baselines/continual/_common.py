"""Shared plumbing of the continual-learning routers: the task-sequence check and the linear router.

Every router here refuses tasks without a task sequence: the other families' router tasks would
otherwise run them, where ``begin_task``/``end_task`` are never called and the comparison means
nothing. The linear router works on the augmented input [x, 1] (one weight E×(D+1), no separate
bias), so that a projection of the weight (``grip-router``) covers the bias too.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from suite.contract import GateOutput, RouterGate, State, TaskInfo

NEEDS_SEQUENCE = "a continual-learning baseline needs a task sequence (info.n_tasks)"
FORCED = 1e4
"""Logit of a forced expert (others 0): the family's top-k softmax gives the runner-up exactly 0
weight (e^-10000 underflows), so no other sub-expert gets a gradient, not even a tiny one that
Adam's normalisation would turn into a visible step."""
NEVER = -1e4
"""Logit of an expert that must never be chosen: finite, so outputs stay finite."""


def needs_sequence(info: TaskInfo) -> tuple[bool, str]:
    if info.get("n_tasks") is None:
        return False, NEEDS_SEQUENCE
    return True, ""


def augment(x: Tensor) -> Tensor:
    """[x, 1]: (..., D) -> (..., D+1)."""
    return torch.cat([x, x.new_ones(*x.shape[:-1], 1)], dim=-1)


def forced_logits(x: Tensor, n_experts: int, expert: int) -> Tensor:
    """(B, T, E) logits that put ``expert`` first: FORCED there, 0 elsewhere."""
    logits = x.new_zeros(*x.shape[:-1], n_experts)
    logits[..., expert] = FORCED
    return logits


class ContinualRouter(RouterGate):
    """A router that runs only on continual-learning tasks."""

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_sequence(info)


class LinearRouter(ContinualRouter):
    """logits_t = [x_t, 1] Wᵀ, W (E, D+1) drawn as nn.Linear draws its weight and bias."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        bound = 1.0 / math.sqrt(info.d_model)
        self.W = nn.Parameter(torch.empty(info.n_experts, info.d_model + 1).uniform_(-bound, bound))

    def weight(self) -> Tensor:
        """The weight in force (subclasses freeze or project it)."""
        return self.W

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(augment(x) @ self.weight().T)  # (B, T, E); stateless

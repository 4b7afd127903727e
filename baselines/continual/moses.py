"""Mixtures of SubExperts (MoSEs, 2025), routed by an L2P-style key pool (Wang et al. 2022).

    q_t = mean(x_0 .. x_t),   logits_t,e = s · cos(q_t, k_e)           (evaluation)
    logits_t = F · e_i,      aux = λ · mean_t (1 − cos(q_t, k_i))      (training task i)

Each sub-expert has a learned key k_e. While task i is trained its own sub-expert, expert i, is
forced (task-specific routing: the adapters of other tasks get no gradient), and the pull loss
Σ_selected (1 − cos(q, k)) of L2P's objective draws k_i to the task's queries. At evaluation the
task is unknown: a query is matched to the keys of the tasks seen so far by cosine top-k, so
an input is routed to the sub-experts of the tasks it resembles. Experts never assigned a task get
a very negative (finite) logit and are never chosen; before any task all keys compete.

The query is the causal running mean of the sequence (state = (sum, count)), so the routing of a
position uses only the positions up to it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines._papers import MOSES, MOSES_URL
from baselines.continual._common import FORCED, NEVER, ContinualRouter, needs_sequence
from suite.contract import GateOutput, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "moses",
    description="Mixtures of SubExperts: one sub-expert per task, forced in training; at "
    "evaluation the running-mean query picks sub-experts by cosine to learned keys (L2P).",
    paper=MOSES,
    equation="logits_t,e = s cos(mean(x_0..x_t), k_e); train task i: F e_i (F = 1e4) + pull loss",
    url=MOSES_URL,
)
class MoSEsGate(ContinualRouter):
    def __init__(self, info: TaskInfo, scale: float = 10.0, pull_weight: float = 0.1) -> None:
        super().__init__(info)
        self.scale = float(scale)
        self.pull_weight = float(pull_weight)
        self.keys = nn.Parameter(torch.randn(info.n_experts, info.d_model))
        self.register_buffer("assigned", torch.zeros(info.n_experts, dtype=torch.bool))
        self.task: int | None = None  # the task being trained, between begin_task and end_task

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        ok, reason = needs_sequence(info)
        if ok and int(info.n_tasks) > info.n_experts:
            return False, (
                f"MoSEs gives each task its own sub-expert: n_tasks ({info.n_tasks}) must be at "
                f"most n_experts ({info.n_experts})"
            )
        return ok, reason

    def begin_task(self, index: int) -> None:
        self.task = index
        self.assigned[index] = True

    def end_task(self, index: int) -> None:
        self.task = None

    def _start(self, x: Tensor, state: State) -> tuple[Tensor, Tensor]:
        if state is None:
            return x.new_zeros(x.shape[0], x.shape[-1]), x.new_zeros(())
        return state

    def _route(self, q: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits (..., E) and the pull loss for queries q (..., D)."""
        cos = F.normalize(q, dim=-1, eps=1e-8) @ F.normalize(self.keys, dim=-1, eps=1e-8).T
        if self.training and self.task is not None:
            logits = torch.zeros_like(cos)
            logits[..., self.task] = FORCED
            pull = self.pull_weight * (1.0 - cos[..., self.task]).mean()
            return logits, pull
        logits = self.scale * cos
        if bool(self.assigned.any()):  # only the sub-experts of tasks seen so far compete
            logits = torch.where(self.assigned, logits, torch.full_like(logits, NEVER))
        return logits, None

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        total, count = self._start(x, state)
        T = x.shape[1]
        sums = torch.cumsum(x, dim=1) + total[:, None, :]  # (B, T, D)
        counts = count + torch.arange(1, T + 1, device=x.device, dtype=x.dtype)  # (T,)
        logits, pull = self._route(sums / counts[None, :, None])
        return GateOutput(logits, (sums[:, -1], counts[-1]), pull)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        total, count = self._start(x_t, state)
        total, count = total + x_t, count + 1
        logits, _ = self._route(total / count)
        return GateOutput(logits, (total, count))

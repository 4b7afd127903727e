"""Task-keyed routing: the sub-expert of the task the family names (task-aware variants only).

    logits_t = F · e_(task mod E)        (F = 1e4: the task's own sub-expert, alone)

What MoSEs' key matching tries to recover when the task is hidden, given for free: one sub-expert
per task, so an earlier task's sub-expert never gets a gradient again. On the conflicting maps it
shows what knowing the task buys; where the task is hidden it does not run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from baselines._papers import MOSES, MOSES_URL
from baselines.continual._common import FORCED, ContinualRouter
from suite.contract import GateOutput, Side, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "task-keyed",
    description="The given task's own sub-expert (task-aware sequences): per-task isolation "
    "without having to infer the task.",
    paper=MOSES,
    equation="logits_t = 1e4 e_(task mod E)",
    url=MOSES_URL,
)
class TaskKeyedGate(ContinualRouter):
    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        ok, reason = super().supports(info, **hparams)
        if ok and "task_id" not in info.inputs:
            return False, "task-keyed routing needs the task index (a -task-aware variant)"
        return ok, reason

    def forward(self, x: Tensor, state: State = None, side: Side | None = None) -> GateOutput:
        if side is None or side.task_id is None:
            raise ValueError("task-keyed routing needs side.task_id (a task-aware sequence)")
        expert = side.task_id.to(x.device) % self.info.n_experts  # (B,)
        logits = FORCED * torch.nn.functional.one_hot(expert, self.info.n_experts).to(x.dtype)
        return GateOutput(logits[:, None, :].expand(-1, x.shape[1], -1).contiguous())

    def step(self, x_t: Tensor, state: State = None, side: Side | None = None) -> GateOutput:
        out = self.forward(x_t.unsqueeze(1), state, side)
        return GateOutput(out.logits.squeeze(1), None)

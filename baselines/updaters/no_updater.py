"""The frozen base alone: an updater that never writes (all factors zero).

What the base retrieves without a fast-weight memory: chance wherever the facts are out of its
attention window, and its in-context accuracy where they are in it.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from baselines.updaters._factors import PREPRINT, PREPRINT_URL, FactorLayout, needs_adapted
from suite.contract import State, TaskInfo, UpdaterGate, UpdaterOutput
from suite.gates.entries import register_gate


@register_gate(
    "no-updater",
    description="The frozen base alone: the updater writes nothing.",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="Delta W_t = 0",
)
class NoUpdater(UpdaterGate):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.layout = FactorLayout(info)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_adapted(info)

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        zeros = x.new_zeros(*x.shape[:-1], self.layout.total)
        return UpdaterOutput(self.layout.split(zeros))

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        zeros = x_t.new_zeros(x_t.shape[0], self.layout.total)
        return UpdaterOutput(self.layout.split(zeros))

"""A generic learned memory as an updater: a GRU over the hidden states writes the factors.

    c_t = GRU(h_t, c_{t-1}),    (A_t, B_t) = W c_t + b      (B parts start at zero)

No idea from any paper: the control that shows what a learned recurrent memory alone achieves.
Its width is the largest whose parameter count fits in ``lerp``'s on the same task, so it never
wins by being bigger; its state is the GRU's hidden vector, not the factors themselves.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from baselines._budget import widest
from baselines.updaters._factors import FactorLayout, WriteGenerator, needs_adapted
from suite.contract import State, TaskInfo, UpdaterGate, UpdaterOutput
from suite.gates.entries import register_gate


def gru_updater_parameters(d_model: int, hidden: int, total: int) -> int:
    return 3 * (d_model * hidden + hidden * hidden + 2 * hidden) + (hidden + 1) * total


def lerp_parameters(d_model: int, total: int) -> int:
    return (d_model + 1) * total + d_model + 1


@register_gate(
    "gru-updater",
    description="Generic memory: a GRU over the hidden states whose state generates the LoRA "
    "factors (width matched to lerp's parameter count).",
    equation="c_t = GRU(h_t, c_{t-1}), (A_t, B_t) = W c_t + b",
)
class GRUUpdater(UpdaterGate):
    def __init__(self, info: TaskInfo, hidden: int | None = None) -> None:
        super().__init__(info)
        self.layout = FactorLayout(info)
        D, P = info.d_model, self.layout.total
        if hidden is None:
            hidden = widest(lambda h: gru_updater_parameters(D, h, P), lerp_parameters(D, P))
        self.hidden = hidden
        self.rnn = nn.GRU(D, hidden, batch_first=True)
        self.write = WriteGenerator(hidden, self.layout)

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        return needs_adapted(info)

    def initial_state(self, batch_size: int) -> State:
        return self.write.proj.weight.new_zeros(batch_size, self.hidden)

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        c0 = self.initial_state(x.shape[0]) if state is None else state
        cs, final = self.rnn(x, c0.unsqueeze(0).contiguous())  # (B, T, H)
        return UpdaterOutput(self.layout.split(self.write(cs)), final.squeeze(0))

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        out = self.forward(x_t.unsqueeze(1), state)
        return UpdaterOutput(tuple(f.squeeze(1) for f in out.factors), out.state)

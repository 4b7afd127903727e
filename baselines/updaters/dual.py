"""Two updaters at two time scales sharing the rank budget: our reading of the preprint's
"dual-updater variant", which the preprint names (52.2% persistent recall under full attention,
against 1.9% for a single updater) without saying what the two updaters are.

Our design, stated so it can be argued with: two ``lerp`` memories (the preprint's own rule),
each of rank r/2, with their own write generator and write gate. They differ only in where their
write gates start: a *fast* one at beta = 0.5 (it follows the current context) and a *slow* one at
beta = 0.01 (a fact keeps 0.99^64 = 53% of its weight across a 64-token gap, against 0.9^64 = 0.1%
at the single updater's 0.1). Their LoRA factors are concatenated along the rank,

    A = [A_fast | A_slow],  B = [B_fast ; B_slow],  so  u A B = u A_fast B_fast + u A_slow B_slow,

so the base sees one rank-r update, the sum of the two deltas: the same parameter budget and
the same adapted matrices as every other updater. Both run in the parallel log-space form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from baselines.updaters._factors import PREPRINT, PREPRINT_URL, needs_adapted
from baselines.updaters.lerp import LerpUpdater
from suite.contract import State, TaskInfo, UpdaterGate, UpdaterOutput
from suite.gates.entries import register_gate

FAST_BETA = 0.5
SLOW_BETA = 0.01


def with_rank(info: TaskInfo, rank: int) -> TaskInfo:
    return TaskInfo(
        d_model=info.d_model, n_experts=info.n_experts, seq_len=info.seq_len, kind=info.kind,
        inputs=info.inputs, extras={**info.extras, "rank": rank},
    )  # fmt: skip


def concat_rank(fast: tuple[Tensor, ...], slow: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Factors (A_0, B_0, A_1, B_1, ...) of two updaters -> one set of the summed rank: A along
    its last axis (rank), B along its second to last."""
    return tuple(
        torch.cat([f, s], dim=-1 if i % 2 == 0 else -2)
        for i, (f, s) in enumerate(zip(fast, slow, strict=True))
    )


@register_gate(
    "dual-updater",
    description="Two lerp updaters, fast (beta 0.5) and slow (beta 0.01), each of half the rank, "
    "their deltas summed (our reading of the preprint's unspecified dual variant).",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="u A B = u A_fast B_fast + u A_slow B_slow, each S_t = (1 - beta_t) S_{t-1} + "
    "beta_t v_t",
)
class DualUpdater(UpdaterGate):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        rank = int(info.rank)
        self.fast = LerpUpdater(with_rank(info, rank // 2), parallel=True, beta_init=FAST_BETA)
        self.slow = LerpUpdater(
            with_rank(info, rank - rank // 2), parallel=True, beta_init=SLOW_BETA
        )

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        ok, why = needs_adapted(info)
        if ok and int(info.rank) < 2:
            return False, "the dual updater splits the rank in two: it needs info.rank >= 2"
        return ok, why

    def initial_state(self, batch_size: int) -> State:
        return (self.fast.initial_state(batch_size), self.slow.initial_state(batch_size))

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        s_fast, s_slow = self.initial_state(x.shape[0]) if state is None else state
        fast, slow = self.fast(x, s_fast), self.slow(x, s_slow)
        return UpdaterOutput(concat_rank(fast.factors, slow.factors), (fast.state, slow.state))

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        s_fast, s_slow = self.initial_state(x_t.shape[0]) if state is None else state
        fast, slow = self.fast.step(x_t, s_fast), self.slow.step(x_t, s_slow)
        return UpdaterOutput(concat_rank(fast.factors, slow.factors), (fast.state, slow.state))

    def diagnostics(self) -> dict[str, Tensor]:
        """Each write gate's bias as a probability: where each time scale ended up."""
        return {
            "beta_fast": torch.sigmoid(self.fast.beta.bias.detach()[0]),
            "beta_slow": torch.sigmoid(self.slow.beta.bias.detach()[0]),
        }

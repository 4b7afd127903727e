"""The router-selected updater: the design the Parameter Updater Experts preprint names as its
target and leaves undone.

The MoE router gets one extra slot, the updater expert. Its gate probability is the write strength,
so the router decides *when* the model rewrites its own experts:

    p_t = softmax(router(h_t))  over E + 1 slots,    beta_t = p_t[E]
    M_t = M_{t-1} + beta_t k_t (v_t - M_{t-1}^T k_t)^T     (the delta rule of ``delta_rule.py``)

``router`` is any registered router gate (``affinity`` by default; ``beta`` gives it a temporal
memory), built for E + 1 experts; a stateful router's state travels inside the updater's state.
``diagnostics()["write_strength"]`` is the mean write strength at each position of the last
training batch, which the facts family splits into support, gap and query tokens.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from baselines.updaters._factors import PREPRINT, PREPRINT_URL, needs_adapted
from baselines.updaters.delta_rule import DeltaRuleUpdater, delta_step, memories
from suite.contract import State, TaskInfo, UpdaterOutput
from suite.gates.entries import get_gate, register_gate


def router_info(info: TaskInfo) -> TaskInfo:
    """What the inner router is built for: the updater's width, one more expert than the base."""
    return TaskInfo(
        d_model=info.d_model, n_experts=info.n_experts + 1, seq_len=info.seq_len, kind="router",
        extras={"readout": "all", "target": "current-domain"},
    )  # fmt: skip


@register_gate(
    "routed-updater",
    description="An updater expert in the router's slots: its gate probability is the write "
    "strength of a delta-rule memory (the preprint's named, unbuilt target).",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="beta_t = softmax(router(h_t))[E], M_t = M_{t-1} + beta_t k_t (v_t - M^T k_t)^T",
    router="affinity",
)
@register_gate(
    "routed-updater-beta",
    description="The routed updater with a temporal-memory router (beta, Wong 2026).",
    paper=PREPRINT,
    url=PREPRINT_URL,
    equation="beta_t = softmax(beta-router(h_{<=t}))[E], delta-rule memory",
    router="beta",
)
class RoutedUpdater(DeltaRuleUpdater):
    def __init__(self, info: TaskInfo, router: str = "affinity", chunk: int = 16) -> None:
        super().__init__(info, chunk=chunk)
        del self.beta  # the router's extra slot decides the write strength instead
        self.router_id = router
        self.router = get_gate(router).build(router_info(info))
        self.last_write: Tensor | None = None

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        ok, why = needs_adapted(info)
        if not ok:
            return ok, why
        return get_gate(hparams.get("router", "affinity")).supports(router_info(info))

    def initial_state(self, batch_size: int) -> State:
        return (super().initial_state(batch_size), self.router.initial_state(batch_size))

    def _write_strength(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits, dim=-1)[..., -1]

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        M, router_state = self.initial_state(x.shape[0]) if state is None else state
        routed = self.router(x, router_state) if router_state is not None else self.router(x)
        beta = self._write_strength(routed.logits)  # (B, T)
        if self.training:
            self.last_write = beta.detach().mean(0)
        states = memories(*self._keys_values(x), beta, M, None, self.chunk)
        return UpdaterOutput(self._factors(states), (states[:, -1], routed.state), routed.aux_loss)

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        M, router_state = self.initial_state(x_t.shape[0]) if state is None else state
        routed = self.router.step(x_t, router_state)
        M = delta_step(M, *self._keys_values(x_t), self._write_strength(routed.logits))
        return UpdaterOutput(self._factors(M), (M, routed.state))

    def diagnostics(self) -> dict[str, Tensor]:
        return {} if self.last_write is None else {"write_strength": self.last_write}

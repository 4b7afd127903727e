"""Hash routing (Roller et al. 2021): each token id goes to a fixed expert, no parameters.

    expert(t) = (id_t · 2654435761 mod 2^32) mod E       (Knuth's multiplicative hash)

It needs the token ids, which the character-LM family passes as ``side.token_ids``; it ignores x.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from baselines._papers import ROLLER_2021, ROLLER_2021_URL
from baselines.zoo._common import log_weights, needs_lm
from suite.contract import GateOutput, RouterGate, Side, State, TaskInfo
from suite.gates.entries import register_gate

MULTIPLIER, MODULUS = 2654435761, 2**32


@register_gate(
    "hash",
    description="Hash routing: a fixed hash of the token id picks the expert; no parameters.",
    paper=ROLLER_2021,
    equation="expert = (id * 2654435761 mod 2^32) mod E",
    url=ROLLER_2021_URL,
)
class HashRouter(RouterGate):
    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        ok, reason = needs_lm(info)
        if ok and "token_ids" not in info.inputs:
            return False, "hash routing needs the token ids (info.inputs has no token_ids)"
        return ok, reason

    def forward(self, x: Tensor, state: State = None, side: Side | None = None) -> GateOutput:
        if side is None or side.token_ids is None:
            raise ValueError("hash routing needs side.token_ids")
        E = self.info.n_experts
        expert = (side.token_ids.long().to(x.device) * MULTIPLIER) % MODULUS % E
        weights = torch.nn.functional.one_hot(expert, E).to(x.dtype)
        return GateOutput(log_weights(weights))

    def step(self, x_t: Tensor, state: State = None, side: Side | None = None) -> GateOutput:
        ids = None if side is None or side.token_ids is None else side.token_ids[:, None]
        out = self.forward(x_t[:, None], state, Side(token_ids=ids))
        return GateOutput(out.logits[:, 0], None)

"""How an updater reads a sequence on the frozen base: the trunk (shared where several gates
read the same tokens), then the gate, then the adapted last MoE and head on the scored positions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from suite.contract import State, TaskInfo, UpdaterOutput
from suite.gates.kinds import check_forward, kinds
from suite.tasks.families.facts.base import FrozenBase
from suite.tasks.families.facts.data import scored_positions
from suite.tasks.families.facts.pretrain import base_dims, vocab_of
from suite.tasks.families.facts.spec import FactsSpec


def task_info(spec: FactsSpec) -> TaskInfo:
    d_model, adapted, n_experts = base_dims(spec)
    return TaskInfo(
        d_model=d_model,
        n_experts=n_experts,
        seq_len=spec.seq_len,
        kind="updater",
        extras={"rank": spec.model.rank, "adapted": adapted, "vocab_size": vocab_of(spec).size},
    )


Trunk = Callable[[Tensor], tuple[Tensor, Tensor]]
"""Token ids -> the frozen trunk's outputs (x, u) (the base's ``trunk`` without gradients)."""


class SharedTrunk:
    """The frozen trunk's outputs for each distinct token batch, computed once and shared by
    every gate that reads it (the gates of one job read the same evaluation episodes)."""

    def __init__(self, base: FrozenBase) -> None:
        self.base = base
        self.memo: dict[tuple[tuple[int, ...], bytes], tuple[Tensor, Tensor]] = {}

    def __call__(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        key = (tuple(tokens.shape), tokens.cpu().numpy().tobytes())
        if key not in self.memo:
            with torch.no_grad():
                self.memo[key] = self.base.trunk(tokens)
        return self.memo[key]


def read(
    base: FrozenBase,
    gate: Any,
    tokens: Tensor,
    info: TaskInfo,
    state: State = None,
    labels: Tensor | None = None,
    trunk: Trunk | None = None,
) -> tuple[Tensor | None, UpdaterOutput]:
    """The gate's output over ``tokens`` and, where ``labels`` are given, the adapted base's
    logits at the scored positions only (B, K, V), in order: the rest of the sequence only feeds
    the updater, so the experts and the head run on K positions instead of T. ``trunk`` gives
    the frozen trunk's outputs where they are shared (the gate reads a copy of them)."""
    if trunk is None:
        with torch.no_grad():
            x, u = base.trunk(tokens)
    else:
        x, u = trunk(tokens)
        u = u.clone()  # one gate's in-place edit must not reach the next gate's input
    out = kinds.get("updater").forward(gate, u, state)
    check_forward(gate, out, info, tokens.shape[0], tokens.shape[1])
    if labels is None:
        return None, out
    at = scored_positions(labels)  # (B, K)

    def pick(t: Tensor) -> Tensor:
        index = at.view(*at.shape, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:])
        return t.gather(1, index)

    return base.finish(pick(x), pick(u), tuple(pick(f) for f in out.factors)), out

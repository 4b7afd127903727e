"""How a sequence is trained: one task after another (``sequential``), with an elastic-weight
consolidation penalty (``ewc``), or on all tasks at once (``joint``, a labelled ceiling).

A gate picks its regime with a class attribute ``regime`` (absent: sequential); only GateBench's
own baselines set it, and ``joint`` gates are ceilings, never ranked. EWC's penalty covers every
parameter trained here: the sub-experts and, for gates in this process, the router's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn


class Regime:
    name: ClassVar[str] = "sequential"
    continual: ClassVar[bool] = True
    """False for ceilings that see every task at once: their BWT, FWT and routing matrices are
    undefined and are not reported."""

    def __init__(self, gate: Any) -> None:
        self.gate = gate

    def penalty(self) -> Tensor | None:
        """Added to the loss at every training step."""
        return None

    def consolidate(self, params: list[nn.Parameter], grads_of_batches: Any) -> None:
        """Called after a task is learned, with a callable giving per-example gradients: one
        stacked tensor (n, *shape) per parameter, or an iterable of per-example gradient lists
        (None where a parameter is unused)."""


class Sequential(Regime):
    name = "sequential"


class EWC(Regime):
    """Online EWC (Kirkpatrick et al. 2017; Schwarz et al. 2018): after each task, the diagonal
    empirical Fisher of its mini-batch gradients is added to the running Fisher F and the
    parameters become the anchor θ*; the penalty is λ/2 Σ F (θ - θ*)²."""

    name = "ewc"

    def __init__(self, gate: Any) -> None:
        super().__init__(gate)
        self.strength = float(getattr(gate, "ewc_lambda", 100.0))
        self.params: list[nn.Parameter] = []
        self.fisher: list[Tensor] = []
        self.anchor: list[Tensor] = []

    def penalty(self) -> Tensor | None:
        if not self.params:
            return None
        total = sum(
            (f * (p - a).pow(2)).sum()
            for p, f, a in zip(self.params, self.fisher, self.anchor, strict=True)
        )
        return 0.5 * self.strength * total

    def consolidate(self, params: list[nn.Parameter], grads_of_batches: Any) -> None:
        grads = grads_of_batches()
        if isinstance(grads, list | tuple) and all(isinstance(g, Tensor) for g in grads):
            fisher = [g.detach().pow(2).mean(0) for g in grads]  # stacked (n, *shape)
        else:
            fisher = [torch.zeros_like(p) for p in params]
            n = 0
            for one in grads:
                for f, g in zip(fisher, one, strict=True):
                    if g is not None:
                        f += g.detach().pow(2)
                n += 1
            fisher = [f / max(n, 1) for f in fisher]
        if self.fisher:
            fisher = [old + new for old, new in zip(self.fisher, fisher, strict=True)]
        self.params, self.fisher = params, fisher
        self.anchor = [p.detach().clone() for p in params]


class Joint(Sequential):
    name = "joint"
    continual = False


REGIMES: dict[str, type[Regime]] = {r.name: r for r in (Sequential, EWC, Joint)}


def regime_of(gate: Any) -> Regime:
    """The regime a gate declares; a gate the harness wraps (audits) is asked through ``inner``;
    a gate in its own process (a submission) cannot declare one."""
    gate = getattr(gate, "inner", gate)
    name = getattr(type(gate), "regime", "sequential")
    if name not in REGIMES:
        raise ValueError(
            f"gate declares regime '{name}'; the continual family knows {sorted(REGIMES)}"
        )
    return REGIMES[name](gate)

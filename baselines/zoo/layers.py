"""Layer entries: ``dsc`` and ``dense`` on the leaderboard beside the routers.

Neither is a router. Each selects a layer that the lm family builds in place of its experts
(``layer`` in ``suite.contract``), at the active parameters of the MoE it replaces, and is
trained under the same data, seeds and budget as every router:

* ``dsc``: Dynamic Subspace Composition (seed 004), a shared bank of rank-1 atoms composed per
  token, with its four losses (``suite/tasks/families/lm/dsc.py``);
* ``dense``: one MLP as wide as the experts a token uses (all of them under soft dispatch, k under
  top-k), the iso-active-parameter control every MoE paper compares against.

The entry's own logits are zeros and mix nothing; it has no parameters to train.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate

DSC_PAPER = "Dynamic Subspace Composition (2026 preprint, seed 004)"
DSC_URL = "https://github.com/VladimerKhasia/DSC"


class LayerEntry(RouterGate):
    """Selects the family's layer ``layer``; routes nothing."""

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        if cls.layer not in (info.get("layers") or ()):
            return False, (
                f"'{cls.layer}' is a layer entry: it runs where the family can build that layer "
                "in place of its experts (the lm family with its default MoE layer)"
            )
        return True, ""

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(x.new_zeros(*x.shape[:-1], self.info.n_experts))


@register_gate(
    "dsc",
    description="Dynamic Subspace Composition in place of the experts (a layer entry, not a "
    "router), at the MoE's active parameters.",
    paper=DSC_PAPER,
    url=DSC_URL,
    equation="y = MLP(x) + gamma * sum_k z_k (x . u_k) v_k over the top K atoms",
)
class DSCEntry(LayerEntry):
    layer = "dsc"


@register_gate(
    "dense",
    description="One dense MLP as wide as the experts a token uses (a layer entry, not a "
    "router): the iso-active-parameter control.",
    paper="the iso-active-parameter dense control (Switch Transformer, Fedus et al. 2022)",
    url="https://arxiv.org/abs/2101.03961",
    equation="y = W2 gelu(W1 x), hidden = active experts x ff_mult x d",
)
class DenseEntry(LayerEntry):
    layer = "dense"

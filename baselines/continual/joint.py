"""Joint multi-task training, the MTL upper bound of continual-learning tables (O-LoRA, 2023).

    logits_t = [x_t, 1] Wᵀ,   trained once on the mix of all tasks

Not continual: the family trains it on every task at once (``regime = "joint"``), so it shows
what the router and adapters can reach without forgetting. A labelled ceiling, never ranked.
"""

from __future__ import annotations

from typing import ClassVar

from baselines._papers import WANG_OLORA_2023, WANG_OLORA_2023_URL
from baselines.continual._common import LinearRouter
from suite.gates.entries import register_gate


@register_gate(
    "joint",
    description="Ceiling: a linear router trained on all tasks at once (multi-task, not "
    "continual).",
    paper=WANG_OLORA_2023,
    equation="logits_t = W [x_t, 1], trained on the union of the tasks",
    url=WANG_OLORA_2023_URL,
)
class JointGate(LinearRouter):
    regime: ClassVar[str] = "joint"
    ceiling: ClassVar[bool] = True

"""A standard MoE over LoRA experts, as in LoRAMoE (Dou et al. 2024).

    logits_t = [x_t, 1] Wᵀ        (the family mixes the top-k adapters by softmax)

The router and every adapter are trained on each task in turn with nothing protecting earlier
tasks: the reference for what routing alone buys in continual learning, and what the protected
routers here are compared against.
"""

from __future__ import annotations

from baselines._papers import DOU_2024, DOU_2024_URL
from baselines.continual._common import LinearRouter
from suite.gates.entries import register_gate


@register_gate(
    "moe-lora",
    description="Standard MoE over LoRA experts: a linear softmax router, all trained throughout.",
    paper=DOU_2024,
    equation="logits_t = W [x_t, 1]",
    url=DOU_2024_URL,
)
class MoELoRAGate(LinearRouter):
    pass

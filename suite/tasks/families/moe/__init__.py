"""The ``moe`` family: a gate routing one layer of a real MoE architecture (a small Mixtral or
OLMoE of Hugging Face ``transformers``), on real text that switches domain mid-sequence.

The papers' gates were all shown inside models of their authors' own making; here the same gate
runs inside a ``transformers`` model through GateBench's bridge (``suite.integrations.hf``): the
model's attention, norms and experts, pre-trained once per seed with the model's own routers and
frozen, the gate trained in place of one layer's router. Every router of the registry that
routes by hidden states (and token ids) runs; the question is the lm family's, asked of a real
architecture: does the gate lower the bits at the switch, and at what cost in balance?
"""

from __future__ import annotations

from typing import Any

from suite.contract import TaskInfo
from suite.seeding import RunSeeds
from suite.tasks.families.moe import protocol
from suite.tasks.families.moe.spec import MoeSpec
from suite.tasks.family import Artifact, RunContext, RunOutput, TaskFamily, register_family


@register_family
class MoeFamily(TaskFamily[MoeSpec]):
    name = "moe"
    spec_model = MoeSpec
    gate_kind = "router"
    description = (
        "A gate in place of one router of a real MoE architecture (transformers' Mixtral or "
        "OLMoE), on real text that switches from prose to code or from one language to another."
    )

    def step_cost(self, spec: MoeSpec, tokens: int) -> float:
        """A forward and backward of the small base: about 25 ms at 16 × 96 tokens, d 64, on
        one core of this project's machines (planner's estimate only)."""
        return 5.0 + 1.3e-2 * tokens * (spec.model.hidden / 64) ** 2

    def task_info(self, spec: MoeSpec) -> TaskInfo:
        return protocol.task_info(spec)

    def run(self, spec: MoeSpec, gate: Any, ctx: RunContext) -> RunOutput:
        return protocol.run(spec, gate, ctx)

    def eval_dataset(self, spec: MoeSpec, seeds: RunSeeds) -> Any:
        return protocol.eval_dataset(spec, seeds.data)

    def prepare(self, spec: MoeSpec, seeds: RunSeeds) -> Artifact:
        return protocol.prepare(spec, seeds)

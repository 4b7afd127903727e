"""The character-LM family: next-character prediction across domain switches (Wong 2026, §5).

Routing meets a generative objective: a gate routes each character's embedding over the experts
of one MoE layer, and the question is whether it moves to the next domain's expert at (or before)
the switch. Table 6 of the paper is ``lm/char-switch``'s paper profile; the experts run softly
mixed (the paper's) or by sparse top-k dispatch with batched expert matmuls.
"""

from __future__ import annotations

from typing import Any

from suite.contract import TaskInfo
from suite.seeding import RunSeeds
from suite.tasks.families.lm import protocol
from suite.tasks.families.lm.spec import LMSpec
from suite.tasks.family import RunContext, RunOutput, TaskFamily, register_family


@register_family
class LMFamily(TaskFamily[LMSpec]):
    name = "lm"
    spec_model = LMSpec
    gate_kind = "router"
    description = (
        "A character language model whose domain switches mid-sequence: does the gate route to "
        "the next domain's expert at the switch?"
    )

    def step_cost(self, spec: LMSpec, tokens: int) -> float:
        """Per expert a token runs (soft mixing: every expert; top-k dispatch: k), a fixed part
        and one that grows with tokens × d_model² (fitted on 2 cores: 3.1 ms an expert at the
        default's d 16 and 2048 tokens, about 100 ms at Table 6's d 64 and 16,128)."""
        m = spec.model
        return m.active_experts * (2.3 + 1.5e-6 * tokens * m.d_model**2)

    def task_info(self, spec: LMSpec) -> TaskInfo:
        return protocol.task_info(spec)

    def run(self, spec: LMSpec, gate: Any, ctx: RunContext) -> RunOutput:
        return protocol.run(spec, gate, ctx)

    def run_seeds(
        self, spec: LMSpec, gates: list[Any], ctxs: list[RunContext], vectorise: bool = True
    ) -> list[RunOutput | BaseException]:
        return protocol.run_seeds(spec, gates, ctxs, vectorise)

    def eval_dataset(self, spec: LMSpec, seeds: RunSeeds) -> Any:
        return protocol.eval_dataset(spec, seeds.data)

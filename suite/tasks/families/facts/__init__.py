"""The fact-retrieval family: do facts survive after they leave the attention window?

Tests the "parameter updater expert" idea (the preprint of the seed ``000_c6ecacb1df0f8636``):
an updater writes LoRA factors into the experts of a frozen MoE transformer while it reads, so
that facts outside the sliding attention window can still be recalled. The base is pre-trained
once per (spec, seed) on facts inside the window (the prepared artefact) and frozen; each updater
is trained on top of it and evaluated in context, persistently (state saved, everything reset)
and for capacity.
"""

from __future__ import annotations

from typing import Any

from suite.contract import TaskInfo
from suite.errors import RunError
from suite.integrations.hf_models import WeightsMissing, find_pretrained
from suite.seeding import RunSeeds
from suite.tasks.families.facts import evaluation, protocol, reading
from suite.tasks.families.facts.pretrain import pretrain
from suite.tasks.families.facts.spec import FactsSpec
from suite.tasks.family import Artifact, RunContext, RunOutput, TaskFamily, register_family


@register_family
class FactsFamily(TaskFamily[FactsSpec]):
    name = "facts"
    spec_model = FactsSpec
    gate_kind = "updater"
    shares_data_across_gates = True  # every updater of a seed reads the same frozen trunk
    job_overhead = 1.5  # loading the base, its reading of the data and the modes' episodes

    def step_cost(self, spec: FactsSpec, tokens: int) -> float:
        """The frozen base's reading and the updater's write, per token (fitted on 2 cores: 10-14
        ms a step at the default's 700-900 tokens with its evaluation, 5 ms at the paper's 1280
        with a longer training)."""
        return 2.0 + 0.01 * tokens

    description = (
        "Facts read once, queried after they left the attention window: can an updater that "
        "writes fast weights into the experts keep them?"
    )

    def check_ready(self, spec: FactsSpec) -> None:
        if spec.base is not None:
            try:
                find_pretrained(spec.base.pretrained)
            except WeightsMissing as exc:
                raise RunError(f"{spec.id}: {exc}") from None

    def task_info(self, spec: FactsSpec) -> TaskInfo:
        return reading.task_info(spec)

    def prepare(self, spec: FactsSpec, seeds: RunSeeds) -> Artifact:
        return pretrain(spec, seeds)

    def run(self, spec: FactsSpec, gate: Any, ctx: RunContext) -> RunOutput:
        return protocol.run(spec, gate, ctx)

    def run_gates(
        self, spec: FactsSpec, gates: list[Any], ctxs: list[RunContext]
    ) -> list[RunOutput | BaseException]:
        return protocol.run_gates(spec, gates, ctxs)

    def eval_dataset(self, spec: FactsSpec, seeds: RunSeeds) -> Any:
        return evaluation.eval_dataset(spec, seeds.data)

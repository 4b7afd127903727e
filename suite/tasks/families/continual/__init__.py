"""The continual-learning family: task sequences learned one after another through routed
low-rank sub-experts on a frozen base.

Tests the Mixtures-of-SubExperts idea (seed ``002_9c4afe12684e2bf5``: a sub-expert per task
chosen by query-key matching, "near-zero or positive backward transfer") and the router-stability
claims of GRIP and SAME (seed ``001_02967f5627d3accd``) on the same seeded sequences: the router
is any gate under the router contract, the sub-experts and the base are the family's. Every run
reports the accuracy matrix R with ACC, BWT, FWT and both forgetting definitions, and the
routing-stability and load-drift matrices.
"""

from __future__ import annotations

from typing import Any

from suite.contract import TaskInfo
from suite.seeding import RunSeeds
from suite.tasks.families.continual import protocol
from suite.tasks.families.continual.pretrain import pretrain
from suite.tasks.families.continual.spec import ContinualSpec
from suite.tasks.family import Artifact, RunContext, RunOutput, TaskFamily, register_family


@register_family
class ContinualFamily(TaskFamily[ContinualSpec]):
    name = "continual"
    spec_model = ContinualSpec
    gate_kind = "router"
    description = (
        "Tasks learned one after another through routed low-rank sub-experts on a frozen base: "
        "does the router protect old tasks, and does routing stay stable?"
    )

    def task_info(self, spec: ContinualSpec) -> TaskInfo:
        return protocol.task_info(spec)

    def prepare(self, spec: ContinualSpec, seeds: RunSeeds) -> Artifact:
        return pretrain(spec, seeds)

    def run(self, spec: ContinualSpec, gate: Any, ctx: RunContext) -> RunOutput:
        return protocol.run(spec, gate, ctx)

    def eval_dataset(self, spec: ContinualSpec, seeds: RunSeeds) -> Any:
        return protocol.eval_dataset(spec, seeds.data)

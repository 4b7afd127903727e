"""The transition-stream family: routing at domain transitions and precision-weighted mixtures.

Tasks of Wong (2026), "Affinity Is Not Enough" (arXiv 2605.00604): early signal (Task A), domain
switch (Task B), anticipation of the next domain (the 2^3 ablation), and precision regression with
static or shifting expert reliability. Each kind of data (``data.kind`` in a spec) has its own
module with the same three functions; the family dispatches on the kind.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

from suite.contract import RouterGate, TaskInfo
from suite.seeding import RunSeeds
from suite.tasks.families.transition import mixture, routing
from suite.tasks.families.transition.spec import TransitionSpec
from suite.tasks.family import RunContext, RunOutput, TaskFamily, register_family
from suite.tasks.seed_stack import vectorising

BY_DATA_KIND: dict[str, ModuleType] = {"routing-stream": routing, "expert-mixture": mixture}


@register_family
class TransitionFamily(TaskFamily[TransitionSpec]):
    name = "transition"
    spec_model = TransitionSpec
    gate_kind = "router"
    shares_data_across_gates = True  # every router of a seed reads the same drawn stream
    description = (
        "Synthetic streams whose domain changes: does the gate carry context, anticipate the "
        "switch, and trust the reliable expert?"
    )

    def task_info(self, spec: TransitionSpec) -> TaskInfo:
        return BY_DATA_KIND[spec.data.kind].task_info(spec)

    def ceiling_info(self, spec: TransitionSpec) -> TaskInfo:
        info = self.task_info(spec)
        generator = spec.data.model_dump(mode="json")
        return replace(info, extras={**info.extras, "generator": generator})

    def run(self, spec: TransitionSpec, gate: RouterGate, ctx: RunContext) -> RunOutput:
        return BY_DATA_KIND[spec.data.kind].run(spec, gate, ctx)

    def run_seeds(
        self,
        spec: TransitionSpec,
        gates: list[RouterGate],
        ctxs: list[RunContext],
        vectorise: bool = True,
    ) -> list[RunOutput | BaseException]:
        module = BY_DATA_KIND[spec.data.kind]
        if hasattr(module, "run_seeds"):
            return module.run_seeds(spec, gates, ctxs, vectorise)
        return super().run_seeds(spec, gates, ctxs, vectorise)

    def groups_gates(self, device: str) -> bool:
        """On a CPU a seed's routers share one job and one draw of the stream; where the seeds
        are vectorised (a GPU) a router's seeds share one pass instead."""
        return not vectorising(device)

    def run_gates(
        self, spec: TransitionSpec, gates: list[RouterGate], ctxs: list[RunContext]
    ) -> list[RunOutput | BaseException]:
        module = BY_DATA_KIND[spec.data.kind]
        if hasattr(module, "run_seeds"):  # one stream drawn once, the gates called in turn
            return module.run_seeds(spec, gates, ctxs, vectorise=False)
        return super().run_gates(spec, gates, ctxs)

    def eval_dataset(self, spec: TransitionSpec, seeds: RunSeeds) -> Any:
        return BY_DATA_KIND[spec.data.kind].eval_dataset(spec, seeds.data)

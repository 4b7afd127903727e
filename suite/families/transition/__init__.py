"""The transition-stream family: routing at domain transitions and precision-weighted mixtures.

Tasks of Wong (2026), "Affinity Is Not Enough" (arXiv 2605.00604): early signal (Task A), domain
switch (Task B), anticipation of the next domain (the 2^3 ablation), and precision regression with
static or shifting expert reliability.
"""

from __future__ import annotations

from typing import Any

from suite.contract import RouterGate, TaskInfo
from suite.families import RunContext, RunOutput, TaskFamily, register_family
from suite.families.transition import mixture, routing
from suite.families.transition.spec import RoutingStreamData, TransitionSpec
from suite.seeding import RunSeeds


@register_family
class TransitionFamily(TaskFamily):
    name = "transition"
    spec_model = TransitionSpec
    description = (
        "Synthetic streams whose domain changes: does the gate carry context, anticipate the "
        "switch, and trust the reliable expert?"
    )

    def task_info(self, spec: TransitionSpec) -> TaskInfo:  # type: ignore[override]
        data = spec.data
        if isinstance(data, RoutingStreamData):
            return TaskInfo(
                d_model=data.d_model,
                n_experts=spec.model.n_experts,
                seq_len=data.seq_len,
                readout=data.readout,
                target=data.target,
            )
        return TaskInfo(
            d_model=data.d_model,
            n_experts=spec.model.n_experts,
            seq_len=1,
            readout="all",
            target="regression",
        )

    def run(self, spec: TransitionSpec, gate: RouterGate, ctx: RunContext) -> RunOutput:  # type: ignore[override]
        if isinstance(spec.data, RoutingStreamData):
            return routing.run_routing(spec, gate, ctx)
        return mixture.run_mixture(spec, gate, ctx)

    def eval_dataset(self, spec: TransitionSpec, seeds: RunSeeds) -> Any:  # type: ignore[override]
        if isinstance(spec.data, RoutingStreamData):
            return routing.eval_dataset(spec, seeds.data)
        return mixture.eval_dataset(spec, seeds.data)

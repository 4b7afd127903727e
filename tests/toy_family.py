"""A toy task family written only inside tests/: its own spec model, its own gate kind, array
metrics (a curve and a matrix) and a prepared artefact. ``tests/test_toy_family.py`` proves that it
registers, plans, runs, aggregates and renders with no edit outside tests/.

The task: x_t ~ N(0, I) of width W; a prepared random projection p (the artefact) gives the
target y_t = mean_{s<=t} <x_s, p>. A *scorer* gate (the toy kind) outputs one score per position
and is trained with MSE against y.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from suite.contract import Gate, State, TaskInfo
from suite.gates.entries import GateEntry, add_gate, gates
from suite.gates.kinds import GateKind, kinds
from suite.seeding import RunSeeds, generator
from suite.tasks.family import (
    ArrayResult,
    RunContext,
    RunOutput,
    TaskFamily,
    families,
)
from suite.tasks.spec import MetricInfo, StrictModel, TaskSpec
from suite.tasks.training import make_optimizer

# -- the gate kind ---------------------------------------------------------------------------


class ScoreOutput(NamedTuple):
    scores: Tensor  # (B, T, 1) from forward, (B, 1) from step
    state: State = None


class ScorerGate(Gate):
    """The toy kind: one score per position."""

    kind: ClassVar[str] = "scorer"


class ScorerKind(GateKind):
    name = "scorer"
    base = ScorerGate
    output_type = ScoreOutput
    shape_name = "(B, T, 1)"

    def per_position(self, out: ScoreOutput) -> Tensor:
        return out.scores

    def expected_shape(self, info: TaskInfo, batch: int, length: int) -> tuple[int, ...]:
        return (batch, length, 1)


class LastToken(ScorerGate):
    """Scores each position from its own token: cannot average, the reference."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.w = nn.Linear(info.d_model, 1)

    def forward(self, x: Tensor, state: State = None) -> ScoreOutput:
        return ScoreOutput(self.w(x))

    def step(self, x_t: Tensor, state: State = None) -> ScoreOutput:
        return ScoreOutput(self.w(x_t))


class RunningMean(ScorerGate):
    """Scores the running mean of the tokens: can solve the task exactly."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.w = nn.Linear(info.d_model, 1)

    def forward(self, x: Tensor, state: State = None) -> ScoreOutput:
        total, count = state if state is not None else (x.new_zeros(x.shape[0], x.shape[2]), 0)
        sums = torch.cumsum(x, dim=1) + total[:, None]  # (B, T, D)
        counts = count + torch.arange(1, x.shape[1] + 1, dtype=x.dtype)  # (T,)
        return ScoreOutput(self.w(sums / counts[None, :, None]), (sums[:, -1], count + x.shape[1]))

    def step(self, x_t: Tensor, state: State = None) -> ScoreOutput:
        total, count = state if state is not None else (torch.zeros_like(x_t), 0)
        total, count = total + x_t, count + 1
        return ScoreOutput(self.w(total / count), (total, count))


# -- the family ------------------------------------------------------------------------------


class ToyData(StrictModel):
    length: int = Field(ge=2)
    width: int = Field(ge=1)
    broken_seed: int | None = None  # a seed whose artefact cannot be built (a test of failure)


class ToyTrain(StrictModel):
    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)


class ToySpec(TaskSpec):
    family: Literal["toy"]
    reference_gate: str | None = "toy-last"
    data: ToyData
    train: ToyTrain

    family_metrics: ClassVar[dict[str, MetricInfo]] = {
        "mse": MetricInfo(description="final MSE", higher_is_better=False, ideal=0.0),
        "error_by_position": MetricInfo(
            description="absolute error at each position",
            higher_is_better=False,
            kind="curve",
            axes=("position",),
        ),
        "error_map": MetricInfo(
            description="absolute error by position and quartile of |y|",
            higher_is_better=False,
            kind="matrix",
            axes=("position", "quartile"),
        ),
    }

    def family_identity_fields(self) -> tuple[str, ...]:
        return ("data", "train")


class ToyFamily(TaskFamily[ToySpec]):
    name = "toy"
    spec_model = ToySpec
    gate_kind = "scorer"
    description = "A toy family of the tests: score the running mean of projected tokens."

    def task_info(self, spec: ToySpec) -> TaskInfo:
        return TaskInfo(
            d_model=spec.data.width,
            n_experts=1,
            seq_len=spec.data.length,
            kind="scorer",
            extras={"projection": "prepared"},
        )

    def prepare(self, spec: ToySpec, seeds: RunSeeds) -> dict[str, Tensor]:
        if seeds.seed_index == spec.data.broken_seed:
            raise ZeroDivisionError("float division by zero")
        g = generator(seeds.derive("prepare"))
        return {"projection": torch.randn(spec.data.width, generator=g)}

    def _batch(self, spec: ToySpec, seed: int, step: int, p: Tensor) -> tuple[Tensor, Tensor]:
        g = generator(seed + step)
        x = torch.randn(spec.train.batch_size, spec.data.length, spec.data.width, generator=g)
        steps = torch.arange(1, spec.data.length + 1, dtype=x.dtype)
        y = torch.cumsum(x @ p, dim=1) / steps  # (B, T)
        return x, y

    def run(self, spec: ToySpec, gate: ScorerGate, ctx: RunContext) -> RunOutput:
        if ctx.artifact is None:
            raise RuntimeError("the toy family needs its prepared projection")
        p = ctx.artifact["projection"]
        opt = make_optimizer(spec.train.lr, [gate])
        for step in range(spec.train.steps):
            x, y = self._batch(spec, ctx.seeds.data, step, p)
            loss = (gate(x).scores[..., 0] - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            ctx.tick(step + 1, spec.train.steps)
        with torch.no_grad():
            x, y = self._batch(spec, ctx.seeds.data, spec.train.steps, p)
            error = (gate(x).scores[..., 0] - y).abs()  # (B, T)
            quartile = torch.bucketize(
                y.abs(), torch.quantile(y.abs(), torch.tensor([0.25, 0.5, 0.75]))
            )
            error_map = np.full((spec.data.length, 4), np.nan)
            for q in range(4):
                mask = quartile == q
                counts = mask.sum(0)
                sums = (error * mask).sum(0)
                error_map[:, q] = torch.where(
                    counts > 0, sums / counts.clamp(min=1), torch.nan
                ).numpy()
        positions = list(range(spec.data.length))
        return RunOutput(
            metrics={"mse": error.pow(2).mean().item()},
            arrays={
                "error_by_position": ArrayResult(error.mean(0), {"position": positions}),
                "error_map": ArrayResult(
                    error_map, {"position": positions, "quartile": [1, 2, 3, 4]}
                ),
            },
            data_fingerprint=f"toy-{ctx.seeds.data}",
        )

    def eval_dataset(self, spec: ToySpec, seeds: RunSeeds) -> Any:
        raise NotImplementedError


GATES = {
    "toy-last": (LastToken, "Scores each token alone."),
    "toy-running-mean": (RunningMean, "Scores the running mean of the tokens."),
}


def register() -> None:
    """Register the toy kind, family and gates (idempotent: workers import this module)."""
    if "scorer" not in kinds:
        kinds.add("scorer", ScorerKind(), origin=__name__)
    if "toy" not in families:
        families.add("toy", ToyFamily(), origin=__name__)
    for gate_id, (cls, description) in GATES.items():
        if gate_id not in gates:
            add_gate(GateEntry(gate_id, cls, {}, description, origin="test"))


def unregister() -> None:
    kinds.remove("scorer")
    families.remove("toy")
    for gate_id in GATES:
        gates.remove(gate_id)


register()

"""Spec models of the transition-stream family (Wong 2026, "Affinity Is Not Enough").

Two kinds of data share the family: ``routing-stream`` sequences whose domain may switch, where the
gate is trained to pick the expert of the current or next domain; and ``expert-mixture``
regression, where the gate weights fixed-noise experts and precision tracking can help.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from suite.tasks.spec import MetricInfo, StrictModel, TaskSpec

ROUTING_METRICS: dict[str, MetricInfo] = {
    "acc_all": MetricInfo(
        description="argmax(gate) == correct expert, over all scored positions", ideal=1.0
    ),
    "p_correct_all": MetricInfo(
        description="gate probability on the correct expert, all positions", ideal=1.0
    ),
    "acc_transition": MetricInfo(
        description="argmax accuracy at the transition step (domain switch)", ideal=1.0
    ),
    "p_correct_transition": MetricInfo(
        description="gate probability on the correct expert at the transition step", ideal=1.0
    ),
    "k99_transition": MetricInfo(
        description="experts a top-K draw needs to hold the correct one with 99% probability: "
        "ceil(log 0.01 / log(1 - p_correct_transition))",
        higher_is_better=False,
        unit="experts",
        ideal=1.0,
    ),
    "p_correct_by_position": MetricInfo(
        description="gate probability on the correct expert at each scored position",
        kind="curve",
        axes=("position t",),
        label="p(correct expert)",
        ideal=1.0,
    ),
    "acc_by_position": MetricInfo(
        description="argmax accuracy at each scored position",
        kind="curve",
        axes=("position t",),
        label="accuracy",
        ideal=1.0,
    ),
    "train_loss": MetricInfo(
        description="training loss (cross-entropy plus the gate's auxiliary loss)",
        higher_is_better=False,
        kind="curve",
        axes=("epoch",),
        label="loss",
    ),
}
"""Curves by position exist where more than one position is scored."""

MIXTURE_METRICS: dict[str, MetricInfo] = {
    "loss_early": MetricInfo(
        description="MSE of the gated expert mixture, first eval_window steps",
        higher_is_better=False,
        ideal=0.0,
    ),
    "loss_final": MetricInfo(
        description="MSE of the gated expert mixture, last eval_window steps",
        higher_is_better=False,
        ideal=0.0,
    ),
    "loss_after_shift": MetricInfo(
        description="MSE over the eval_window steps after the reliability shift",
        higher_is_better=False,
        ideal=0.0,
    ),
    "pi_contrast": MetricInfo(description="largest / smallest precision Pi at the end of training"),
    "detection_step": MetricInfo(
        description="steps after the shift until Pi ranks the newly reliable expert above the "
        "old one",
        higher_is_better=False,
        unit="steps",
    ),
    "reorder_step": MetricInfo(
        description="steps after the shift until Pi orders every expert by its new reliability",
        higher_is_better=False,
        unit="steps",
    ),
    "train_loss": MetricInfo(
        description="MSE of the gated expert mixture at each step",
        higher_is_better=False,
        kind="curve",
        axes=("step",),
        label="MSE",
    ),
    "pi": MetricInfo(
        description="precision Pi of each expert over training (gates that track precision)",
        kind="curves",
        axes=("step", "expert"),
        label="precision Pi",
    ),
}


class TrainSpec(StrictModel):
    optimizer: Literal["adam"] = "adam"
    lr: float = Field(gt=0)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0, description="Optimiser steps; each draws a fresh batch.")
    eval_window: int = Field(gt=0, description="Epochs averaged for the reported metrics.")

    @model_validator(mode="after")
    def _window_fits(self) -> TrainSpec:
        if self.eval_window > self.epochs:
            raise ValueError(
                f"eval_window ({self.eval_window}) cannot exceed epochs ({self.epochs})"
            )
        return self


class RoutingStreamData(StrictModel):
    """Sequences of noisy domain signals; domain d is +signal on the d-th block of dimensions."""

    kind: Literal["routing-stream"]
    seq_len: int = Field(ge=2)
    d_model: int = Field(ge=2)
    n_domains: int = Field(2, ge=2)
    domain_experts: list[int] = Field(description="The correct expert for each domain.")
    noise_std: float = Field(ge=0)
    signal: float = Field(1.0, description="Amplitude of the domain signal.")
    switch_at: int | tuple[int, int] | None = Field(
        None,
        description="First position of the second domain: a position, an inclusive range "
        "[low, high] drawn per sequence, or null for no switch.",
    )
    signal_until: int | None = Field(
        None, description="Positions from here on carry noise only (null: signal everywhere)."
    )
    target: Literal["current-domain", "next-domain"]
    readout: Literal["all", "final"]

    @model_validator(mode="after")
    def _consistent(self) -> RoutingStreamData:
        if self.d_model % self.n_domains:
            raise ValueError(f"d_model ({self.d_model}) must divide into n_domains blocks")
        if len(self.domain_experts) != self.n_domains:
            raise ValueError(
                f"domain_experts needs one expert per domain ({self.n_domains}), "
                f"got {len(self.domain_experts)}"
            )
        low, high = self.switch_range or (1, 1)
        if not 1 <= low <= high <= self.seq_len - 1:
            raise ValueError(f"switch_at must lie in [1, seq_len - 1 = {self.seq_len - 1}]")
        if self.signal_until is not None and not 0 < self.signal_until <= self.seq_len:
            raise ValueError(f"signal_until must lie in [1, seq_len = {self.seq_len}]")
        return self

    @property
    def switch_range(self) -> tuple[int, int] | None:
        if self.switch_at is None:
            return None
        if isinstance(self.switch_at, int):
            return (self.switch_at, self.switch_at)
        return (self.switch_at[0], self.switch_at[1])

    @property
    def has_scored_transition(self) -> bool:
        return self.switch_at is not None and self.readout == "all"

    def metric_names(self) -> list[str]:
        names = ["acc_all", "p_correct_all", "train_loss"]
        if self.has_scored_transition:
            names += ["acc_transition", "p_correct_transition", "k99_transition"]
        if self.readout == "all":
            names += ["p_correct_by_position", "acc_by_position"]
        return names


class NoiseShift(StrictModel):
    """At step ``at`` two experts swap their noise levels."""

    at: int = Field(ge=1)
    swap: tuple[int, int]


class ExpertMixtureData(StrictModel):
    """x ~ N(0, I); the target is the mean of the domain's block of x; experts add output noise."""

    kind: Literal["expert-mixture"]
    d_model: int = Field(ge=2)
    n_domains: int = Field(2, ge=2)
    expert_noise: list[list[float]] = Field(
        description="Output-noise std of each expert (rows) in each domain (columns)."
    )
    shift: NoiseShift | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExpertMixtureData:
        if self.d_model % self.n_domains:
            raise ValueError(f"d_model ({self.d_model}) must divide into n_domains blocks")
        for row in self.expert_noise:
            if len(row) != self.n_domains or min(row) < 0:
                raise ValueError(
                    f"each expert_noise row needs {self.n_domains} non-negative stds, got {row}"
                )
        return self

    def metric_names(self) -> list[str]:
        names = ["loss_early", "loss_final", "pi_contrast", "train_loss", "pi"]
        if self.shift is not None:
            names += ["loss_after_shift", "detection_step", "reorder_step"]
        return names


class TransitionModel(StrictModel):
    n_experts: int = Field(ge=2)
    expert_hidden: int = Field(32, gt=0, description="Hidden width of expert MLPs (mixture).")


class TransitionSpec(TaskSpec):
    family: Literal["transition"]
    reference_gate: str | None = "affinity"
    data: Annotated[RoutingStreamData | ExpertMixtureData, Field(discriminator="kind")]
    model: TransitionModel
    train: TrainSpec

    def family_identity_fields(self) -> tuple[str, ...]:
        return ("data", "model", "train")

    def available_metrics(self) -> dict[str, MetricInfo]:
        names = self.data.metric_names()
        table = ROUTING_METRICS if self.data.kind == "routing-stream" else MIXTURE_METRICS
        return {n: table[n] for n in names}

    @model_validator(mode="after")
    def _experts_exist(self) -> TransitionSpec:
        n = self.model.n_experts
        if isinstance(self.data, RoutingStreamData):
            bad = [e for e in self.data.domain_experts if not 0 <= e < n]
            if bad:
                raise ValueError(f"data.domain_experts {bad} are not experts 0..{n - 1}")
        else:
            if len(self.data.expert_noise) != n:
                raise ValueError(
                    f"data.expert_noise has {len(self.data.expert_noise)} rows "
                    f"but model.n_experts is {n}"
                )
            shift = self.data.shift
            if shift is not None:
                if any(not 0 <= e < n for e in shift.swap):
                    raise ValueError(
                        f"data.shift.swap {shift.swap} names experts outside 0..{n - 1}"
                    )
                if shift.at >= self.train.epochs:
                    raise ValueError(
                        f"data.shift.at ({shift.at}) must come before the last step "
                        f"(train.epochs = {self.train.epochs})"
                    )
        return self

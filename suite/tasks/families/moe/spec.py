"""Spec model of the ``moe`` family: a gate routing one layer of a real MoE architecture."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from suite.tasks.spec import MetricInfo, StrictModel, TaskSpec

DOMAINS = ("english", "python", "italian", "spanish", "portuguese", "french", "german")


class MoeData(StrictModel):
    """Windows of real text that switch domain once: ``seq_len`` characters, the first
    ``switch_at`` of ``domains[0]``, the rest of one of the other domains (drawn per sequence)."""

    domains: list[Literal[DOMAINS]] = Field(min_length=2)  # type: ignore[valid-type]
    seq_len: int = Field(96, ge=8)
    switch_at: int = Field(48, ge=2, description="Index of the first character of domain 2.")
    after: int = Field(8, ge=1, description="Steps after the switch of bpc_after_switch.")
    train_share: float = Field(0.9, gt=0, lt=1, description="Each text's share to train on.")

    @model_validator(mode="after")
    def _fits(self) -> MoeData:
        if not 2 <= self.switch_at <= self.seq_len - 1 - self.after:
            raise ValueError("switch_at must leave 'after' steps before the end of the sequence")
        return self


class MoeModel(StrictModel):
    """A small ``transformers`` MoE model (the architecture's own attention, norms and experts)."""

    arch: Literal["mixtral", "olmoe"] = "mixtral"
    hidden: int = Field(64, gt=0)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    experts: int = Field(4, ge=2)
    top_k: int = Field(2, ge=1)
    expert_hidden: int = Field(128, gt=0, description="Each expert's intermediate width.")
    gate_layer: int = Field(-1, description="The MoE layer the gate routes (-1: the last).")

    @model_validator(mode="after")
    def _shape(self) -> MoeModel:
        if self.top_k > self.experts or self.hidden % self.heads:
            raise ValueError("top_k must be at most experts, and heads must divide hidden")
        if not -self.layers <= self.gate_layer < self.layers:
            raise ValueError(f"gate_layer must index one of the {self.layers} layers")
        return self

    @property
    def layer_index(self) -> int:
        return self.gate_layer % self.layers


class MoePretrain(StrictModel):
    steps: int = Field(gt=0, description="Optimiser steps of the base, with its own routers.")
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)


class MoeTrain(StrictModel):
    steps: int = Field(gt=0, description="Optimiser steps of the gate (the base frozen).")
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)


class MoeEval(StrictModel):
    batches: int = Field(gt=0, description="Held-out batches the metrics are taken over.")
    batch_size: int = Field(gt=0)


def moe_metrics() -> dict[str, MetricInfo]:
    bits = {"higher_is_better": False, "unit": "bits", "ideal": 0.0}
    return {
        "bpc_all": MetricInfo(description="bits per character over every step", **bits),
        "bpc_switch": MetricInfo(
            description="bits per character at the switch (target: the first character of the "
            "new domain)",
            **bits,
        ),
        "bpc_after_switch": MetricInfo(
            description="bits per character over the steps just after the switch", **bits
        ),
        "max_load": MetricInfo(
            description="largest share of the routed layer's top-k choices taken by one expert "
            "(1/E is perfect balance)",
            higher_is_better=False,
        ),
        "usage_entropy": MetricInfo(
            description="entropy (bits) of the routed layer's expert usage over every token "
            "(log2 E is even use)",
        ),
        "base_bpc_all": MetricInfo(
            description="bits per character of the frozen base with its own router (the "
            "reference the gate replaces)",
            higher_is_better=False,
            unit="bits",
        ),
        "bpc_by_position": MetricInfo(
            description="bits per character at each input step",
            higher_is_better=False,
            kind="curve",
            axes=("step",),
            label="bits",
        ),
        "train_loss": MetricInfo(
            description="training loss of the gate (cross-entropy + aux)",
            higher_is_better=False,
            kind="curve",
            axes=("step",),
            label="loss",
        ),
    }


class MoeSpec(TaskSpec):
    family: Literal["moe"]
    data: MoeData
    model: MoeModel = MoeModel()
    pretrain: MoePretrain
    train: MoeTrain
    eval: MoeEval

    def available_metrics(self) -> dict[str, MetricInfo]:
        return moe_metrics()

    def family_identity_fields(self) -> tuple[str, ...]:
        return ("data", "model", "pretrain", "train", "eval")

"""Spec model of the facts family: recall of facts after they leave the attention window."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from suite.tasks.families.facts.templates import PLAIN, Templates
from suite.tasks.spec import MetricInfo, StrictModel, TaskSpec

Mode = Literal["in_context", "persistent", "capacity"]


class FactsData(StrictModel):
    n_entities: int = Field(38, ge=2, description="Entity words (keys).")
    n_values: int = Field(56, ge=2, description="Value words; chance on a query is 1/n_values.")
    n_fillers: int = Field(32, ge=1, description="Neutral words of the gap.")
    n_facts: int = Field(4, ge=1, description="Support facts per episode.")
    gap: int = Field(64, ge=0, description="Neutral tokens between the support and the queries.")
    n_queries: int = Field(4, ge=1, description="Queries per episode (distinct facts).")
    overwrites: int = Field(
        0, ge=0, description="Facts re-assigned a new value later in the support."
    )
    window: int = Field(32, ge=1, description="Attention window of the base, in tokens.")

    @model_validator(mode="after")
    def _fits(self) -> FactsData:
        if self.n_facts > self.n_entities:
            raise ValueError(f"n_facts {self.n_facts} needs as many entities (n_entities)")
        if self.n_queries > self.n_facts:
            raise ValueError("n_queries must be at most n_facts (each query asks a distinct fact)")
        if self.overwrites > self.n_facts:
            raise ValueError("overwrites must be at most n_facts")
        return self


Arch = Literal["mixtral", "olmoe", "home"]


class FactsModel(StrictModel):
    """The frozen base built and pre-trained here (sizes are ignored under ``base.pretrained``)."""

    arch: Arch = Field(
        "mixtral",
        description="A transformers Mixtral (its native sliding window) or OLMoE (a window "
        "mask), the updater in its last MoE block; or 'home', GateBench's first hand-written "
        "base (softly mixed experts), kept to compare.",
    )
    d_model: int = Field(64, gt=0)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    d_ff: int = Field(32, gt=0, description="Hidden width of each expert.")
    n_experts: int = Field(4, ge=1)
    top_k: int = Field(2, ge=1, description="Experts per token (transformers; home mixes all).")
    rope_theta: float = Field(
        10000.0, gt=0, description="Rotary base of the transformers bases (home: always 1e4)."
    )
    init_std: float = Field(
        0.1,
        gt=0,
        description="Initial weights' spread of the transformers bases (their "
        "initializer_range; 0.02, sized for wide models, pre-trains the in-context task to "
        "about 75% instead of 98% at the default profile).",
    )
    embed_std: float = Field(
        1.0, gt=0, description="Initial token embeddings' spread (as torch's nn.Embedding)."
    )
    rank: int = Field(4, ge=1, description="Rank r of the updater's LoRA factors.")
    clamp: float = Field(16.0, gt=0, description="Largest norm of one LoRA correction.")

    @model_validator(mode="after")
    def _heads(self) -> FactsModel:
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError("d_model / n_heads must be an even integer (rotary positions)")
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k {self.top_k} is more than n_experts {self.n_experts}")
        return self


class PretrainedBase(StrictModel):
    """A pretrained ``transformers`` MoE model as the frozen base, read from disk only (the
    updater adapts its last MoE block, as with the bases built here)."""

    pretrained: str = Field(
        description="A Hugging Face model id found in the local cache, or a local folder "
        "written by save_pretrained (nothing is downloaded)."
    )
    token_offset: int = Field(
        0, ge=0, description="The task's word i is the model's token offset + i."
    )


class Pretrain(StrictModel):
    """The base's pre-training on the in-context task (facts inside the window), then frozen."""

    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)
    max_gap: int = Field(0, ge=0, description="Gaps drawn from 0..max_gap (inside the window).")
    n_facts: int | None = Field(None, ge=1, description="Facts per episode (default: the task's).")
    n_queries: int | None = Field(None, ge=1, description="Queries (default: the task's).")


class FactsTrain(StrictModel):
    """The updater's training on top of the frozen base (in-context episodes of the task)."""

    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)


class FactsEval(StrictModel):
    batches: int = Field(gt=0, description="Evaluation batches per mode (and per capacity).")
    batch_size: int = Field(
        ge=2, description="Episodes per batch (2 or more: the leak control swaps their states)."
    )
    modes: list[Mode] = Field(default_factory=lambda: ["in_context", "persistent"])
    capacity: list[int] = Field(
        default_factory=list, description="Facts accumulated before querying (capacity mode)."
    )


def facts_metrics(chance: float) -> dict[str, MetricInfo]:
    acc = {"ideal": 1.0, "chance": chance}
    return {
        "acc_in_context": MetricInfo(
            description="accuracy on queries with support, gap and queries in one sequence", **acc
        ),
        "acc_persistent": MetricInfo(
            description="accuracy on queries answered in a fresh sequence from the updater state "
            "saved after reading the support (gate reset to its trained parameters)",
            **acc,
        ),
        "acc_capacity_max": MetricInfo(
            description="persistent accuracy with the most facts accumulated (capacity mode)",
            **acc,
        ),
        "acc_overwritten": MetricInfo(
            description="in-context accuracy on queries whose fact was re-assigned (the latest "
            "value is the answer)",
            **acc,
        ),
        "acc_capacity": MetricInfo(
            description="persistent accuracy against the number of facts accumulated",
            kind="curve",
            axes=("facts",),
            label="accuracy",
            **acc,
        ),
        "acc_by_distance": MetricInfo(
            description="in-context accuracy against the tokens between fact and query",
            kind="curve",
            axes=("distance",),
            label="accuracy",
            **acc,
        ),
        "train_loss": MetricInfo(
            description="the updater's training loss (cross-entropy on answers + aux loss)",
            higher_is_better=False,
            kind="curve",
            axes=("step",),
            label="loss",
        ),
    }


class FactsSpec(TaskSpec):
    family: Literal["facts"]
    data: FactsData
    model: FactsModel = FactsModel()
    pretrain: Pretrain
    train: FactsTrain
    eval: FactsEval
    templates: Templates | None = Field(
        None, description="Facts and queries as word templates (train and test sets disjoint)."
    )
    base: PretrainedBase | None = Field(
        None,
        description="A pretrained model instead of a base pre-trained here (model sizes and "
        "pretrain are then unused, data.window still masks its attention).",
    )

    @property
    def fact_len(self) -> int:
        return self.templates.fact_len if self.templates else PLAIN.fact_len

    @property
    def query_len(self) -> int:
        return self.templates.query_len if self.templates else PLAIN.query_len

    @property
    def support_len(self) -> int:
        return self.fact_len * (self.data.n_facts + self.data.overwrites)

    @property
    def seq_len(self) -> int:
        return self.support_len + self.data.gap + self.query_len * self.data.n_queries

    def available_metrics(self) -> dict[str, MetricInfo]:
        metrics = facts_metrics(1.0 / self.data.n_values)
        modes = set(self.eval.modes)
        drop = set()
        if "in_context" not in modes:
            drop |= {"acc_in_context", "acc_by_distance", "acc_overwritten"}
        if "persistent" not in modes:
            drop.add("acc_persistent")
        if "capacity" not in modes:
            drop |= {"acc_capacity", "acc_capacity_max"}
        if not self.data.overwrites:
            drop.add("acc_overwritten")
        return {k: v for k, v in metrics.items() if k not in drop}

    @property
    def pretrain_facts(self) -> tuple[int, int]:
        """(facts, queries) of a pre-training episode."""
        p, d = self.pretrain, self.data
        return p.n_facts or d.n_facts, p.n_queries or d.n_queries

    @model_validator(mode="after")
    def _pretraining_sees_its_facts(self) -> FactsSpec:
        facts, queries = self.pretrain_facts
        support = self.fact_len * (facts + self.data.overwrites)
        longest = support + self.pretrain.max_gap + self.query_len * queries
        if queries > facts:
            raise ValueError("pretrain.n_queries must be at most pretrain.n_facts")
        if longest > self.data.window:
            raise ValueError(
                f"a pre-training episode spans up to {longest} tokens, more than data.window "
                f"({self.data.window}): the base is pre-trained on facts inside its window; "
                "lower pretrain.max_gap, pretrain.n_facts or pretrain.n_queries"
            )
        return self

    @model_validator(mode="after")
    def _capacity(self) -> FactsSpec:
        if "capacity" in self.eval.modes and not self.eval.capacity:
            raise ValueError("eval.capacity must list the numbers of facts for the capacity mode")
        for n in self.eval.capacity:
            if n > self.data.n_entities or n % self.data.n_facts:
                raise ValueError(
                    f"eval.capacity {n}: must be a multiple of data.n_facts "
                    f"({self.data.n_facts}, facts per read) and at most data.n_entities "
                    f"({self.data.n_entities}, facts need distinct entities)"
                )
        return self

    def family_identity_fields(self) -> tuple[str, ...]:
        fields = ("data", "model", "pretrain", "train", "eval")
        optional = tuple(f for f in ("templates", "base") if getattr(self, f) is not None)
        return (*fields, *optional)  # a spec without them keeps its hash

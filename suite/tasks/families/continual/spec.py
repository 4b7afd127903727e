"""Spec model of the continual-learning family: task sequences learned one after another."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from suite.tasks.spec import MetricInfo, StrictModel, TaskSpec


class SequenceBase(StrictModel):
    n_tasks: int = Field(5, ge=2, description="Tasks in the sequence, learned one after another.")
    seq_len: int = Field(8, ge=1, description="Positions per sequence (all from one task).")
    task_aware: bool = Field(
        False, description="Give the task's index to gates that take side inputs (task_id)."
    )
    order_seed: int | None = Field(
        None,
        description="Shuffle the task order with this seed (held-out variants: drawn once, "
        "recorded, never tuned to).",
    )


class KVMaps(SequenceBase):
    """Each task a key -> value map over one shared vocabulary (facts in weights)."""

    kind: Literal["kv-maps"]
    n_keys: int = Field(48, ge=2, description="Key words shared by every task.")
    n_values: int = Field(16, ge=2, description="Value words; chance is 1/n_values.")
    keys_per_task: int = Field(8, ge=1)
    keys: Literal["random", "shared", "disjoint"] = Field(
        "random",
        description="random: each task draws its keys (overlaps re-assign earlier keys); "
        "shared: every task re-assigns the same keys (conflicting); disjoint: no key is shared.",
    )

    @property
    def chance(self) -> float:
        return 1.0 / self.n_values

    @model_validator(mode="after")
    def _enough_keys(self) -> KVMaps:
        need = self.keys_per_task * (self.n_tasks if self.keys == "disjoint" else 1)
        if need > self.n_keys:
            raise ValueError(
                f"keys '{self.keys}' with {self.n_tasks} tasks of {self.keys_per_task} keys "
                f"needs {need} keys, n_keys is {self.n_keys}"
            )
        return self


class Languages(SequenceBase):
    """Each task next-token prediction in its own Markov language."""

    kind: Literal["languages"]
    vocab: int = Field(48, ge=4, description="Symbols shared by all languages.")
    alphabet: int = Field(12, ge=2, description="Symbols of one language (a random subset).")
    successors: int = Field(3, ge=1, description="Possible next symbols of each symbol.")
    concentration: float = Field(
        1.0, gt=0, description="Dirichlet concentration of the successor probabilities."
    )

    @property
    def chance(self) -> float:
        return 1.0 / self.vocab

    @model_validator(mode="after")
    def _fits(self) -> Languages:
        if self.alphabet > self.vocab:
            raise ValueError("alphabet must be at most vocab")
        if self.successors > self.alphabet:
            raise ValueError("successors must be at most alphabet")
        if self.seq_len < 2:
            raise ValueError("a language task needs seq_len >= 2")
        return self


class Permuted(SequenceBase):
    """Classification of one problem with the input features permuted differently per task."""

    kind: Literal["permuted"]
    n_features: int = Field(16, ge=2)
    n_classes: int = Field(6, ge=2)
    separation: float = Field(
        2.0, gt=0, description="Scale of the class means (noise has unit variance)."
    )

    @property
    def chance(self) -> float:
        return 1.0 / self.n_classes


SequenceData = Annotated[KVMaps | Languages | Permuted, Field(discriminator="kind")]


class ContinualModel(StrictModel):
    d_model: int = Field(32, gt=0, description="Width of the frozen base and the router input.")
    d_hidden: int = Field(64, gt=0, description="Hidden width of the base's MLP block.")
    n_experts: int = Field(8, ge=2, description="Low-rank sub-experts (adapters) in the pool.")
    top_k: int = Field(2, ge=1, description="Sub-experts used per position.")
    rank: int = Field(4, ge=1, description="Rank of each sub-expert.")

    @model_validator(mode="after")
    def _k(self) -> ContinualModel:
        if self.top_k > self.n_experts:
            raise ValueError("top_k must be at most n_experts")
        return self


class Pretrain(StrictModel):
    """The base's pre-training on a generic task (then frozen)."""

    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)


class ContinualTrain(StrictModel):
    steps: int = Field(gt=0, description="Optimiser steps per task (the joint ceiling: n_tasks×).")
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)
    fisher_samples: int = Field(
        32, gt=0, description="Sequences behind a task's EWC Fisher (one gradient each)."
    )


class ContinualEval(StrictModel):
    batch_size: int = Field(
        gt=0, description="Evaluation sequences per task (also the routing probe set)."
    )


def continual_metrics(chance: float) -> dict[str, MetricInfo]:
    acc = {"ideal": 1.0, "chance": chance}
    return {
        "acc": MetricInfo(description="ACC: mean accuracy over all tasks after the last", **acc),
        "bwt": MetricInfo(
            description="BWT = mean over j<T of R[T][j] - R[j][j]: how learning later tasks "
            "changed earlier ones (negative = forgetting)",
            ideal=0.0,
        ),
        "fwt": MetricInfo(
            description="FWT = mean over j>1 of R[j-1][j] - R[0][j]: accuracy on a task before "
            "learning it, against the untrained model",
        ),
        "forgetting_max": MetricInfo(
            description="forgetting (Chaudhry 2018) = mean over j<T of max_{i<T} R[i][j] - "
            "R[T][j]: the drop from the best accuracy a task ever had",
            higher_is_better=False,
            ideal=0.0,
        ),
        "forgetting_last": MetricInfo(
            description="forgetting (Avalanche) = mean over j<T of R[j][j] - R[T][j]: the drop "
            "from the accuracy right after learning the task (= -BWT)",
            higher_is_better=False,
            ideal=0.0,
        ),
        "routing_stability": MetricInfo(
            description="mean below the diagonal of the stability matrix: the share of a task's "
            "probe tokens' top-k experts still chosen after each later task (1 = unchanged)",
            ideal=1.0,
        ),
        "load_drift": MetricInfo(
            description="mean below the diagonal of the Jensen-Shannon divergence (base 2) "
            "between a task's expert-load histogram now and right after it was learned",
            higher_is_better=False,
            ideal=0.0,
        ),
        "params_per_task": MetricInfo(
            description="sub-expert parameters that a task's training changed, mean over tasks",
            higher_is_better=False,
        ),
        "accuracy_matrix": MetricInfo(
            description="R[i][j]: accuracy on task j after learning task i (row 0: before any)",
            kind="matrix",
            axes=("after", "task"),
            label="accuracy",
            **acc,
        ),
        "stability_matrix": MetricInfo(
            description="share of task j's probe tokens whose top-k experts after task i are "
            "those chosen right after learning j (i >= j)",
            kind="matrix",
            axes=("after", "task"),
            label="stability",
            ideal=1.0,
        ),
        "load_drift_matrix": MetricInfo(
            description="Jensen-Shannon divergence of task j's expert-load histogram after "
            "task i from the one right after learning j (i >= j)",
            kind="matrix",
            axes=("after", "task"),
            label="JS divergence",
            higher_is_better=False,
        ),
        "train_loss": MetricInfo(
            description="training loss through the sequence (cross-entropy + aux + penalty)",
            higher_is_better=False,
            kind="curve",
            axes=("step",),
            label="loss",
        ),
    }


class ContinualSpec(TaskSpec):
    family: Literal["continual"]
    data: SequenceData
    model: ContinualModel = ContinualModel()
    pretrain: Pretrain
    train: ContinualTrain
    eval: ContinualEval

    def available_metrics(self) -> dict[str, MetricInfo]:
        return continual_metrics(self.data.chance)

    def family_identity_fields(self) -> tuple[str, ...]:
        return ("data", "model", "pretrain", "train", "eval")

"""Spec model of the character-LM family: next-character prediction across domain switches."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from suite.tasks.spec import MetricInfo, StrictModel, TaskSpec


class CharBase(StrictModel):
    """What every character stream shares: its length, where the switch falls, the mid range."""

    seq_len: int = Field(64, ge=3, description="Characters per sequence (seq_len - 1 targets).")
    switch_at: int = Field(32, ge=1, description="Index of the first character of domain 2.")
    random_switch: tuple[int, int] | None = Field(
        None, description="Draw the switch index per sequence from this range (inclusive)."
    )
    mid: tuple[int, int] = Field(
        (34, 51), description="Input steps (inclusive) of the mid-domain metrics after the switch."
    )

    @model_validator(mode="after")
    def _positions(self) -> CharBase:
        lo, hi = self.random_switch or (self.switch_at, self.switch_at)
        if not 1 <= lo <= hi < self.seq_len:
            raise ValueError("switch positions must lie inside the sequence")
        if not self.switch_at <= self.mid[0] <= self.mid[1] < self.seq_len - 1:
            raise ValueError("mid must be input steps after the switch, before the last")
        return self

    @property
    def transition_step(self) -> int:
        """The input step whose target is the first character of the new domain."""
        return self.switch_at - 1


class CharData(CharBase):
    """Characters of ``n_domains`` equal alphabets (a-m, n-z for two); within a domain the next
    letter is the previous + 1 (``p_next``), + 2 (``p_skip``) or any letter of the domain."""

    kind: Literal["synthetic"] = "synthetic"
    vocab: int = Field(26, ge=2)
    n_domains: int = Field(2, ge=2)
    random_order: bool = Field(
        False, description="Draw the two domains per sequence (default: domain 1, then 2)."
    )
    p_next: float = Field(0.7, ge=0, le=1)
    p_skip: float = Field(0.15, ge=0, le=1)
    more_switches: list[int] = Field(
        default_factory=list, description="Indices of further switches after switch_at."
    )
    drift: int = Field(
        0,
        ge=0,
        description="Gradual switches: over the drift characters from each switch, a character "
        "is from the new domain with probability (steps since the switch + 1) / (drift + 1); "
        "0 is an abrupt switch.",
    )
    held_out: ClassVar[bool] = False  # every batch is a fresh draw: training batches are unseen

    @model_validator(mode="after")
    def _fits(self) -> CharData:
        if self.vocab % self.n_domains:
            raise ValueError("vocab must split evenly into n_domains alphabets")
        if self.p_next + self.p_skip > 1:
            raise ValueError("p_next + p_skip must be at most 1")
        bounds = [self.switch_at, *self.more_switches]
        if self.more_switches and (
            self.random_switch is not None
            or bounds != sorted(set(bounds))
            or bounds[-1] >= self.seq_len
        ):
            raise ValueError(
                "more_switches must increase after switch_at, inside the sequence, and needs a "
                "fixed switch_at (no random_switch)"
            )
        if self.drift:
            last = (self.random_switch or (self.switch_at,) * 2)[1]
            gaps = [b - a for a, b in itertools.pairwise(bounds)]
            if (
                max([last, *bounds]) + self.drift >= self.seq_len
                or min(gaps, default=9e9) <= self.drift
            ):
                raise ValueError(
                    "each drift must end inside the sequence and before the next switch: "
                    "lower drift or move the switches"
                )
        return self


class RealLanguages(CharBase):
    """Real text that switches language: a window of the first language, then a window of one of
    the others (drawn per sequence), from ``chatterbot-corpus``."""

    kind: Literal["real-languages"]
    languages: list[str] = Field(
        min_length=2, description="The first language, then those the text may switch to."
    )
    train_share: float = Field(
        0.9, gt=0, lt=1, description="Share of each text to train on; the rest is held out."
    )
    held_out: ClassVar[bool] = True  # metrics on held-out text, not on the training windows

    @property
    def vocab(self) -> int:
        from suite.tasks.families.lm.corpus import SYMBOLS

        return len(SYMBOLS)

    @property
    def n_domains(self) -> int:
        return len(self.languages)


StreamData = Annotated[CharData | RealLanguages, Field(discriminator="kind")]


class LMModel(StrictModel):
    d_model: int = Field(64, gt=0)
    n_experts: int = Field(2, ge=1)
    ff_mult: int = Field(4, ge=1, description="Expert MLP width = ff_mult × d_model.")
    dispatch: Literal["soft", "top-k"] = Field(
        "soft", description="soft: every expert, mixed by softmax (the paper's); top-k: sparse."
    )
    top_k: int = Field(1, ge=1)
    layer: Literal["moe", "dsc", "dense"] = Field(
        "moe",
        description="moe: the experts, mixed by the gate (default); dsc: Dynamic Subspace "
        "Composition (lm/dsc.py) and dense: one MLP of hidden active × ff_mult × d_model, each "
        "sized to the active parameters of this MoE (every expert under soft dispatch, top_k "
        "under top-k). dsc and dense replace the experts and route by themselves: the gate still "
        "runs (its aux loss counts) but its logits mix nothing, so the routing metrics are not "
        "available and each record says so. The layer entries dsc and dense select them per run "
        "on an MoE task instead.",
    )

    @model_validator(mode="after")
    def _k(self) -> LMModel:
        if self.top_k > self.n_experts:
            raise ValueError("top_k must be at most n_experts")
        return self

    @property
    def active_experts(self) -> int:
        """Experts a token uses: all of them under soft dispatch, top_k under top-k."""
        return self.n_experts if self.dispatch == "soft" else self.top_k


class LMTrain(StrictModel):
    epochs: int = Field(gt=0, description="Optimiser steps, each on a fresh batch.")
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)
    transition_weight: float = Field(5.0, ge=1, description="Loss weight of the transition step.")
    eval_window: int = Field(
        50, gt=0, description="Metrics: mean over the last epochs' batches, before their steps."
    )


ROUTING_METRICS = frozenset(
    {"p_correct_transition", "p_correct_mid", "anticipation_lift", "k_coverage", "load_entropy",
     "max_load"}
)  # fmt: skip  # read from the gate's mixing weights: none without the MoE layer


def lm_metrics() -> dict[str, MetricInfo]:
    bits = {"higher_is_better": False, "unit": "bits", "ideal": 0.0}  # the leaderboard's 1
    return {
        "bpc_all": MetricInfo(description="bits per character over every step", **bits),
        "bpc_transition": MetricInfo(
            description="bits per character at the transition step (target: the first character "
            "of the new domain)",
            **bits,
        ),
        "p_correct_transition": MetricInfo(
            description="gate weight on the next domain's expert at the transition step (each "
            "domain's expert: the one whose mean gate weight rises most on that domain relative "
            "to the others)",
            ideal=1.0,
        ),
        "p_correct_mid": MetricInfo(
            description="gate weight on the current domain's expert in the middle of the second "
            "domain",
            ideal=1.0,
        ),
        "anticipation_lift": MetricInfo(
            description="p_correct_transition minus the weight on the same expert over the 3 steps "
            "before: how far the gate moves towards the next domain's expert at the switch (a "
            "gate that favours that expert everywhere, or drifts with position, scores ~0)",
        ),
        "k_coverage": MetricInfo(
            description="K(99%): experts to draw so the next domain's expert is among them with "
            "probability 0.99, from p_correct_transition",
            higher_is_better=False,
            ideal=1.0,
        ),
        "load_entropy": MetricInfo(
            description="entropy (bits) of the experts' mean gate weight over every step",
        ),
        "max_load": MetricInfo(
            description="largest share of the total gate weight taken by one expert",
            higher_is_better=False,
        ),
        "bpc_by_position": MetricInfo(
            description="bits per character at each input step",
            higher_is_better=False,
            kind="curve",
            axes=("step",),
            label="bits",
        ),
        "train_loss": MetricInfo(
            description="training loss (weighted cross-entropy + aux)",
            higher_is_better=False,
            kind="curve",
            axes=("epoch",),
            label="loss",
        ),
    }


class LMSpec(TaskSpec):
    family: Literal["lm"]
    data: StreamData
    model: LMModel = LMModel()
    train: LMTrain

    def available_metrics(self) -> dict[str, MetricInfo]:
        metrics = lm_metrics()
        if self.model.layer != "moe":
            return {k: v for k, v in metrics.items() if k not in ROUTING_METRICS}
        return metrics

    def family_identity_fields(self) -> tuple[str, ...]:
        return ("data", "model", "train")

    def identity(self) -> dict[str, Any]:
        """The default ``layer: moe`` is left out: specs written before the option keep their
        hashes (and their lock entries)."""
        ident = super().identity()
        if self.model.layer == "moe":
            ident["model"] = {k: v for k, v in ident["model"].items() if k != "layer"}
        return ident

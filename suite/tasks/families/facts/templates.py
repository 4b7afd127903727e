"""Templates: the layout of facts and queries as data, and the tensors that render them.

A plain spec writes a fact ``e v`` and a query ``ASK e v`` (scored at ``e``: the next token is the
answer). A spec with a ``templates`` section writes them as short phrases over template words
instead, e.g. ``the <e> relates to <v>`` and ``<e> relates to what <v>``, with disjoint sets of
templates for training (the base's pre-training and the updater's training) and for evaluation.
Each fact and each query of an episode draws one template of its set. All support templates have
one length and all query templates another, so that an episode's layout (where every fact and
query starts) stays fixed and episodes are drawn as one tensor. A query is scored at the token
just before its ``<v>``: the position where the value is the next token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Generator, Tensor

from suite.tasks.families.facts.vocab import ASK, IGNORE
from suite.tasks.spec import StrictModel

Split = Literal["train", "test"]
ENTITY_WORD, VALUE_WORD = "<e>", "<v>"
ENTITY, VALUE = -1, -2  # slot markers in a rendered template's token row


class TemplateSet(StrictModel):
    train: list[str] = Field(min_length=1, description="Templates of training episodes.")
    test: list[str] = Field(min_length=1, description="Templates of evaluation episodes.")

    def of(self, split: Split) -> list[str]:
        return self.train if split == "train" else self.test

    @model_validator(mode="after")
    def _disjoint(self) -> TemplateSet:
        for name, group in (("train", self.train), ("test", self.test)):
            if len({tuple(t.split()) for t in group}) < len(group):
                raise ValueError(f"templates repeat within {name}")
        both = {tuple(t.split()) for t in self.train} & {tuple(t.split()) for t in self.test}
        if both:
            raise ValueError(
                f"templates in both train and test: {sorted(' '.join(t) for t in both)}"
            )
        return self


class Templates(StrictModel):
    """Facts and queries as phrases: template words around ``<e>`` (entity) and ``<v>`` (value)."""

    words: list[str] = Field(min_length=1, description="Template words (vocabulary after fillers).")
    support: TemplateSet = Field(description="Facts, e.g. 'the <e> relates to <v>'.")
    queries: TemplateSet = Field(description="Queries, '<v>' after '<e>': '<e> is what <v>'.")

    @model_validator(mode="after")
    def _well_formed(self) -> Templates:
        if len(set(self.words)) < len(self.words) or {ENTITY_WORD, VALUE_WORD} & set(self.words):
            raise ValueError("template words must be distinct and not '<e>' or '<v>'")
        used: set[str] = set()
        for kind, group in (("support", self.support), ("queries", self.queries)):
            every = group.train + group.test
            for template in every:
                tokens = template.split()
                if tokens.count(ENTITY_WORD) != 1 or tokens.count(VALUE_WORD) != 1:
                    raise ValueError(f"{kind} template '{template}': needs one <e> and one <v>")
                unknown = set(tokens) - set(self.words) - {ENTITY_WORD, VALUE_WORD}
                if unknown:
                    raise ValueError(f"{kind} template '{template}': not in words: {unknown}")
                if kind == "queries" and tokens.index(VALUE_WORD) < tokens.index(ENTITY_WORD):
                    raise ValueError(f"query template '{template}': <v> must follow <e>")
                used |= set(tokens)
            if len({len(t.split()) for t in every}) != 1:
                raise ValueError(f"all {kind} templates must have one length (a fixed layout)")
        if set(self.words) - used:
            raise ValueError(f"template words no template uses: {sorted(set(self.words) - used)}")
        return self

    @property
    def fact_len(self) -> int:
        return len(self.support.train[0].split())

    @property
    def query_len(self) -> int:
        return len(self.queries.train[0].split())


@dataclass(frozen=True, eq=False)
class Layout:
    """The templates of one split as token rows (slots marked ENTITY / VALUE)."""

    support: Tensor  # (S, fact_len)
    queries: Tensor  # (Qt, query_len)

    @property
    def fact_len(self) -> int:
        return self.support.shape[1]

    @property
    def query_len(self) -> int:
        return self.queries.shape[1]

    @property
    def value_in_fact(self) -> Tensor:
        """(S,): where each support template holds its value."""
        return (self.support == VALUE).int().argmax(dim=1)

    @property
    def answer_in_query(self) -> Tensor:
        """(Qt,): where each query template is scored (the token before its value)."""
        return (self.queries == VALUE).int().argmax(dim=1) - 1

    def choose(
        self, g: Generator, batch: int, n_facts: int, n_queries: int
    ) -> tuple[Tensor, Tensor]:
        """A template per fact (B, F) and per query (B, Q); one template draws nothing, so the
        plain layout's episodes stay what they were before templates existed."""

        def pick(n_templates: int, n: int) -> Tensor:
            if n_templates == 1:
                return torch.zeros(batch, n, dtype=torch.long)
            return torch.randint(0, n_templates, (batch, n), generator=g)

        return pick(len(self.support), n_facts), pick(len(self.queries), n_queries)

    def facts(self, entities: Tensor, values: Tensor, choice: Tensor) -> Tensor:
        """(B, F * fact_len) tokens of facts (B, F) rendered with their templates."""
        rows = _fill(self.support[choice], entities, values)
        return rows.reshape(rows.shape[0], -1)

    def value_at(self, fact: Tensor, choice: Tensor) -> Tensor:
        """Position in the support of the value of fact index ``fact`` (B, Q)."""
        return fact * self.fact_len + self.value_in_fact[choice.gather(1, fact)]

    def ask(self, entities: Tensor, answers: Tensor, choice: Tensor) -> tuple[Tensor, Tensor]:
        """(B, Q * query_len) query tokens and their labels (the answer where scored)."""
        rows = _fill(self.queries[choice], entities, answers)
        labels = torch.full_like(rows, IGNORE)
        labels.scatter_(2, self.answer_in_query[choice][..., None], answers[..., None])
        return rows.reshape(rows.shape[0], -1), labels.reshape(rows.shape[0], -1)


def _fill(rows: Tensor, entities: Tensor, values: Tensor) -> Tensor:
    rows = torch.where(rows == ENTITY, entities[..., None], rows)
    return torch.where(rows == VALUE, values[..., None], rows)


PLAIN = Layout(torch.tensor([[ENTITY, VALUE]]), torch.tensor([[ASK, ENTITY, VALUE]]))

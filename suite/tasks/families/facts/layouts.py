"""The spec's words and episode layout: the vocabulary a facts spec implies, and the token rows
of its support and query templates for a split."""

from __future__ import annotations

import torch
from torch import Tensor

from suite.tasks.families.facts.spec import FactsSpec
from suite.tasks.families.facts.templates import (
    ENTITY,
    ENTITY_WORD,
    PLAIN,
    VALUE,
    VALUE_WORD,
    Layout,
    Split,
    TemplateSet,
)
from suite.tasks.families.facts.vocab import Vocab


def vocab_of(spec: FactsSpec) -> Vocab:
    d, t = spec.data, spec.templates
    return Vocab(d.n_entities, d.n_values, d.n_fillers, len(t.words) if t else 0)


def layout_of(spec: FactsSpec, split: Split) -> Layout:
    """The layout of ``split``'s episodes: train for pre-training and training, test for
    evaluation (the plain layout for a spec without templates)."""
    t = spec.templates
    if t is None:
        return PLAIN
    word0 = vocab_of(spec).template0
    ids = {w: word0 + i for i, w in enumerate(t.words)} | {ENTITY_WORD: ENTITY, VALUE_WORD: VALUE}

    def rows(group: TemplateSet) -> Tensor:
        return torch.tensor([[ids[w] for w in s.split()] for s in group.of(split)])

    return Layout(rows(t.support), rows(t.queries))

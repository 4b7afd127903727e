"""Episodes of the facts family: support facts, a gap of neutral words, then queries.

A fact is the pair ``e v`` (2 tokens) and a query ``ASK e v`` (3 tokens), scored at its entity,
where the next token is the answer ``v`` (the layout of zoology's multi-query associative recall;
a 5-token ``FACT e REL v SEP`` layout, tried first, left a 2-layer base at the 1/n_facts plateau
after 1000 pre-training steps where this one retrieves perfectly after 500). A spec's
``templates`` render facts and queries as phrases instead (``templates.py``): the layout passed
here says how. Labels hold the answer at scored positions and -100 elsewhere. Every tensor is
drawn at once for the whole batch from a seeded generator (no loop over episodes or tokens): an
episode is a function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from suite.seeding import derive_seed, generator
from suite.tasks.families.facts.templates import PLAIN, Layout
from suite.tasks.families.facts.vocab import IGNORE, Vocab

FACT_LEN, QUERY_LEN = PLAIN.fact_len, PLAIN.query_len  # the plain layout's (no templates)


@dataclass(frozen=True)
class Episodes:
    """A batch of episodes, in parts: the persistent mode reads them in separate sequences."""

    support: Tensor  # (B, Ts) token ids
    gap: Tensor  # (B, G)
    queries: Tensor  # (B, Tq)
    labels: Tensor  # (B, Tq): the answer at scored query positions, IGNORE elsewhere
    fact_at: Tensor  # (B, Q): position in ``support`` of the value the query asks for
    overwritten: Tensor  # (B, Q) bool: the queried entity was re-assigned in the support
    fact_len: int = FACT_LEN  # tokens of one fact in ``support``
    query_len: int = QUERY_LEN  # tokens of one query in ``queries``

    def in_context(self) -> tuple[Tensor, Tensor]:
        """Support, gap and queries in one sequence, with labels aligned to it."""
        tokens = torch.cat([self.support, self.gap, self.queries], dim=1)
        pad = torch.full_like(torch.cat([self.support, self.gap], dim=1), IGNORE)
        return tokens, torch.cat([pad, self.labels], dim=1)

    def distances(self) -> Tensor:
        """(B, Q): tokens between each answer's fact and its query in the in-context sequence."""
        offset = self.support.shape[1] + self.gap.shape[1]
        return offset + scored_positions(self.labels) - self.fact_at


def draw_episodes(
    vocab: Vocab,
    batch: int,
    n_facts: int,
    gap: int,
    n_queries: int,
    seed: int,
    overwrites: int = 0,
    layout: Layout = PLAIN,
) -> Episodes:
    """``n_facts`` distinct entities with random values, then ``overwrites`` of them re-assigned
    (a new value, later in the support; the latest is the answer); ``n_queries`` distinct
    entities asked, overwritten ones first. Facts and queries are written with ``layout``'s
    templates, one drawn per fact and per query."""
    g = generator(seed)
    B, F, Q = batch, n_facts, n_queries
    entities = torch.rand(B, vocab.n_entities, generator=g).argsort(dim=1)[:, :F]
    values = torch.randint(0, vocab.n_values, (B, F + overwrites), generator=g)
    if overwrites:  # a re-assignment always changes the value
        shift = torch.randint(1, vocab.n_values, (B, overwrites), generator=g)
        values[:, F:] = (values[:, :overwrites] + shift) % vocab.n_values
    written = torch.cat([entities, entities[:, :overwrites]], dim=1)  # (B, F + O)
    # which facts are asked: the overwritten ones first, then others in random order
    order = torch.rand(B, F - overwrites, generator=g).argsort(dim=1) + overwrites
    asked = torch.cat([torch.arange(overwrites).expand(B, -1), order], dim=1)[:, :Q]  # (B, Q)
    latest = asked.clone()
    is_over = asked < overwrites
    latest[is_over] = asked[is_over] + F  # the re-assignment holds the answer
    answers = values.gather(1, latest) + vocab.value0
    asked_entities = entities.gather(1, asked) + vocab.entity0
    # shuffle the query order so overwritten keys are not always asked first
    perm = torch.rand(B, Q, generator=g).argsort(dim=1)
    answers, asked_entities, latest, is_over = (
        t.gather(1, perm) for t in (answers, asked_entities, latest, is_over)
    )
    fillers = torch.randint(0, vocab.n_fillers, (B, gap), generator=g) + vocab.filler0
    in_facts, in_queries = layout.choose(g, B, F + overwrites, Q)  # after every other draw
    queries, labels = layout.ask(asked_entities, answers, in_queries)
    return Episodes(
        support=layout.facts(written + vocab.entity0, values + vocab.value0, in_facts),
        gap=fillers,
        queries=queries,
        labels=labels,
        fact_at=layout.value_at(latest, in_facts),
        overwritten=is_over,
        fact_len=layout.fact_len,
        query_len=layout.query_len,
    )


def cat_episodes(parts: list[Episodes]) -> Episodes:
    """Batches of episodes of one layout as one batch, in order."""
    fields = ("support", "gap", "queries", "labels", "fact_at", "overwritten")
    joined = {f: torch.cat([getattr(p, f) for p in parts]) for f in fields}
    return Episodes(**joined, fact_len=parts[0].fact_len, query_len=parts[0].query_len)


def scored_positions(labels: Tensor) -> Tensor:
    """(B, K): the positions of each row's answers (every row scores the same number)."""
    return (labels != IGNORE).nonzero()[:, 1].view(labels.shape[0], -1)


def scored_labels(labels: Tensor) -> Tensor:
    return labels.gather(1, scored_positions(labels))


def episode_seed(data_seed: int, purpose: str, index: int) -> int:
    """The seed of one batch of episodes (e.g. ``("train", step)``, ``("eval", i)``)."""
    return derive_seed(data_seed, purpose, index)

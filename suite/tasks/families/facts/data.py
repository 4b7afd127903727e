"""Episodes of the facts family: support facts, a gap of neutral words, then queries.

A fact is the pair ``e v`` (2 tokens) and a query ``ASK e v`` (3 tokens), scored at its entity,
where the next token is the answer ``v`` (the layout of zoology's multi-query associative recall;
a 5-token ``FACT e REL v SEP`` layout, tried first, left a 2-layer base at the 1/n_facts plateau
after 1000 pre-training steps where this one retrieves perfectly after 500). Labels hold the
answer at scored positions and -100 elsewhere. Every tensor is drawn at once for the whole batch
from a seeded generator (no loop over episodes or tokens): an episode is a function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from suite.seeding import derive_seed, generator
from suite.tasks.families.facts.vocab import ASK, Vocab

IGNORE = -100
FACT_LEN, QUERY_LEN = 2, 3
VALUE_IN_FACT, ANSWER_IN_QUERY = 1, 1  # offsets: where a fact's value is, where a query is scored


@dataclass(frozen=True)
class Episodes:
    """A batch of episodes, in parts: the persistent mode reads them in separate sequences."""

    support: Tensor  # (B, Ts) token ids
    gap: Tensor  # (B, G)
    queries: Tensor  # (B, Tq)
    labels: Tensor  # (B, Tq): the answer at scored query positions, IGNORE elsewhere
    fact_at: Tensor  # (B, Q): position in ``support`` of the value the query asks for
    overwritten: Tensor  # (B, Q) bool: the queried entity was re-assigned in the support

    def in_context(self) -> tuple[Tensor, Tensor]:
        """Support, gap and queries in one sequence, with labels aligned to it."""
        tokens = torch.cat([self.support, self.gap, self.queries], dim=1)
        pad = torch.full_like(torch.cat([self.support, self.gap], dim=1), IGNORE)
        return tokens, torch.cat([pad, self.labels], dim=1)

    def distances(self) -> Tensor:
        """(B, Q): tokens between each answer's fact and its query in the in-context sequence."""
        Q = self.fact_at.shape[1]
        offset = self.support.shape[1] + self.gap.shape[1]
        scored = offset + torch.arange(Q) * QUERY_LEN + ANSWER_IN_QUERY
        return scored - self.fact_at


def draw_episodes(
    vocab: Vocab,
    batch: int,
    n_facts: int,
    gap: int,
    n_queries: int,
    seed: int,
    overwrites: int = 0,
) -> Episodes:
    """``n_facts`` distinct entities with random values, then ``overwrites`` of them re-assigned
    (a new value, later in the support; the latest is the answer); ``n_queries`` distinct
    entities asked, overwritten ones first."""
    g = generator(seed)
    B, F, Q = batch, n_facts, n_queries
    entities = torch.rand(B, vocab.n_entities, generator=g).argsort(dim=1)[:, :F]
    values = torch.randint(0, vocab.n_values, (B, F + overwrites), generator=g)
    if overwrites:  # a re-assignment always changes the value
        shift = torch.randint(1, vocab.n_values, (B, overwrites), generator=g)
        values[:, F:] = (values[:, :overwrites] + shift) % vocab.n_values
    written = torch.cat([entities, entities[:, :overwrites]], dim=1)  # (B, F + O)
    facts = torch.stack([written + vocab.entity0, values + vocab.value0], dim=-1).reshape(B, -1)
    # which facts are asked: the overwritten ones first, then others in random order
    order = torch.rand(B, F - overwrites, generator=g).argsort(dim=1) + overwrites
    asked = torch.cat([torch.arange(overwrites).expand(B, -1), order], dim=1)[:, :Q]  # (B, Q)
    latest = asked.clone()
    is_over = asked < overwrites
    latest[is_over] = asked[is_over] + F  # the re-assignment holds the answer
    answers = values.gather(1, latest) + vocab.value0
    asked_entities = entities.gather(1, asked) + vocab.entity0
    queries = torch.stack([torch.full_like(answers, ASK), asked_entities, answers], dim=-1)
    labels = torch.full_like(queries, IGNORE)
    labels[..., ANSWER_IN_QUERY] = answers
    # shuffle the query order so overwritten keys are not always asked first
    perm = torch.rand(B, Q, generator=g).argsort(dim=1)
    queries = queries.gather(1, perm[..., None].expand(-1, -1, QUERY_LEN)).reshape(B, -1)
    labels = labels.gather(1, perm[..., None].expand(-1, -1, QUERY_LEN)).reshape(B, -1)
    latest, is_over = latest.gather(1, perm), is_over.gather(1, perm)
    fillers = torch.randint(0, vocab.n_fillers, (B, gap), generator=g) + vocab.filler0
    return Episodes(
        support=facts,
        gap=fillers,
        queries=queries,
        labels=labels,
        fact_at=latest * FACT_LEN + VALUE_IN_FACT,
        overwritten=is_over,
    )


def scored_positions(labels: Tensor) -> Tensor:
    """(B, K): the positions of each row's answers (every row scores the same number)."""
    return (labels != IGNORE).nonzero()[:, 1].view(labels.shape[0], -1)


def scored_labels(labels: Tensor) -> Tensor:
    return labels.gather(1, scored_positions(labels))


def episode_seed(data_seed: int, purpose: str, index: int) -> int:
    """The seed of one batch of episodes (e.g. ``("train", step)``, ``("eval", i)``)."""
    return derive_seed(data_seed, purpose, index)

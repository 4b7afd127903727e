"""The three evaluation modes of a trained updater.

* ``in_context``: support, gap and queries in one sequence (the training layout).
* ``persistent``: read the support alone, keep the updater's state, then answer the queries in a
  fresh sequence from that state. Both sequences are read by *fresh copies* of the trained gate,
  so nothing the gate keeps outside its state survives the reset. A control answers each episode
  from another episode's state: an honest updater is at chance there, and one that answers
  correctly anyway has carried the facts some other way (``LeakError``).
* ``capacity``: several reads accumulate N facts into one state, then every fact is queried.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from suite.contract import State, UpdaterOutput
from suite.gates.proxy import release, side_twin
from suite.gates.wire import map_tensors
from suite.tasks.columns import fingerprint, to_dataset
from suite.tasks.families.facts.base import FrozenBase
from suite.tasks.families.facts.data import (
    Episodes,
    cat_episodes,
    draw_episodes,
    episode_seed,
    scored_labels,
)
from suite.tasks.families.facts.layouts import layout_of
from suite.tasks.families.facts.pretrain import answer_accuracy, vocab_of
from suite.tasks.families.facts.reading import Trunk, read, task_info
from suite.tasks.families.facts.spec import FactsSpec
from suite.tasks.family import ArrayResult, RunContext

LEAK_P_VALUE = 1e-6  # the control's binomial test against chance


class LeakError(RuntimeError):
    """The gate answered persistent queries from another episode's state: it leaks."""


def eval_episodes(spec: FactsSpec, data_seed: int, index: int, n_facts: int, n_queries: int):
    d = spec.data
    return draw_episodes(
        vocab_of(spec), spec.eval.batch_size, n_facts, d.gap, n_queries,
        episode_seed(data_seed, f"eval-{n_facts}", index), d.overwrites, layout_of(spec, "test"),
    )  # fmt: skip


def all_eval_episodes(spec: FactsSpec, data_seed: int, n_facts: int, n_queries: int) -> Episodes:
    """Every evaluation batch of a mode as one batch, read at once: an updater is checked for
    batch isolation, so each episode's answers are those of its own batch, and one read costs
    what one small batch's read costs in a loop's overhead."""
    return cat_episodes(
        [eval_episodes(spec, data_seed, i, n_facts, n_queries) for i in range(spec.eval.batches)]
    )


def eval_dataset(spec: FactsSpec, data_seed: int):
    """The in-context evaluation episodes as a Dataset."""
    d = spec.data
    tokens, labels = all_eval_episodes(spec, data_seed, d.n_facts, d.n_queries).in_context()
    return to_dataset(_columns([tokens], [labels]))


def _columns(tokens: list[Tensor], labels: list[Tensor]) -> dict[str, np.ndarray]:
    return {
        "tokens": torch.cat(tokens).numpy().astype(np.int16),
        "labels": torch.cat(labels).numpy().astype(np.int16),
    }


def another_episode(t: Tensor, batch: int) -> Tensor:
    """A state tensor with each episode's entry replaced by the previous episode's: rolled along
    its first axis of the batch's size (states need not be batch-first)."""
    axes = [i for i, n in enumerate(t.shape) if n == batch]
    return t.roll(1, dims=axes[0]) if axes else t


class Evaluator:
    """The evaluation modes of one trained gate; every episode is read by fresh copies of it."""

    def __init__(
        self,
        spec: FactsSpec,
        base: FrozenBase,
        snapshot: Any,
        ctx: RunContext,
        trunk: Trunk | None = None,
    ) -> None:
        self.spec, self.base, self.snapshot, self.ctx, self.trunk = spec, base, snapshot, ctx, trunk
        self.info = task_info(spec)
        self.vocab = vocab_of(spec)
        self.device = ctx.device

    def _fresh_read(
        self, tokens: Tensor, state: State = None, labels: Tensor | None = None
    ) -> tuple[Tensor | None, UpdaterOutput]:
        gate = side_twin(self.snapshot)
        try:
            dev = self.device
            lab = None if labels is None else labels.to(dev)
            return read(self.base, gate, tokens.to(dev), self.info, state, lab, self.trunk)
        finally:
            release(gate)

    def in_context(self) -> dict[str, Any]:
        spec, d = self.spec, self.spec.data
        ep = all_eval_episodes(spec, self.ctx.seeds.data, d.n_facts, d.n_queries)
        seq, lab = ep.in_context()
        logits, _ = self._fresh_read(seq, labels=lab)
        hits = answer_accuracy(logits.cpu(), scored_labels(lab), self.vocab).view(-1, d.n_queries)
        dist, overwritten = ep.distances(), ep.overwritten
        out: dict[str, Any] = {"acc_in_context": hits.mean().item()}
        if d.overwrites:
            out["acc_overwritten"] = hits[overwritten].mean().item()
        out["acc_by_distance"] = self._by_distance(hits, dist)
        out["fingerprint"] = fingerprint(_columns([seq], [lab]))
        return out

    def _by_distance(self, hits: Tensor, dist: Tensor) -> ArrayResult:
        """Accuracy at every distance the layout allows (NaN where no query fell)."""
        spec, d, layout = self.spec, self.spec.data, layout_of(self.spec, "test")
        start = spec.support_len + d.gap
        possible = sorted(
            {start + layout.query_len * q + a - (layout.fact_len * i + v)
             for q in range(d.n_queries) for i in range(d.n_facts + d.overwrites)
             for a in layout.answer_in_query.tolist() for v in layout.value_in_fact.tolist()}
        )  # fmt: skip
        index = torch.searchsorted(torch.tensor(possible), dist.flatten())
        n = torch.bincount(index, minlength=len(possible)).double()
        k = torch.bincount(index, weights=hits.flatten().double(), minlength=len(possible))
        acc = torch.where(n > 0, k / n.clamp(min=1), torch.nan)
        return ArrayResult(acc, {"distance": possible})

    def _answer(self, ep: Episodes, state: State) -> Tensor:
        """Per-query correctness of answering ``ep``'s queries in fresh sequences from ``state``."""
        n = ep.query_len * self.spec.data.n_queries
        hits = []
        for part, lab in zip(
            ep.queries.split(n, dim=1), ep.labels.split(n, dim=1),
            strict=True,
        ):  # fmt: skip
            logits, _ = self._fresh_read(part, state, labels=lab)
            found = answer_accuracy(logits.cpu(), scored_labels(lab), self.vocab)
            hits.append(found.view(lab.shape[0], -1))
        return torch.cat(hits, dim=1)

    def _saved_state(self, ep: Episodes) -> State:
        """The state after reading the support, n_facts facts per fresh sequence (and a fresh
        copy of the gate per sequence: only the state goes from one read to the next)."""
        state = None
        for part in ep.support.split(ep.fact_len * self.spec.data.n_facts, dim=1):
            state = self._fresh_read(part, state)[1].state
        return state

    def persistent(self, n_facts: int, n_queries: int, purpose: str) -> tuple[float, float]:
        """Accuracy from the saved state, and from another episode's state (the leak control)."""
        ep = all_eval_episodes(self.spec, self.ctx.seeds.data, n_facts, n_queries)
        state = self._saved_state(ep)
        acc = self._answer(ep, state)
        other = map_tensors(state, partial(another_episode, batch=ep.queries.shape[0]))
        shuffled = self._answer(ep, other)
        self._check_leak(shuffled, purpose)
        return acc.mean().item(), shuffled.mean().item()

    def _check_leak(self, shuffled: Tensor, purpose: str) -> None:
        chance = 1.0 / self.spec.data.n_values
        k, n = int(shuffled.sum()), shuffled.numel()
        if n and stats.binomtest(k, n, chance, alternative="greater").pvalue < LEAK_P_VALUE:
            raise LeakError(
                f"{purpose}: answered from another episode's saved state, the gate is right on "
                f"{k} of {n} queries (chance {chance:.3f}): the facts reached the answers some "
                "way other than the state the updater returned (a module-level variable, a "
                "file, ...). Keep everything an episode writes in the returned state."
            )

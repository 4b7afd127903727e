"""The task sequences: each kind draws its tasks from the run's data seed, then samples batches.

A sequence is drawn in a canonical order and then reordered (``order_seed``, the held-out
variants), so a shuffled variant learns the same tasks in another order. Every sample is one
sequence of ``seq_len`` positions from one task; labels are per position.

* ``kv-maps``: inputs are key words, labels their values in the task's map;
* ``languages``: a walk on the task's Markov chain, labels the next symbol;
* ``permuted``: feature vectors of one classification problem, permuted per task; labels classes.

The frozen base is pre-trained on each kind's ``generic`` task: a random bigram language over the
whole vocabulary for the token kinds, the unpermuted problem for ``permuted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from suite.seeding import derive_seed, generator
from suite.tasks.families.continual.spec import KVMaps, Languages, Permuted, SequenceData

GENERIC_SUCCESSORS = 4  # next symbols per symbol of the generic pre-training language


@dataclass(frozen=True)
class Batch:
    inputs: Tensor  # (N, T) int64 tokens, or (N, T, F) float features
    labels: Tensor  # (N, T) int64
    task: Tensor  # (N,) int64: each sequence's task index in the (possibly shuffled) order


def task_order(data: SequenceData) -> list[int]:
    """Canonical task index learned at each stage (identity unless ``order_seed`` is set)."""
    if data.order_seed is None:
        return list(range(data.n_tasks))
    return torch.randperm(data.n_tasks, generator=generator(data.order_seed)).tolist()


def transition_cdf(transition: Tensor) -> Tensor:
    """Each row's cumulative distribution (V, V) in float64, normalised so its last entry is 1
    exactly: the inverse-CDF step ``searchsorted(cdf[s], u, right=True)`` with u in [0, 1) then
    never picks a symbol of probability 0."""
    cdf = transition.double().cumsum(-1)
    return cdf / cdf[:, -1:]


def step_tables(cdf: Tensor, u: Tensor) -> Tensor:
    """The inverse-CDF step of every state for every uniform: (M, V) with entry [m, s] =
    ``searchsorted(cdf[s], u[m], right=True)``, the number of row s's boundaries at or below u[m].

    Computed with the uniforms sorted once: a boundary c is at or below u[m] exactly when the
    number of uniforms below c is at most u[m]'s rank, so the count is a cumulative histogram of
    the boundaries' insertion points read at each rank (V² searches instead of M·V)."""
    order = u.argsort()
    points = torch.searchsorted(u[order], cdf.T.contiguous())  # (V boundaries, V states)
    hist = torch.zeros(u.numel() + 1, cdf.shape[0], dtype=torch.long, device=u.device)
    counts = hist.scatter_add_(0, points, torch.ones_like(points)).cumsum_(0)
    tables = torch.empty(u.numel(), cdf.shape[0], dtype=torch.long, device=u.device)
    tables[order] = counts[:-1]
    return tables


def walk_from_uniforms(transition: Tensor, start: Tensor, u: Tensor) -> Tensor:
    """The walks (N, L + 1) from ``start`` (N,) that the inverse-CDF steps with uniforms ``u``
    (N, L) take, computed without a loop over the steps.

    Step t maps every state s to f_t[s] = searchsorted(cdf[s], u_t); the state after t steps is
    (f_t ∘ ... ∘ f_1)(start). The prefix compositions are an inclusive scan over the tables
    (N, L, V) with composition as the operator (Hillis-Steele: log2 L rounds of ``gather``)."""
    n, length = u.shape
    cdf = transition_cdf(transition)
    v = cdf.shape[0]
    prefix = step_tables(cdf, u.reshape(-1)).clamp_(max=v - 1).view(n, length, v)
    shift = 1
    while shift < length:  # prefix[t] <- prefix[t] ∘ prefix[t - shift], all t >= shift at once
        prefix[:, shift:] = prefix[:, shift:].gather(-1, prefix[:, :-shift])
        shift *= 2
    walked = prefix.gather(-1, start.view(n, 1, 1).expand(n, length, 1)).squeeze(-1)
    return torch.cat([start.view(n, 1), walked], dim=1)


def markov_walk(transition: Tensor, start: Tensor, length: int, g: torch.Generator) -> Tensor:
    """Walks of ``length`` + 1 symbols from ``start`` (N,) on a row-stochastic (V, V) matrix:
    data generation, vectorised over the walks and the steps (one draw of every uniform)."""
    u = torch.rand(start.shape[0], length, generator=g, dtype=torch.float64)
    return walk_from_uniforms(transition, start, u)


def random_chain(symbols: Tensor, vocab: int, successors: int, alpha: float, g) -> Tensor:
    """A (vocab, vocab) transition matrix over ``symbols``: each has ``successors`` next symbols
    among them with Dirichlet(alpha) probabilities (rows of other symbols are uniform)."""
    n = symbols.numel()
    matrix = torch.full((vocab, vocab), 1.0 / vocab)
    nxt = torch.stack([symbols[torch.randperm(n, generator=g)[:successors]] for _ in range(n)])
    gamma = torch._standard_gamma(torch.full((n, successors), float(alpha)), generator=g)
    probs = gamma / gamma.sum(-1, keepdim=True)
    matrix[symbols] = 0.0
    matrix[symbols.unsqueeze(1), nxt] = probs
    return matrix


class TaskSequence:
    """The tasks of one run's sequence; ``sample`` draws a batch of one task."""

    input_kind: ClassVar[str] = "tokens"

    def __init__(self, data: SequenceData, seed: int) -> None:
        self.data, self.seed = data, seed
        self.order = task_order(data)

    @property
    def n_inputs(self) -> int:
        """Vocabulary size (tokens) or feature width (features)."""
        raise NotImplementedError

    @property
    def n_outputs(self) -> int:
        raise NotImplementedError

    def _sample(self, canonical: int, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def sample(self, stage: int, n: int, seed: int) -> Batch:
        """``n`` sequences of the task learned at ``stage``."""
        inputs, labels = self._sample(self.order[stage], n, generator(seed))
        return Batch(inputs, labels, torch.full((n,), stage, dtype=torch.long))

    def generic(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """A batch of the generic pre-training task."""
        raise NotImplementedError

    def bayes_accuracy(self, stage: int, batch: Batch) -> float | None:
        """The best accuracy any model can reach on ``batch`` (None where unknown)."""
        return None


class KVMapSequence(TaskSequence):
    data: KVMaps

    def __init__(self, data: KVMaps, seed: int) -> None:
        super().__init__(data, seed)
        g = generator(derive_seed(seed, "kv-maps"))
        n, k = data.n_tasks, data.keys_per_task
        if data.keys == "shared":
            keys = torch.randperm(data.n_keys, generator=g)[:k].repeat(n, 1)
        elif data.keys == "disjoint":
            keys = torch.randperm(data.n_keys, generator=g)[: n * k].view(n, k)
        else:
            keys = torch.stack([torch.randperm(data.n_keys, generator=g)[:k] for _ in range(n)])
        self.keys = keys  # (n_tasks, k) key word ids
        self.values = data.n_keys + torch.randint(data.n_values, (n, k), generator=g)
        self.generic_chain = random_chain(
            torch.arange(self.n_inputs), self.n_inputs, GENERIC_SUCCESSORS, 1.0, g
        )

    @property
    def n_inputs(self) -> int:
        return self.data.n_keys + self.data.n_values

    @property
    def n_outputs(self) -> int:
        return self.n_inputs

    def _sample(self, canonical: int, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        which = torch.randint(self.data.keys_per_task, (n, self.data.seq_len), generator=g)
        return self.keys[canonical][which], self.values[canonical][which]

    def generic(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        g = generator(seed)
        start = torch.randint(self.n_inputs, (n,), generator=g)
        walk = markov_walk(self.generic_chain, start, self.data.seq_len, g)
        return walk[:, :-1], walk[:, 1:]

    def bayes_accuracy(self, stage: int, batch: Batch) -> float | None:
        return 1.0


class LanguageSequence(TaskSequence):
    data: Languages

    def __init__(self, data: Languages, seed: int) -> None:
        super().__init__(data, seed)
        g = generator(derive_seed(seed, "languages"))
        d = data
        self.alphabets = [
            torch.randperm(d.vocab, generator=g)[: d.alphabet] for _ in range(d.n_tasks)
        ]
        self.chains = [
            random_chain(a, d.vocab, d.successors, d.concentration, g) for a in self.alphabets
        ]
        self.generic_chain = random_chain(
            torch.arange(d.vocab), d.vocab, GENERIC_SUCCESSORS, 1.0, g
        )

    @property
    def n_inputs(self) -> int:
        return self.data.vocab

    @property
    def n_outputs(self) -> int:
        return self.data.vocab

    def _walk(self, chain: Tensor, symbols: Tensor, n: int, g: torch.Generator):
        start = symbols[torch.randint(symbols.numel(), (n,), generator=g)]
        walk = markov_walk(chain, start, self.data.seq_len, g)
        return walk[:, :-1], walk[:, 1:]

    def _sample(self, canonical: int, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        return self._walk(self.chains[canonical], self.alphabets[canonical], n, g)

    def generic(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        return self._walk(self.generic_chain, torch.arange(self.data.vocab), n, generator(seed))

    def bayes_accuracy(self, stage: int, batch: Batch) -> float | None:
        """Mean over positions of the most likely next symbol's probability."""
        chain = self.chains[self.order[stage]]
        return chain[batch.inputs].max(-1).values.mean().item()


class PermutedSequence(TaskSequence):
    data: Permuted
    input_kind = "features"

    def __init__(self, data: Permuted, seed: int) -> None:
        super().__init__(data, seed)
        g = generator(derive_seed(seed, "permuted"))
        f = data.n_features
        self.means = torch.randn(data.n_classes, f, generator=g) * data.separation
        self.perms = [torch.randperm(f, generator=g) for _ in range(data.n_tasks)]

    @property
    def n_inputs(self) -> int:
        return self.data.n_features

    @property
    def n_outputs(self) -> int:
        return self.data.n_classes

    def _problem(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        labels = torch.randint(self.data.n_classes, (n, self.data.seq_len), generator=g)
        x = self.means[labels] + torch.randn(*labels.shape, self.data.n_features, generator=g)
        return x, labels

    def _sample(self, canonical: int, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        x, labels = self._problem(n, g)
        return x[..., self.perms[canonical]], labels

    def generic(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        return self._problem(n, generator(seed))


SEQUENCES: dict[str, type[TaskSequence]] = {
    "kv-maps": KVMapSequence,
    "languages": LanguageSequence,
    "permuted": PermutedSequence,
}


def draw_sequence(data: SequenceData, seed: int) -> TaskSequence:
    return SEQUENCES[data.kind](data, seed)

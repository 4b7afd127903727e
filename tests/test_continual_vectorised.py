"""The continual family's vectorised hot paths against their per-step oracles: the Markov walks
(one draw of every uniform, the steps composed by a prefix scan) against the inverse-CDF loop, and
EWC's per-example gradients (one ``vmap(grad)`` pass) against the per-sequence loop, with the
fallback to the loop wherever ``vmap`` cannot run the gate or would change what it computes."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chi2
from torch import Tensor

from suite.contract import GateOutput, RouterGate, Side, State
from suite.gates.audit import AuditedGate
from suite.gates.entries import get_gate
from suite.gates.kinds import kinds
from suite.seeding import RunSeeds, generator, seeded_global_rng
from suite.tasks.families.continual import protocol
from suite.tasks.families.continual.data import (
    draw_sequence,
    markov_walk,
    random_chain,
    transition_cdf,
    walk_from_uniforms,
)
from suite.tasks.families.continual.regimes import EWC
from suite.tasks.family import RunContext, get_family

# -- the Markov walks -----------------------------------------------------------------------------


def walk_loop(transition: Tensor, start: Tensor, u: Tensor) -> Tensor:
    """The oracle: one inverse-CDF step (a ``searchsorted`` per walk) per position."""
    cdf = transition_cdf(transition)
    out = [start]
    for t in range(u.shape[1]):
        step = torch.searchsorted(cdf[out[-1]], u[:, t : t + 1].contiguous(), right=True)
        out.append(step.squeeze(1).clamp(max=cdf.shape[0] - 1))
    return torch.stack(out, dim=1)


def chains(g: torch.Generator) -> list[Tensor]:
    """Sparse rows (a language over part of the vocabulary), dense rows, and unnormalised rows
    with zero-probability symbols at both ends."""
    lopsided = torch.tensor([[0.0, 0.2, 0.0, 0.7, 0.0], [0.5, 0.0, 0.0, 0.0, 0.5]]).repeat(3, 1)
    return [
        random_chain(torch.randperm(48, generator=g)[:12], 48, 3, 1.0, g),
        random_chain(torch.arange(64), 64, 4, 0.3, g),
        torch.rand(7, 7, generator=g) * 3,
        lopsided[:5] * 1.3,
    ]


@pytest.mark.parametrize(("n", "length"), [(64, 16), (32, 8), (5, 1), (3, 0), (9, 37), (0, 4)])
def test_the_vectorised_walk_is_the_inverse_cdf_loop(n: int, length: int):
    g = generator(11)
    for transition in chains(g):
        v = transition.shape[0]
        start = torch.randint(v, (n,), generator=g)
        u = torch.rand(n, length, generator=g, dtype=torch.float64)
        walk = walk_from_uniforms(transition, start, u)
        assert walk.shape == (n, length + 1) and walk.dtype == torch.long
        assert torch.equal(walk, walk_loop(transition, start, u))


def test_the_walk_never_takes_a_transition_of_probability_zero():
    g = generator(2)
    for transition in chains(g):
        v = transition.shape[0]
        walk = markov_walk(transition, torch.randint(v, (256,), generator=g), 64, g)
        assert bool((transition[walk[:, :-1], walk[:, 1:]] > 0).all())


def test_a_long_walk_has_the_matrix_transition_frequencies():
    """Pearson's chi-square per row of the counted transitions (fixed seed): every row's p-value
    above 1e-3, and the pooled statistic within its distribution's bulk."""
    g = generator(5)
    v = 6
    transition = torch._standard_gamma(torch.full((v, v), 2.0), generator=g)
    transition[0, 2] = transition[3, 3] = 0.0  # impossible transitions stay impossible
    transition /= transition.sum(-1, keepdim=True)
    walk = markov_walk(transition, torch.randint(v, (400,), generator=g), 500, g)
    pairs = walk[:, :-1].flatten() * v + walk[:, 1:].flatten()
    counts = torch.bincount(pairs, minlength=v * v).view(v, v).double()
    assert counts[0, 2] == 0 and counts[3, 3] == 0
    total, dof = 0.0, 0
    for s in range(v):
        p = transition[s].double()
        keep = p > 0
        expected = counts[s].sum() * p[keep]
        assert bool((expected > 5).all())  # where the chi-square approximation holds
        stat = ((counts[s, keep] - expected) ** 2 / expected).sum().item()
        k = int(keep.sum()) - 1
        assert chi2.sf(stat, k) > 1e-3, (s, stat, k)
        total, dof = total + stat, dof + k
    assert 1e-3 < chi2.sf(total, dof) < 1 - 1e-3
    empirical = counts / counts.sum(-1, keepdim=True)
    assert (empirical - transition.double()).abs().max() < 0.01


def test_walks_are_deterministic_for_a_seed(tasks):
    chain = random_chain(torch.arange(48), 48, 4, 1.0, generator(0))
    start = torch.randint(48, (64,), generator=generator(1))
    first = markov_walk(chain, start, 16, generator(7))
    assert torch.equal(first, markov_walk(chain, start, 16, generator(7)))
    assert not torch.equal(first, markov_walk(chain, start, 16, generator(8)))
    u = torch.rand(64, 16, generator=generator(7), dtype=torch.float64)  # all it draws
    assert torch.equal(first, walk_from_uniforms(chain, start, u))
    for task in ("continual/languages", "continual/kv-maps"):
        sequence = draw_sequence(tasks[task].data, seed=3)
        assert torch.equal(sequence.generic(16, seed=4)[0], sequence.generic(16, seed=4)[0])
        if task == "continual/languages":
            batch, again = sequence.sample(2, 16, seed=4), sequence.sample(2, 16, seed=4)
            assert torch.equal(batch.inputs, again.inputs)


# -- EWC's per-example gradients ------------------------------------------------------------------


def learner_after_a_task(tasks, task: str, gate_id: str = "ewc", wrap=None, samples: int = 16):
    """A learner of the smoke spec that has trained its first task (B is no longer zero, so the
    sub-experts' and the router's gradients are not)."""
    spec = tasks[task].for_profile("smoke")
    spec = spec.model_copy(
        update={"train": spec.train.model_copy(update={"fisher_samples": samples})}
    )
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    artifact = get_family("continual").prepare(spec, seeds)
    info = protocol.task_info(spec)
    with seeded_global_rng(seeds.init):
        gate = get_gate(gate_id).build(info) if isinstance(gate_id, str) else gate_id(info)
    if wrap is not None:
        gate = wrap(gate)
    learner = protocol.Learner(spec, gate, RunContext(seeds=seeds, artifact=artifact))
    learner.train_stage([0], spec.train.steps)
    return learner


def loop_grads(learner: protocol.Learner, batch) -> list[Tensor]:
    rows = list(learner.per_sequence_grads(batch))
    params = learner.params()
    return [
        torch.stack([torch.zeros_like(p) if r[j] is None else r[j] for r in rows])
        for j, p in enumerate(params)
    ]


def fisher_of(params: list[Tensor], grads) -> list[Tensor]:
    ewc = EWC(object())
    ewc.consolidate(params, lambda: grads)
    return ewc.fisher


def assert_relatively_close(mine: list[Tensor], theirs: list[Tensor], rtol: float) -> None:
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        assert a.shape == b.shape
        scale = b.abs().max().item()
        assert (a - b).abs().max().item() <= rtol * scale, (a - b).abs().max().item() / scale


TASKS = ["continual/kv-maps", "continual/languages", "continual/permuted"]


@pytest.mark.parametrize("task", TASKS)
def test_the_vectorised_fisher_is_the_per_sequence_loop(tasks, task: str):
    learner = learner_after_a_task(tasks, task)
    batch = learner.fisher_batch(1)
    stacked = learner.vectorised_grads(batch)
    assert stacked is not None  # the ewc gate's linear router vectorises
    oracle = list(learner.per_sequence_grads(batch))
    params = learner.params()
    assert [g.shape for g in stacked] == [(16, *p.shape) for p in params]
    assert all(bool(g.abs().sum() > 0) for g in stacked)  # sub-experts and router both learn
    assert_relatively_close(stacked, loop_grads(learner, batch), rtol=1e-5)
    # the consumer: mean of squares of the stacked gradients = the loop's running sum / n
    assert_relatively_close(fisher_of(params, stacked), fisher_of(params, iter(oracle)), 1e-6)
    through = fisher_of(params, learner.fisher_grads(1))
    assert_relatively_close(through, fisher_of(params, iter(oracle)), 1e-6)


def test_an_ewc_run_consolidates_the_loop_fisher(tasks, monkeypatch):
    """Through a whole smoke run of the ewc regime (task-aware: the side input travels too),
    every task's Fisher from the vectorised pass is the per-sequence loop's."""
    spec = tasks["continual/kv-maps-conflicting-task-aware"].for_profile("smoke")
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    artifact = get_family("continual").prepare(spec, seeds)
    pairs = []
    original = protocol.Learner.fisher_grads

    def spy(self, stage):
        stacked = original(self, stage)
        oracle = list(self.per_sequence_grads(self.fisher_batch(stage)))
        params = self.params()
        pairs.append((fisher_of(params, stacked), fisher_of(params, iter(oracle))))
        return stacked

    vectorised = []
    plain = protocol.Learner.vectorised_grads

    def watched(self, batch):
        vectorised.append(plain(self, batch))
        return vectorised[-1]

    monkeypatch.setattr(protocol.Learner, "fisher_grads", spy)
    monkeypatch.setattr(protocol.Learner, "vectorised_grads", watched)
    with seeded_global_rng(seeds.init):
        gate = get_gate("ewc").build(protocol.task_info(spec))
    out = protocol.run(spec, gate, RunContext(seeds=seeds, artifact=artifact))
    assert len(pairs) == spec.data.n_tasks and all(v is not None for v in vectorised)
    for mine, theirs in pairs[1:]:  # after task 1 B has moved: the Fisher is not zero
        assert_relatively_close(mine, theirs, 1e-6)
    assert "bwt" in out.metrics


def test_an_audited_gate_vectorises_through_its_inner_gate(tasks):
    def audited(gate):
        return AuditedGate(gate, kinds.get("router"), seed=3)

    learner = learner_after_a_task(tasks, "continual/languages", wrap=audited)
    calls = learner.gate.calls
    batch = learner.fisher_batch(2)
    stacked = learner.vectorised_grads(batch)
    assert stacked is not None
    assert learner.gate.calls == calls + 1  # one checked (and auditable) call on the batch
    assert_relatively_close(stacked, loop_grads(learner, batch), rtol=1e-5)


class ItemRouter(RouterGate):
    """Data-dependent Python control flow: vmap cannot run it."""

    def __init__(self, info) -> None:
        super().__init__(info)
        self.W = torch.nn.Parameter(torch.randn(info.n_experts, info.d_model) * 0.3)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        logits = x @ self.W.T
        return GateOutput(logits * 2.0 if logits.mean().item() > 0 else logits)


class BatchNormRouter(ItemRouter):
    """Not batch-isolated (normalised over the batch): its losses under vmap differ."""

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        logits = x @ self.W.T
        return GateOutput(logits - logits.mean(0) * 3.0)


class RemoteLike(ItemRouter):
    """Looks like a gate in its own process (``remote_optimizer``)."""

    def forward(self, x: Tensor, state: State = None, side: Side | None = None) -> GateOutput:
        return GateOutput(x @ self.W.T)

    def remote_optimizer(self, lr: float):
        return None


@pytest.mark.parametrize("gate", [ItemRouter, BatchNormRouter, RemoteLike])
def test_gates_vmap_cannot_run_fall_back_to_the_loop(tasks, gate):
    learner = learner_after_a_task(tasks, "continual/kv-maps", gate_id=gate, samples=6)
    batch = learner.fisher_batch(1)
    assert learner.vectorised_grads(batch) is None
    fallback = learner.fisher_grads(1)
    oracle = loop_grads(learner, batch)
    assert all(torch.equal(a, b) for a, b in zip(fallback, oracle, strict=True))

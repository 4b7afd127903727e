"""The facts family: updater forms agree, the persistent mode really resets, the base stays
frozen, leaks are detected, and a smoke sweep runs and repeats bit for bit."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor

from suite.contract import State, TaskInfo, UpdaterGate, UpdaterOutput, adapted_shapes
from suite.gates.conformance import run_conformance
from suite.gates.entries import GateEntry, get_gate
from suite.gates.kinds import kinds
from suite.results.aggregate import aggregate
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.facts import evaluation, protocol, reading
from suite.tasks.families.facts.data import (
    IGNORE,
    QUERY_LEN,
    draw_episodes,
    scored_labels,
    scored_positions,
)
from suite.tasks.families.facts.pretrain import answer_accuracy, vocab_of, warmup_share
from suite.tasks.family import RunContext, get_family
from suite.website.site import render_site

UPDATERS = [
    "no-updater", "lerp", "lerp-scan", "delta-rule", "gated-delta", "decay-delta",
    "surprise-delta", "memory-surprise", "routed-updater", "routed-updater-beta", "gru-updater",
    "dual-updater",
]  # fmt: skip


def small_info(rank: int = 3) -> TaskInfo:
    return TaskInfo(
        d_model=8, n_experts=4, seq_len=12, kind="updater",
        extras={"rank": rank, "adapted": [[8, 6], [6, 8]], "vocab_size": 20},
    )  # fmt: skip


def _lively(gate: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Random weights everywhere (zero-initialised B factors would hide differences)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in gate.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
    return gate


def _outputs_and_grads(gate, x: Tensor, sequential: bool) -> tuple[Tensor, list[Tensor]]:
    kind = kinds.get("updater")
    x = x.clone().requires_grad_(True)
    if sequential:
        y, _ = kind.stream(gate, x)
    else:
        y = kind.per_position(gate(x))
    weights = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)
    grads = torch.autograd.grad((y * weights).sum(), [x, *gate.parameters()])
    return y.detach(), [g.detach() for g in grads]


@pytest.mark.parametrize(
    ("parallel", "sequential"),
    [
        ("lerp-scan", "lerp"),
        ("delta-rule", "delta-rule"),
        ("gated-delta", "gated-delta"),
        ("decay-delta", "decay-delta"),
        ("routed-updater-beta", "routed-updater-beta"),
    ],
)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-8), (torch.float32, 1e-5)])
def test_parallel_and_sequential_forms_agree_in_values_and_gradients(
    parallel, sequential, dtype, tol
):
    """lerp-scan's log-space scan against lerp's loop and against step; the delta rule's
    chunkwise form against its step recurrence (T not a multiple of the chunk)."""
    info = small_info()
    with seeded_global_rng(0):
        a = _lively(get_gate(parallel).build(info)).to(dtype)
    with seeded_global_rng(0):
        b = _lively(get_gate(sequential).build(info)).to(dtype)
    x = torch.randn(3, 21, 8, dtype=dtype, generator=torch.Generator().manual_seed(2))
    ya, ga = _outputs_and_grads(a, x, sequential=False)
    yb, gb = _outputs_and_grads(b, x, sequential=(parallel == sequential))
    scale = 1 + ya.abs().max()
    assert (ya - yb).abs().max() <= tol * scale
    for u, v in zip(ga, gb, strict=True):
        assert (u - v).abs().max() <= tol * (1 + u.abs().max())


def test_the_scan_stays_finite_where_the_masked_triangle_would_overflow():
    """Masking after exp overflows for long sequences with small beta; the scan masks first."""
    info = small_info()
    with seeded_global_rng(0):
        gate = get_gate("lerp-scan").build(info)
    with torch.no_grad():
        gate.beta.bias.fill_(-30.0)  # log(1 - beta) ~ 0, but log(beta) ~ -30 per step
        gate.beta.weight.zero_()
    x = torch.randn(2, 400, 8, requires_grad=True)
    y = kinds.get("updater").per_position(gate(x))
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("gate_id", UPDATERS)
def test_every_updater_passes_conformance(gate_id):
    report = run_conformance(get_gate(gate_id), small_info(), None, seed=0)
    assert report.verdict == "ranked", report.reason()


class PeekingUpdater(UpdaterGate):
    """Writes the *next* position's hidden state: not causal."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.inner = get_gate("lerp-scan").build(info)

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        return self.inner(torch.roll(x, -1, dims=1), state)

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        return self.inner.step(x_t, state)


def test_a_peeking_updater_is_rejected():
    entry = GateEntry("test-peeking-updater", PeekingUpdater, {}, "peeks", origin="test")
    report = run_conformance(entry, small_info(), None, seed=0)
    assert report.verdict == "rejected"
    assert "causality" in report.reason()


# -- the facts protocol ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tasks):
    return tasks["facts/sliding-window"].for_profile("smoke")


@pytest.fixture(scope="module")
def prepared(smoke):
    seeds = RunSeeds(smoke.master_seed, smoke.id, 0)
    return seeds, get_family("facts").prepare(smoke, seeds)


@pytest.mark.parametrize("steps", [1, 19, 20, 21])
def test_the_base_pretrains_at_any_step_count(smoke, steps):
    """Torch's one-cycle schedule divides by zero at exactly one warm-up step (20 steps at a
    5% share): a spec with 20 pre-training steps still builds its base."""
    spec = smoke.model_copy(update={"pretrain": smoke.pretrain.model_copy(update={"steps": steps})})
    state = get_family("facts").prepare(spec, RunSeeds(spec.master_seed, spec.id, 0))
    assert state and all(torch.isfinite(v).all() for v in state.values())
    assert warmup_share(600) == 0.05 and warmup_share(20) == 0.1  # the specs' bases unchanged


def test_multi_query_episodes_hold_mqar_invariants(tasks):
    """Every key once per example, keys and values from disjoint vocabulary ranges, a query only
    for a present key, labels only at answer positions (zoology's MQAR conventions)."""
    spec = tasks["facts/multi-query"].for_profile("smoke")
    vocab, d = vocab_of(spec), spec.data
    ep = draw_episodes(vocab, 32, d.n_facts, d.gap, d.n_queries, seed=5)
    pairs = ep.support.view(32, -1, 2)
    keys, values = pairs[..., 0], pairs[..., 1]
    assert all(len(set(row.tolist())) == d.n_facts for row in keys)
    assert ((keys >= vocab.entity0) & (keys < vocab.value0)).all()
    assert ((values >= vocab.value0) & (values < vocab.filler0)).all()
    tokens, labels = ep.in_context()
    scored = labels != IGNORE
    assert scored.sum(1).eq(d.n_queries).all()
    asked = tokens[:, :-1][scored[:, :-1]].view(32, -1)  # the token at each answer position
    for b in range(32):
        table = dict(zip(keys[b].tolist(), values[b].tolist(), strict=True))
        assert set(asked[b].tolist()) <= set(table)  # queries only for present keys
        assert [table[k] for k in asked[b].tolist()] == labels[b][scored[b]].tolist()
    gap = tokens[:, 2 * d.n_facts : 2 * d.n_facts + d.gap]
    assert ((gap >= vocab.filler0) & (gap < vocab.template0)).all()
    assert not scored[:, : -3 * d.n_queries].any()  # nothing scored before the queries


def test_episodes_hold_their_invariants(smoke):
    vocab = vocab_of(smoke)
    ep = draw_episodes(vocab, 64, 6, 5, 4, seed=3, overwrites=2)
    facts = ep.support.view(64, -1, 2)
    entities, values = facts[..., 0], facts[..., 1]
    first = entities[:, :6]
    assert all(len(set(row.tolist())) == 6 for row in first)  # distinct keys in a read
    assert torch.equal(entities[:, 6:], first[:, :2])  # the overwrites re-assign earlier keys
    assert (values[:, 6:] != values[:, :2]).all()  # ... with a different value
    queries = ep.queries.view(64, -1, QUERY_LEN)
    labels = ep.labels.view(64, -1, QUERY_LEN)
    assert (labels[..., 0] == IGNORE).all() and (labels[..., 2] == IGNORE).all()
    for b in range(64):
        latest = {int(e): int(v) for e, v in zip(entities[b], values[b], strict=True)}
        for q in range(4):
            assert int(labels[b, q, 1]) == latest[int(queries[b, q, 1])]  # the latest value
    assert ep.overwritten.any(dim=1).all()  # overwritten keys are asked
    again = draw_episodes(vocab, 64, 6, 5, 4, seed=3, overwrites=2)
    assert torch.equal(again.queries, ep.queries) and torch.equal(again.gap, ep.gap)


def test_the_base_stays_frozen_through_updater_training(smoke, prepared, monkeypatch):
    seeds, artifact = prepared
    before = {k: v.clone() for k, v in artifact.items()}
    used = []
    original = protocol.load_base

    def spy(spec, art):
        base, accuracy = original(spec, art)
        used.append(base)
        return base, accuracy

    monkeypatch.setattr(protocol, "load_base", spy)
    with seeded_global_rng(seeds.init):
        gate = get_gate("lerp-scan").build(reading.task_info(smoke))
    protocol.run(smoke, gate, RunContext(seeds=seeds, artifact=artifact))
    after = used[0].state_dict()
    for name, tensor in before.items():
        assert torch.equal(artifact[name], tensor)
        if name in after:
            assert torch.equal(after[name], tensor), name


class RememberingUpdater(UpdaterGate):
    """Keeps what it read in a Python attribute, outside the state it returns."""

    seen: ClassVar[list[tuple[int, int]]] = []  # (id of the gate, calls it had before)

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.inner = get_gate("lerp-scan").build(info)
        self.calls = 0

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        if not self.training:
            RememberingUpdater.seen.append((id(self), self.calls))
        self.calls += 1
        self.memory = x.detach()  # the smuggled copy
        return self.inner(x, state)

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        return self.inner.step(x_t, state)


def test_every_evaluation_read_starts_from_the_trained_gate(smoke, prepared):
    """Each sequence of the evaluation (reads, answers, controls) is read by a fresh copy of the
    trained gate: an attribute written while reading the support is gone when answering."""
    seeds, artifact = prepared
    RememberingUpdater.seen.clear()
    with seeded_global_rng(seeds.init):
        gate = RememberingUpdater(reading.task_info(smoke))
    protocol.run(smoke, gate, RunContext(seeds=seeds, artifact=artifact))
    trained_calls = smoke.train.steps
    assert RememberingUpdater.seen
    assert {calls for _, calls in RememberingUpdater.seen} == {trained_calls}
    assert len({gate_id for gate_id, _ in RememberingUpdater.seen}) > 1


def test_answers_from_another_episodes_state_must_be_at_chance(smoke, prepared):
    seeds, artifact = prepared
    base, _ = protocol.load_base(smoke, artifact)
    evaluator = evaluation.Evaluator(smoke, base, None, RunContext(seeds=seeds))
    chance = 1.0 / smoke.data.n_values
    at_chance = (torch.rand(4000, generator=torch.Generator().manual_seed(0)) < chance).float()
    evaluator._check_leak(at_chance, "persistent")  # honest: no error
    leaking = (torch.rand(4000, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with pytest.raises(evaluation.LeakError, match="another episode's saved state"):
        evaluator._check_leak(leaking, "persistent")


def test_a_smoke_sweep_runs_every_updater_and_repeats_bit_for_bit(sweep, tmp_path):
    first, records = sweep(["facts/sliding-window"], UPDATERS, results=tmp_path / "a")
    _, repeat = sweep(["facts/sliding-window"], UPDATERS, results=tmp_path / "b")
    assert first.failed == 0 and first.ok == len(UPDATERS) * 2
    results = {(r.gate.id, r.seed_index): r.deterministic_results() for r in records}
    assert results == {(r.gate.id, r.seed_index): r.deterministic_results() for r in repeat}
    for r in records:
        assert set(r.metrics) == {"acc_in_context", "acc_persistent", "acc_capacity_max"}
        assert r.provenance.artifact  # the record names the frozen base it ran on
        assert r.diagnostics["base_in_context_accuracy"] >= 0
        if r.gate.id == "routed-updater":  # when does the router's updater slot write?
            assert {"write_strength_support", "write_strength_gap"} <= set(r.diagnostics)
    page = render_site(aggregate(records), records, tmp_path / "site").out
    html = (page / "tasks" / "facts__sliding-window.html").read_text()
    for curve in ("acc_capacity", "acc_by_distance"):  # both curves, with chance drawn
        plot = html.split(f"{curve} on facts/sliding-window")[1].split("</svg>")[0]
        assert '<g class="level"><title>chance: 0.018</title>' in plot


def test_overwrite_and_multi_query_tasks_run(sweep):
    summary, records = sweep(["facts/overwrite", "facts/multi-query"], ["no-updater", "delta-rule"])
    assert summary.failed == 0 and summary.ok == 8
    by_task = {r.task.id: set(r.metrics) for r in records}
    assert by_task["facts/overwrite"] == {"acc_in_context", "acc_overwritten", "acc_persistent"}
    assert by_task["facts/multi-query"] == {"acc_in_context", "acc_persistent", "acc_capacity_max"}


def test_the_leak_control_swaps_episodes_whatever_the_state_layout():
    batch_first = torch.arange(4.0)[:, None].expand(4, 3)
    assert evaluation.another_episode(batch_first, 4)[:, 0].tolist() == [3.0, 0.0, 1.0, 2.0]
    layers_first = torch.arange(4.0)[None, :, None].expand(1, 4, 3)  # (layers, B, H)
    assert evaluation.another_episode(layers_first, 4)[0, :, 0].tolist() == [3.0, 0.0, 1.0, 2.0]
    shared = torch.ones(7)  # no batch axis: not an episode's, left as it is
    assert torch.equal(evaluation.another_episode(shared, 4), shared)


@pytest.mark.slow
def test_the_frozen_base_can_hold_the_facts_in_rank_r_factors(tasks):
    """The task is reachable: per-episode LoRA factors optimised directly (no updater) make the
    frozen base answer its queries from the factors alone. (A clamp of 4 capped this at ~30%.)"""
    spec = tasks["facts/sliding-window"].for_profile("default")
    artifact = get_family("facts").prepare(spec, RunSeeds(spec.master_seed, spec.id, 0))
    base, _ = protocol.load_base(spec, artifact)
    ep = draw_episodes(vocab_of(spec), 16, spec.data.n_facts, 0, spec.data.n_queries, seed=11)
    with torch.no_grad():
        x, u = base.trunk(ep.queries)
    B, T = ep.queries.shape
    g = torch.Generator().manual_seed(0)
    shapes = [s for pair in adapted_shapes(reading.task_info(spec)) for s in pair]
    factors = [torch.randn(B, *s, generator=g) * 0.1 * (i % 2 == 0) for i, s in enumerate(shapes)]
    factors = [f.requires_grad_() for f in factors]
    opt = torch.optim.Adam(factors, lr=1e-2)
    labels = scored_labels(ep.labels)
    at = scored_positions(ep.labels)[..., None]
    for _ in range(300):
        per_position = tuple(f[:, None].expand(B, T, *f.shape[1:]) for f in factors)
        logits = base.finish(x, u, per_position).gather(1, at.expand(-1, -1, vocab_of(spec).size))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert answer_accuracy(logits.detach(), labels, vocab_of(spec)).mean() > 0.9

"""Seeds trained together in one vectorised pass (suite.tasks.seed_stack): the same numbers as
seeds run alone, bit for bit; close to the plain per-gate loop; fallbacks and lone failures."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from suite.contract import GateOutput, RouterGate, State, TaskInfo
from suite.gates.audit import AuditedGate
from suite.gates.entries import all_gates
from suite.gates.kinds import kinds
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.family import NonFiniteError, RunContext, get_family
from suite.tasks.loading import load_all_tasks, select_tasks

SEEDS = 3


@pytest.fixture(autouse=True)
def vmap_on_cpu(monkeypatch):
    """The vmapped pass is the GPU's; these tests check it on CPU."""
    monkeypatch.setattr("suite.tasks.seed_stack.VECTORISE_ON_CPU", True)


FALLS_BACK = {"gru", "lstm"}  # torch has no vmap batching rule for its fused RNN kernels


def smoke(task_id: str):
    return select_tasks(load_all_tasks(), [task_id])[0].for_profile("smoke")


def contexts(spec, indices) -> list[RunContext]:
    return [RunContext(seeds=RunSeeds(spec.master_seed, spec.id, i)) for i in indices]


def build(spec, make, indices, audit: int | None = None) -> list:
    family = get_family(spec.family)
    info = family.task_info(spec)
    gates = []
    for ctx in contexts(spec, indices):
        with seeded_global_rng(ctx.seeds.init):
            gate = make(info)
        gates.append(gate if audit is None else AuditedGate(gate, kinds.get("router"), audit))
    return gates


def run(spec, make, indices, vectorise=True, audit=None):
    family = get_family(spec.family)
    gates = build(spec, make, indices, audit)
    return family.run_seeds(spec, gates, contexts(spec, indices), vectorise=vectorise)


def transition_routers(spec) -> list:
    info = get_family(spec.family).task_info(spec)
    return [
        g
        for g in all_gates()
        if g.origin == "baseline" and g.kind == "router" and g.supports(info)[0]
    ]


TASKS = ("transition/anticipation", "transition/domain-switch")


@pytest.mark.parametrize("task_id", TASKS)
def test_a_seed_batched_with_others_equals_the_seed_alone_bit_for_bit(task_id):
    spec = smoke(task_id)
    for entry in transition_routers(spec):
        together = run(spec, entry.build, range(SEEDS))
        assert not any(isinstance(r, BaseException) for r in together), entry.id
        for i in range(SEEDS):
            alone = run(spec, entry.build, [i])[0]
            assert together[i].metrics == alone.metrics, (entry.id, i)
            assert together[i].data_fingerprint == alone.data_fingerprint
            for name, array in alone.arrays.items():
                assert (together[i].arrays[name].as_array() == array.as_array()).all()


@pytest.mark.parametrize("task_id", TASKS)
def test_the_vectorised_path_matches_the_plain_per_gate_loop(task_id):
    """vmap's batched kernels round differently from the gate's own; after a smoke run's
    training the metrics agree to 1e-6 (the accuracies exactly, here)."""
    spec = smoke(task_id)
    for entry in transition_routers(spec):
        batched = run(spec, entry.build, range(SEEDS))
        looped = run(spec, entry.build, range(SEEDS), vectorise=False)
        for b, lo in zip(batched, looped, strict=True):
            assert b.metrics.keys() == lo.metrics.keys()
            for name, value in b.metrics.items():
                assert math.isclose(value, lo.metrics[name], rel_tol=1e-6, abs_tol=1e-6), (
                    entry.id,
                    name,
                    value,
                    lo.metrics[name],
                )
            if entry.id in FALLS_BACK:
                assert b.notes and "vmap cannot run it" in b.notes[0], (entry.id, b.notes)
            else:
                assert not b.notes, (entry.id, b.notes)


def test_the_batched_path_is_bit_identical_from_run_to_run():
    spec = smoke("transition/anticipation")
    entry = next(g for g in transition_routers(spec) if g.id == "beta+ant")
    first = run(spec, entry.build, range(SEEDS))
    again = run(spec, entry.build, range(SEEDS))
    assert [r.metrics for r in first] == [r.metrics for r in again]


class Branchy(RouterGate):
    """Python control flow on tensor values: vmap cannot run it."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        logits = self.W(x)
        if logits.sum() > 0:
            logits = logits * 1.0
        return GateOutput(logits)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self.W(x_t))


class Cached(RouterGate):
    """Keeps a Python reference to a transformed weight: functional_call cannot swap it."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Parameter(torch.randn(info.d_model, info.n_experts))
        self.frozen_copy = self.W.detach().clone() * 2

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(x @ self.W + x @ self.frozen_copy)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        return GateOutput(x_t @ self.W + x_t @ self.frozen_copy)


@pytest.mark.parametrize(
    "gate_cls, why", [(Branchy, "vmap cannot run it"), (Cached, "differ from its own")]
)
def test_a_gate_that_cannot_be_vectorised_falls_back_and_says_so(gate_cls, why):
    spec = smoke("transition/anticipation")
    batched = run(spec, gate_cls, range(2))
    looped = run(spec, gate_cls, range(2), vectorise=False)
    for b, lo in zip(batched, looped, strict=True):
        assert len(b.notes) == 1 and why in b.notes[0], b.notes
        assert b.metrics == lo.metrics  # the fallback is the plain loop


class Fragile(RouterGate):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self.W(x))

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        return GateOutput(self.W(x_t))


@pytest.mark.parametrize("vectorise", [True, False])
def test_a_diverging_seed_fails_alone(vectorise):
    spec = smoke("transition/anticipation")
    gates = build(spec, Fragile, range(3))
    with torch.no_grad():
        gates[1].W.bias.fill_(float("nan"))
    family = get_family(spec.family)
    results = family.run_seeds(spec, gates, contexts(spec, range(3)), vectorise=vectorise)
    assert isinstance(results[1], (NonFiniteError, ValueError)), results[1]
    for i in (0, 2):
        alone = run(spec, Fragile, [i], vectorise=vectorise)[0]
        assert results[i].metrics == alone.metrics


def test_audits_run_on_each_seed_of_a_vectorised_stack():
    spec = smoke("transition/anticipation")
    entry = next(g for g in transition_routers(spec) if g.id == "beta+ant")
    gates = build(spec, entry.build, range(2), audit=12345)
    family = get_family(spec.family)
    results = family.run_seeds(spec, gates, contexts(spec, range(2)))
    plain = run(spec, entry.build, range(2))
    for gate, r, p in zip(gates, results, plain, strict=True):
        assert gate.done, "no audited call happened"
        assert r.metrics == p.metrics  # audits never change an honest gate's numbers


def test_a_sweep_gives_the_same_records_with_and_without_seed_batching(sweep, tmp_path):
    gates = ["affinity", "beta+ant", "gru", "test-nan"]
    task = ["transition/anticipation"]
    batched, together = sweep(task, gates, results=tmp_path / "b", seeds=3)
    single, alone = sweep(task, gates, results=tmp_path / "s", seeds=3, batch_seeds=False)
    assert batched.ok == single.ok and batched.failed == single.failed
    key = {(r.gate.id, r.seed_index): r for r in alone}
    # on a CPU a seed's routers share a job (one draw of the stream), else a gate's seeds; the
    # planner may leave a run alone at the end of the queue to balance the workers
    shared = ("trained in one job with seeds [", "(one data pass)")
    together_ok = [r for r in together if r.ok and r.gate.origin == "baseline"]
    assert sum(any(s in n for s in shared for n in r.notes) for r in together_ok) >= 6
    for record in together:
        other = key[(record.gate.id, record.seed_index)]
        assert record.status == other.status, record.gate.id
        assert record.metrics == other.metrics, record.gate.id
        assert record.provenance.data_fingerprint == other.provenance.data_fingerprint
        assert not any(s in n for s in shared for n in other.notes)


LM_TASKS = ("lm/char-switch", "lm/real-languages")


@pytest.mark.parametrize("task_id", LM_TASKS)
def test_the_lm_family_batches_seeds_bit_for_bit_and_matches_the_loop(task_id, monkeypatch):
    """Seeds are vectorised on a GPU only; the vmapped path is checked here on CPU."""
    monkeypatch.setattr("suite.tasks.seed_stack.VECTORISE_ON_CPU", True)
    spec = smoke(task_id)
    routers = {g.id: g for g in transition_routers(spec)}
    for gate_id in ("affinity", "beta+ant", "topk-lb", "hash", "dynmole"):
        entry = routers[gate_id]
        together = run(spec, entry.build, range(SEEDS))
        looped = run(spec, entry.build, range(SEEDS), vectorise=False)
        for i in range(SEEDS):
            assert not together[i].notes, (gate_id, together[i].notes)
            alone = run(spec, entry.build, [i])[0]
            assert together[i].metrics == alone.metrics, (gate_id, i)
            for name, value in together[i].metrics.items():
                other = looped[i].metrics[name]
                assert math.isclose(value, other, rel_tol=1e-5, abs_tol=1e-6), (gate_id, name)


def test_jobs_group_a_pairs_seeds_split_to_keep_workers_busy_longest_first(tasks, tmp_path):
    from suite.gates.entries import get_gate
    from suite.runs.executors import Job
    from suite.runs.plan import make_plan
    from suite.runs.seed_jobs import makespan, plan_jobs

    chosen = [tasks["transition/anticipation"], tasks["lm/char-switch"]]
    plan = make_plan(chosen, [get_gate("affinity")], "default", tmp_path, seeds=5)
    members = [(run, None) for run in plan.runs]

    def one(run, member):
        return Job("run", {}, 1, None, f"{run.pair.spec.id} {run.seed_index}", [member])

    def together(runs, group):
        label = f"{runs[0].pair.spec.id} {[r.seed_index for r in runs]}"
        return Job("run-seeds", {}, 1, None, label, group)

    from suite.runs.seed_jobs import estimated_cost

    longest = max(chosen, key=lambda t: estimated_cost(t.for_profile("default"))).id
    jobs = plan_jobs(members, True, one, together, workers=1)
    assert [len(j.tag) for j in jobs] == [5, 5]
    assert jobs[0].label.startswith(longest)
    jobs = plan_jobs(members, True, one, together, workers=2)
    # split while the workers would finish sooner by the estimated costs, the longest first
    costs = [sum(estimated_cost(r.pair.spec) for r, _ in j.tag) for j in jobs]
    assert costs == sorted(costs, reverse=True) and len(jobs) > 2
    assert jobs[0].label.startswith(longest) and not jobs[-1].label.startswith(longest)
    assert max(len(j.tag) for j in jobs) > 1  # the shorter task's seeds still share a job
    longest_run = max(estimated_cost(t.for_profile("default")) for t in chosen)
    assert makespan(costs, 2) <= sum(costs) / 2 + longest_run  # within one run of the ideal
    assert sorted(r.seed_index for j in jobs for r, _ in j.tag) == sorted([*range(5)] * 2)
    assert len(plan_jobs(members, False, one, together, workers=2)) == 10


@pytest.mark.slow
def test_every_lm_router_batches_seeds_bit_for_bit(monkeypatch):
    """The GPU path of the lm family for every registered router (slow: all of them)."""
    monkeypatch.setattr("suite.tasks.seed_stack.VECTORISE_ON_CPU", True)
    spec = smoke("lm/char-switch")
    for entry in transition_routers(spec):
        together = run(spec, entry.build, range(2))
        for i in range(2):
            alone = run(spec, entry.build, [i])[0]
            if isinstance(alone, BaseException):
                assert isinstance(together[i], type(alone)), entry.id
                continue
            assert together[i].metrics == alone.metrics, entry.id

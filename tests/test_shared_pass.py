"""Gates that share one data pass: a (task, seed)'s updaters trained in one job over one read of
the frozen trunk give each gate exactly its own run's numbers, a failing gate fails alone, and
the sweep plans such jobs only where the family shares its data."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import Tensor

from suite.bench.sweeps import TABLE5_GATES
from suite.contract import State, UpdaterOutput
from suite.gates.entries import get_gate
from suite.runs.executors import Job
from suite.runs.plan import make_plan
from suite.runs.seed_jobs import makespan, plan_jobs
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.facts import protocol, reading
from suite.tasks.family import RunContext, get_family

GATES = ["delta-rule", "lerp", "routed-updater", "no-updater"]


@pytest.fixture(scope="module")
def smoke(tasks):
    return tasks["facts/overwrite"].for_profile("smoke")


@pytest.fixture(scope="module")
def prepared(smoke):
    seeds = RunSeeds(smoke.master_seed, smoke.id, 1)
    return seeds, get_family("facts").prepare(smoke, seeds)


class BreaksMidway(torch.nn.Module):
    """An updater that works for a few training steps, then raises (and edits its input in
    place before that, which must not reach the other gates of its job)."""

    def __init__(self, info) -> None:
        super().__init__()
        self.inner = get_gate("delta-rule").build(info)
        self.calls = 0

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        self.calls += 1
        x.mul_(0.0)  # vandalises the input it was handed
        if self.calls > 3:
            raise RuntimeError("broke on purpose")
        return self.inner(x, state)

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        return self.inner.step(x_t, state)

    def initial_state(self, batch: int) -> State:
        return self.inner.initial_state(batch)

    def diagnostics(self) -> dict[str, Tensor]:
        return {}


def _build(spec, seeds, gate_id: str):
    info = reading.task_info(spec)
    with seeded_global_rng(seeds.init):
        return BreaksMidway(info) if gate_id == "breaks" else get_gate(gate_id).build(info)


def _ctx(seeds, artifact) -> RunContext:
    return RunContext(seeds=seeds, deadline=time.monotonic() + 600, artifact=artifact)


def _same(a, b) -> bool:
    arrays = all(
        np.array_equal(a.arrays[k].as_array(), b.arrays[k].as_array(), equal_nan=True)
        for k in a.arrays
    )
    return a.metrics == b.metrics and set(a.arrays) == set(b.arrays) and arrays


def test_gates_trained_over_one_data_pass_equal_their_own_runs_bit_for_bit(smoke, prepared):
    seeds, artifact = prepared
    alone = {g: protocol.run(smoke, _build(smoke, seeds, g), _ctx(seeds, artifact)) for g in GATES}
    ids = [GATES[0], "breaks", *GATES[1:]]
    gates = [_build(smoke, seeds, g) for g in ids]
    together = protocol.run_gates(smoke, gates, [_ctx(seeds, artifact) for _ in ids])
    assert isinstance(together[1], RuntimeError) and "broke on purpose" in str(together[1])
    for gate_id, output in zip(ids, together, strict=True):
        if gate_id != "breaks":
            assert _same(output, alone[gate_id]), gate_id
            assert output.data_fingerprint == alone[gate_id].data_fingerprint


def test_one_job_holds_one_seed_of_one_base(smoke, prepared):
    seeds, artifact = prepared
    other = RunSeeds(smoke.master_seed, smoke.id, 0)
    gates = [_build(smoke, seeds, "no-updater"), _build(smoke, other, "no-updater")]
    with pytest.raises(ValueError, match="share its seed"):
        protocol.run_gates(smoke, gates, [_ctx(seeds, artifact), _ctx(other, artifact)])


def test_the_shared_trunk_reads_each_batch_once(smoke, prepared):
    _, artifact = prepared
    base, _ = protocol.load_base(smoke, artifact)
    calls = []
    original = base.trunk

    def counting(tokens):
        calls.append(tokens.shape)
        return original(tokens)

    base.trunk = counting
    trunk = reading.SharedTrunk(base)
    tokens = torch.randint(0, 10, (3, 9))
    first = trunk(tokens)
    again = trunk(tokens.clone())
    trunk(tokens[:, :5])
    assert len(calls) == 2 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_a_sweep_gives_the_same_records_with_a_job_per_seed_or_per_run(sweep, tmp_path):
    gates = ["no-updater", "delta-rule", "lerp-scan"]
    task = ["facts/sliding-window"]
    shared, together = sweep(task, gates, results=tmp_path / "a", workers=1)
    single, alone = sweep(task, gates, results=tmp_path / "b", batch_seeds=False)
    assert shared.ok == single.ok == len(gates) * 2 and shared.failed == 0
    key = {(r.gate.id, r.seed_index): r for r in alone}
    for record in together:
        other = key[(record.gate.id, record.seed_index)]
        assert record.deterministic_results() == other.deterministic_results(), record.gate.id
        assert any("one data pass" in n for n in record.notes), record.notes
        assert not any("one data pass" in n for n in other.notes)


def test_jobs_group_a_seeds_gates_where_the_family_shares_its_data(tasks, tmp_path):
    """facts always; transition on a CPU, while on a GPU its seeds are vectorised per gate."""

    chosen = [tasks["facts/sliding-window"], tasks["transition/anticipation"]]
    gates = [get_gate(g) for g in ("delta-rule", "lerp", "affinity", "beta")]
    plan = make_plan(chosen, gates, "default", tmp_path, seeds=2)
    members = [(run, None) for run in plan.runs]

    def one(run, member):
        return Job("run", {}, 1, None, run.label, [member])

    def build(kind):
        return lambda runs, group: Job(kind, {}, 1, None, "", group)

    def shapes(device):
        jobs = plan_jobs(
            members, True, one, build("run-seeds"), 1, across=build("run-gates"), device=device
        )
        found = {
            (j.kind, tuple(sorted((r.pair.gate.id, r.seed_index) for r, _ in j.tag))) for j in jobs
        }
        assert sorted(r.key for j in jobs for r, _ in j.tag) == sorted(r.key for r in plan.runs)
        return found

    facts = {
        ("run-gates", (("delta-rule", 0), ("lerp", 0))),
        ("run-gates", (("delta-rule", 1), ("lerp", 1))),
    }
    assert shapes("cpu") == facts | {
        ("run-gates", (("affinity", 0), ("beta", 0))),
        ("run-gates", (("affinity", 1), ("beta", 1))),
    }
    assert shapes("cuda") == facts | {
        ("run-seeds", (("affinity", 0), ("affinity", 1))),
        ("run-seeds", (("beta", 0), ("beta", 1))),
    }
    without = plan_jobs(members, True, one, build("run-seeds"), 1)
    assert {j.kind for j in without} == {"run-seeds"}


def test_a_large_group_is_split_so_workers_finish_together(tasks, tmp_path):
    """Table 5's shape: one task's 9 gates on 5 seeds, 2 workers: 5 equal jobs would leave one
    worker idle for the last; splitting one of them lets both finish together."""
    gates = [get_gate(g) for g in TABLE5_GATES]
    plan = make_plan([tasks["transition/anticipation"]], gates, "paper", tmp_path, seeds=5)
    members = [(run, None) for run in plan.runs]

    def one(run, member):
        return Job("run", {}, 1, None, run.label, [member])

    def group(runs, members):
        return Job("run-gates", {}, 1, None, "", members)

    jobs = plan_jobs(members, True, one, group, 2, across=group)
    sizes = [len(j.tag) for j in jobs]
    assert makespan(sizes, 2) <= 23 < makespan([9] * 5, 2) == 27  # 22.5 is the ideal
    assert sum(sizes) == 45 and all(len({r.seed_index for r, _ in j.tag}) == 1 for j in jobs)


def test_makespan_gives_each_job_to_the_first_free_worker_largest_first():
    assert makespan([3, 5, 3, 4, 3], 2) == 10  # 5+3 | 4+3+3: greedy, not the optimum 9
    assert makespan([3, 5, 3, 4, 3], 1) == 18
    assert makespan([2.0], 4) == 2.0


def test_groups_are_cut_while_the_workers_finish_sooner_and_a_cut_pays_its_overhead():
    from suite.runs.seed_jobs import balance

    groups = [("gates", [1, 1, 1, 1]) for _ in range(5)]  # one seed's 4 gates, 5 seeds

    def costing(overhead):
        return lambda members: float(sum(members)) + overhead

    queue = balance(groups, 2, costing(0.0))
    sizes = [sum(m) for _, m in queue]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 20
    assert sizes[:4] == [4, 4, 4, 4]  # the front keeps its shared passes
    assert makespan(sizes, 2) == 10 < makespan([4] * 5, 2) == 12  # 10 is the ideal
    for overhead in (1.0, 3.0, 10.0):  # a second shared pass costing 1, 3, 10 runs
        dear = balance(groups, 2, costing(overhead))
        costs = [sum(m) + overhead for _, m in dear]
        assert makespan(costs, 2) <= makespan([4 + overhead] * 5, 2)
        assert len(dear) <= len(queue) and sum(len(m) for _, m in dear) == 20
    assert balance(groups, 1, costing(0.0)) == groups  # one worker: nothing to balance
    lone = balance([("seeds", [1, 1, 1, 1])], 2, costing(10.0))
    assert len(lone) == 4  # fewer than two jobs per worker: cut whatever it costs
    assert balance(groups[:4], 2, costing(1.0)) == groups[:4]  # balanced already: left whole


def test_a_group_is_cut_where_its_halves_cost_the_same_not_at_its_middle():
    from suite.runs.seed_jobs import halves

    assert halves(("gates", [1, 1, 1, 1]), lambda m: float(sum(m)) + 3) == [
        ("gates", [1, 1]),
        ("gates", [1, 1]),
    ]  # each half pays the job's overhead once
    assert halves(("gates", [1, 1, 4]), lambda m: float(sum(m))) == [
        ("gates", [1, 1]),
        ("gates", [4]),
    ]
    assert halves(("seeds", [2, 2, 2]), lambda m: float(sum(m))) == [
        ("seeds", [2, 2]),
        ("seeds", [2]),
    ]  # a tie: the first half is the larger


def test_gates_are_weighed_by_their_conformance_training_relative_to_their_task():
    from types import SimpleNamespace

    from suite.runs.seed_jobs import relative_weights

    def member(task, gate, seconds):
        run = SimpleNamespace(
            pair=SimpleNamespace(spec=SimpleNamespace(id=task), gate=SimpleNamespace(id=gate))
        )
        return run, SimpleNamespace(seconds=seconds)

    members = [
        member("a", "cheap", 1.0),
        member("a", "middle", 2.0),
        member("a", "dear", 6.0),
        member("a", "slowest", 100.0),
        member("b", "other", 50.0),
        member("b", "unknown", None),
    ]
    weight = relative_weights(members)
    assert [weight(m) for m in members] == [0.25, 0.5, 1.5, 4.0, 1.0, 1.0]  # median 4 in "a"


def test_the_conformance_report_times_the_gate_s_training(tasks):
    from suite.gates.conformance import run_conformance

    spec = tasks["transition/anticipation"]
    gate = get_gate("beta")
    info = get_family(spec.family).info_for(spec.for_profile("smoke"), gate)
    report = run_conformance(gate, info, None, 0)
    assert report.passed and report.seconds is not None and 0 < report.seconds < 10


def test_estimated_costs_are_milliseconds_comparable_across_families(tasks):
    """The planner's estimates share one unit, so jobs of different families are ordered (and
    the remaining time told) by what they cost: a step of the facts family (the frozen base and
    an updater) is dearer than one of a transition router; the lm family's grows with the
    experts a token runs; a longer sequence costs more."""
    from suite.runs.seed_jobs import estimated_cost

    spec = {name: t.for_profile("default") for name, t in tasks.items()}
    per_step = {
        name: estimated_cost(spec[name]) / spec[name].train.epochs
        for name in ("transition/anticipation", "transition/precision-static")
    }
    facts_step = (
        estimated_cost(spec["facts/sliding-window"]) / spec["facts/sliding-window"].train.steps
    )
    assert facts_step > 2 * max(per_step.values())
    assert estimated_cost(spec["facts/templated"]) > estimated_cost(spec["facts/sliding-window"])
    lm = spec["lm/char-switch"]
    wider = lm.model_copy(update={"model": lm.model.model_copy(update={"n_experts": 4})})
    assert estimated_cost(wider) == pytest.approx(2 * estimated_cost(lm))
    sparse = wider.model_copy(
        update={"model": wider.model.model_copy(update={"dispatch": "top-k", "top_k": 1})}
    )
    assert estimated_cost(sparse) == pytest.approx(estimated_cost(lm) / 2)

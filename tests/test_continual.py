"""The continual-learning family: its sequences hold their invariants, the base stays frozen, the
routing matrices are right on gates whose routing cannot move, the joint ceiling is never ranked,
a smoke sweep repeats bit for bit, and a submitted router runs on a sequence end to end."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import Tensor

from suite.contract import GateOutput, RouterGate, Side, State, TaskInfo
from suite.gates.entries import get_gate
from suite.gates.scaffold import new_submission
from suite.results.aggregate import aggregate
from suite.runs.records import iter_records
from suite.runs.setup import SweepOptions
from suite.runs.submit import load_submissions
from suite.runs.sweep import Sweep
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.continual import protocol
from suite.tasks.families.continual.data import draw_sequence
from suite.tasks.families.continual.regimes import EWC
from suite.tasks.family import RunContext, get_family
from suite.website.site import render_site

KV = "continual/kv-maps"


@pytest.fixture(scope="module")
def smoke(tasks):
    return tasks[KV].for_profile("smoke")


@pytest.fixture(scope="module")
def prepared(smoke):
    seeds = RunSeeds(smoke.master_seed, smoke.id, 0)
    return seeds, get_family("continual").prepare(smoke, seeds)


def _run(spec, gate_id: str, prepared) -> object:
    seeds, artifact = prepared
    with seeded_global_rng(seeds.init):
        gate = get_gate(gate_id).build(protocol.task_info(spec))
    return protocol.run(spec, gate, RunContext(seeds=seeds, artifact=artifact))


def test_key_value_sequences_hold_their_invariants(tasks):
    data = {k: tasks[f"continual/kv-maps{k}"].data for k in ("", "-conflicting", "-disjoint")}
    disjoint = draw_sequence(data["-disjoint"], seed=3)
    flat = disjoint.keys.flatten().tolist()
    assert len(set(flat)) == len(flat)  # no key in two tasks
    shared = draw_sequence(data["-conflicting"], seed=3)
    assert (shared.keys == shared.keys[0]).all()  # every task re-assigns the same keys
    assert (shared.values != shared.values[0]).any()
    batch = shared.sample(2, 16, seed=5)
    lookup = dict(zip(shared.keys[2].tolist(), shared.values[2].tolist(), strict=True))
    pairs = zip(batch.inputs.flatten().tolist(), batch.labels.flatten().tolist(), strict=True)
    assert all(lookup[k] == v for k, v in pairs)
    again = shared.sample(2, 16, seed=5)
    assert torch.equal(again.inputs, batch.inputs)


def test_language_and_permuted_sequences_hold_their_invariants(tasks):
    langs = draw_sequence(tasks["continual/languages"].data, seed=1)
    batch = langs.sample(1, 8, seed=2)
    alphabet = set(langs.alphabets[1].tolist())
    assert set(batch.inputs.flatten().tolist()) <= alphabet
    assert torch.equal(batch.inputs[:, 1:], batch.labels[:, :-1])  # labels: the next symbol
    assert 0 < langs.bayes_accuracy(1, batch) <= 1
    perm = draw_sequence(tasks["continual/permuted"].data, seed=1)
    first, second = perm.sample(0, 4, seed=9), perm.sample(1, 4, seed=9)
    assert torch.equal(first.labels, second.labels)  # the same examples ...
    unpermute = [p.argsort() for p in perm.perms[:2]]
    assert torch.equal(first.inputs[..., unpermute[0]], second.inputs[..., unpermute[1]])
    assert not torch.equal(first.inputs, second.inputs)  # ... with features permuted per task


def test_the_held_out_order_is_a_recorded_shuffle_of_the_same_tasks(tasks):
    public = tasks["continual/kv-maps"].data
    held = tasks["continual/kv-maps-heldout"].data
    order = draw_sequence(held, seed=4).order
    assert sorted(order) == list(range(public.n_tasks)) and order != sorted(order)
    plain, shuffled = draw_sequence(public, seed=4), draw_sequence(held, seed=4)
    for stage, canonical in enumerate(order):
        assert torch.equal(
            shuffled.sample(stage, 4, 7).labels, plain.sample(canonical, 4, 7).labels
        )


def test_the_base_stays_frozen_through_a_sequence(smoke, prepared, monkeypatch):
    _, artifact = prepared
    before = {k: v.clone() for k, v in artifact.items()}
    used = []
    original = protocol.load_base

    def spy(spec, sequence, art):
        base, accuracy = original(spec, sequence, art)
        used.append(base)
        return base, accuracy

    monkeypatch.setattr(protocol, "load_base", spy)
    out = _run(smoke, "moe-lora", prepared)
    after = used[0].state_dict()
    for name, tensor in before.items():
        assert torch.equal(artifact[name], tensor)
        if name in after:
            assert torch.equal(after[name], tensor), name
    R = np.asarray(out.arrays["accuracy_matrix"].values)
    assert R.shape == (smoke.data.n_tasks + 1, smoke.data.n_tasks)


def test_a_router_that_cannot_move_is_perfectly_stable(smoke, prepared):
    for gate_id in ("frozen-router", "seq-lora"):
        out = _run(smoke, gate_id, prepared)
        stability = np.asarray(out.arrays["stability_matrix"].values)
        lower = stability[np.tril_indices_from(stability)]
        assert (lower == 1.0).all(), gate_id
        assert out.metrics["routing_stability"] == 1.0
        assert out.metrics["load_drift"] == 0.0
    # seq-lora trains one sub-expert: A and B of rank r, nothing else moves
    m = smoke.model
    assert out.metrics["params_per_task"] == 2 * m.d_model * m.rank


def test_a_moving_router_is_not_stable(smoke, prepared):
    out = _run(smoke.model_copy(update={"train": smoke.train.model_copy(update={"steps": 40})}),
               "moe-lora", prepared)  # fmt: skip
    assert out.metrics["routing_stability"] < 1.0


class TaskReader(RouterGate):
    """Routes on the task index the family reveals (task-aware variants only)."""

    seen: ClassVar[list[int]] = []

    def forward(self, x: Tensor, state: State = None, side: Side | None = None) -> GateOutput:
        assert side is not None and side.task_id is not None
        TaskReader.seen.extend(side.task_id.tolist())
        logits = torch.nn.functional.one_hot(side.task_id, self.info.n_experts).float() * 10
        return GateOutput(logits[:, None, :].expand(-1, x.shape[1], -1))


def test_task_aware_sequences_give_the_task_to_gates_that_take_it(tasks):
    spec = tasks["continual/kv-maps-conflicting-task-aware"].for_profile("smoke")
    info = protocol.task_info(spec)
    assert info.inputs == ("x", "task_id")
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    artifact = get_family("continual").prepare(spec, seeds)
    TaskReader.seen.clear()
    out = protocol.run(spec, TaskReader(info), RunContext(seeds=seeds, artifact=artifact))
    assert set(TaskReader.seen) == set(range(spec.data.n_tasks))
    assert out.metrics["routing_stability"] == 1.0  # one expert per task, never moved


def test_the_ewc_penalty_pulls_towards_the_anchor():
    param = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    ewc = EWC(get_gate("ewc").build(TaskInfo(d_model=4, n_experts=2, seq_len=2,
                                             extras={"n_tasks": 2, "top_k": 1})))  # fmt: skip
    assert ewc.penalty() is None
    ewc.consolidate([param], lambda: iter([[torch.tensor([1.0, 0.0])], [torch.tensor([3.0, 0.0])]]))
    assert ewc.fisher[0].tolist() == [5.0, 0.0]  # mean of the squared gradients
    assert ewc.penalty().item() == 0.0
    with torch.no_grad():
        param += 1.0
    assert ewc.penalty().item() == pytest.approx(0.5 * ewc.strength * 5.0)  # only where F > 0


def test_a_smoke_sweep_repeats_bit_for_bit_and_never_ranks_the_joint_ceiling(sweep, tmp_path):
    gates = ["moe-lora", "seq-lora", "moses", "grip-router", "ewc", "joint"]
    first, records = sweep([KV], gates, results=tmp_path / "a")
    _, repeat = sweep([KV], gates, results=tmp_path / "b")
    assert first.failed == 0 and first.ok == len(gates) * 2
    results = {(r.gate.id, r.seed_index): r.deterministic_results() for r in records}
    assert results == {(r.gate.id, r.seed_index): r.deterministic_results() for r in repeat}
    for r in records:
        assert r.provenance.artifact and r.arrays["accuracy_matrix"]
        if r.gate.id == "joint":
            assert set(r.metrics) == {"acc", "params_per_task"} and r.notes
        else:
            assert {"bwt", "fwt", "forgetting_max", "routing_stability"} <= set(r.metrics)
    agg = aggregate(records)
    result = agg.tasks[0]
    assert result.gates["joint"].status == "ceiling" and not result.gates["joint"].ranked
    assert all(result.gates[g].ranked for g in gates if g != "joint")
    verdicts = {(c.subject, c.claim.metric): c.verdict for c in result.claims}
    assert verdicts[("moses − seq-lora", "acc")] == "not-comparable"  # smoke is not the paper's
    page = render_site(agg, records, tmp_path / "site").out
    html = (page / "tasks" / "continual__kv-maps.html").read_text()
    assert "accuracy_matrix" in html and "stability_matrix" in html


def test_a_submitted_router_runs_on_a_sequence(tmp_path, tasks):
    folder = new_submission("my-continual-router", tmp_path / "subs")
    manifest = folder / "submission.yaml"
    manifest.write_text(
        manifest.read_text().replace("families: [transition]", "families: [continual]")
    )
    options = SweepOptions(profile="smoke", results=tmp_path / "results", workers=1, seeds=1)
    chosen = [tasks[KV]]
    loaded = load_submissions([folder], chosen, options)
    assert not loaded.errors, loaded.errors
    summary = Sweep(options, log=lambda m: None).run(chosen, loaded.entries)
    assert summary.ok == 1, summary
    (record,) = [r for r in iter_records(options.results)]
    assert record.ok and record.gate.origin == "submission" and record.audits
    assert record.provenance.artifact and "bwt" in record.metrics


def test_the_json_report_carries_the_matrices(sweep, tmp_path, smoke):
    from suite.results.rows import array_rows

    _, records = sweep([KV], ["moe-lora"], results=tmp_path / "r")
    rows = {r["metric"]: r for r in array_rows(aggregate(records))}
    R = rows["accuracy_matrix"]
    assert R["kind"] == "matrix" and R["axes"] == ["after", "task"]
    assert len(R["mean"]) == len(R["coords"]["after"]) == smoke.data.n_tasks + 1  # + the start
    stability = rows["stability_matrix"]["mean"]
    assert stability[0][1] is None and stability[1][0] is not None  # undefined above the diagonal

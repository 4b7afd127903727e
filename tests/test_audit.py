"""Audits on the real run: gates that pass the fixed-shape conformance checks but cheat on the real
batches are rejected with the call, the check and the size; honest gates keep their numbers."""

from __future__ import annotations

import pytest

from suite.gates.audit import WINDOWS, audit_calls
from suite.gates.conformance import run_conformance
from suite.gates.entries import get_gate
from suite.results.aggregate import aggregate
from suite.seeding import RunSeeds
from suite.tasks.family import get_family

ANT = "transition/anticipation"
CHEATS = {
    "test-peeks-when-large": "causality violated",
    "test-pools-when-large": "batch isolation violated",
    "test-remembers-calls": "hidden state across calls violated",
    "test-honest-when-copied": "hidden state across calls violated",
}


@pytest.mark.parametrize("gate_id", sorted(CHEATS))
def test_the_cheats_pass_the_fixed_shape_checks(gate_id, tasks):
    spec = tasks[ANT].for_profile("smoke")
    info = get_family(spec.family).task_info(spec)
    report = run_conformance(get_gate(gate_id), info, None, RunSeeds(0, ANT, 0).init)
    assert report.passed, report.reason()  # which is why the real run must be audited


def test_cheats_are_rejected_on_the_real_run_and_never_ranked(sweep):
    summary, records = sweep([ANT], ["affinity", *CHEATS], seeds=1)
    by_gate = {r.gate.id: r for r in records}
    honest = by_gate["affinity"]
    assert honest.ok and len(honest.audits) >= 2  # smoke runs last at least 16 calls
    assert all(line.endswith("passed") for line in honest.audits)
    assert by_gate["affinity"].provenance.audit_seed is not None  # published afterwards
    for gate_id, words in CHEATS.items():
        record = by_gate[gate_id]
        assert record.status == "rejected", (gate_id, record.reason)
        assert words in record.reason and "audit at forward call" in record.reason
    assert summary.rejected == len(CHEATS) and summary.failed == 0
    result = aggregate(records).tasks[0]
    assert all(result.gates[g].status == "rejected" for g in CHEATS)
    ranked = [g for g, r in result.gates.items() if r.cells["acc_transition"].rank is not None]
    assert ranked == ["affinity"]


def test_audits_do_not_change_an_honest_gates_numbers(sweep, tmp_path):
    gates = ["beta+pi+ant", "mean-pool"]
    _, audited = sweep([ANT], gates, results=tmp_path / "a", audit_seed=7)
    _, plain = sweep([ANT], gates, results=tmp_path / "b", audits=False)
    key = lambda r: (r.gate.id, r.seed_index)  # noqa: E731
    audited, plain = sorted(audited, key=key), sorted(plain, key=key)
    assert [r.deterministic_results() for r in audited] == [
        r.deterministic_results() for r in plain
    ]
    assert all(r.audits for r in audited) and not any(r.audits for r in plain)


def test_audited_calls_come_one_from_each_window_and_depend_on_the_seed():
    calls = audit_calls(1)
    assert all(low <= c <= high for c, (low, high) in zip(calls, WINDOWS, strict=True))
    assert any(audit_calls(seed) != calls for seed in range(2, 6))


def test_evaluation_calls_are_audited_however_long_training_ran():
    """A gate that reads the future only in eval mode, after more training calls than the last
    audit window reaches, meets an audit among its first evaluation calls."""
    import torch

    from suite.contract import TaskInfo
    from suite.gates.audit import AuditedGate, AuditViolation
    from suite.gates.kinds import kinds

    info = TaskInfo(d_model=4, n_experts=3, seq_len=5, kind="router")
    gate = AuditedGate(get_gate("test-peeks-in-eval").build(info), kinds.get("router"), seed=3)
    x = torch.randn(8, 5, 4)
    with torch.no_grad():
        for _ in range(WINDOWS[-1][1] + 1):  # every training call, past the last window
            gate(x)
        gate.eval()
        with pytest.raises(AuditViolation, match="causality violated"):
            for _ in range(WINDOWS[0][1] + 1):  # the first window of evaluation calls
                gate(x)
    assert all(line.endswith("train: passed") for line in gate.done)


def test_a_family_that_evaluates_on_copies_of_the_gate_is_audited_there(sweep):
    """The facts family answers its queries with fresh copies of the trained updater. The copies
    carry on the run's audit count, so evaluation calls are audited and reported; an updater that
    reads the next position only in evaluation, after more training than the checks make, was
    ranked before (every copy restarted the count below the first window)."""
    _, records = sweep(
        ["facts/sliding-window"], ["lerp-scan", "test-updater-peeks-in-eval"], seeds=1
    )
    by_gate = {r.gate.id: r for r in records}
    assert by_gate["lerp-scan"].ok
    assert any(line.endswith("eval: passed") for line in by_gate["lerp-scan"].audits)
    cheat = by_gate["test-updater-peeks-in-eval"]
    assert cheat.status == "rejected" and "causality violated" in cheat.reason


def test_a_gate_that_reads_future_token_ids_is_rejected(sweep):
    """Token ids are a side input of the lm family; the audits perturb them with the inputs."""
    _, records = sweep(["lm/char-switch"], ["affinity", "test-reads-next-token"], seeds=1)
    by_gate = {r.gate.id: r for r in records}
    assert by_gate["affinity"].ok
    cheat = by_gate["test-reads-next-token"]
    assert cheat.status == "rejected" and "causality violated" in cheat.reason

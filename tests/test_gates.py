"""Baselines obey the contract; the conformance checks catch each way of breaking it."""

from __future__ import annotations

import pytest
import torch

from baselines.precision import PrecisionTracker
from baselines.temporal_memory import LeakyIntegrator
from suite.contract import Feedback, GateOutput, RouterGate, TaskInfo, deliver_feedback
from suite.gates.conformance import run_conformance
from suite.gates.entries import get_gate
from suite.tasks.family import get_family
from suite.tasks.loading import load_all_tasks

TASK_INFOS = {
    t.id: get_family(t.family).task_info(t.for_profile("smoke")) for t in load_all_tasks()
}
SEQUENCE_INFO = TASK_INFOS["transition/anticipation"]
REJECTED_BY_DESIGN = {"expert-choice"}  # registered so the checks can show they reject it


def _pairs():
    from suite.gates.entries import all_gates

    for gate in all_gates():
        if gate.origin != "baseline" or gate.id in REJECTED_BY_DESIGN:
            continue
        seen = set()  # tasks that build gates alike (e.g. a variant in another order) check once
        for task_id, info in TASK_INFOS.items():
            if info not in seen and gate.supports(info)[0]:
                seen.add(info)
                yield pytest.param(gate.id, info, id=f"{gate.id}@{task_id}")


@pytest.mark.parametrize("gate_id, info", list(_pairs()))
def test_every_baseline_passes_conformance(gate_id: str, info: TaskInfo):
    entry = get_gate(gate_id)
    report = run_conformance(entry, info, None, seed=11)
    assert report.passed, report.reason()
    names = {c.name for c in report.checks}
    assert {"output", "causality", "batch_isolation", "determinism"} <= names
    if entry.causal:
        assert report.verified_causal
        assert "streaming" in names  # forward agrees with step for every causal (stateful) gate


def test_oracle_is_a_labelled_non_causal_ceiling():
    report = run_conformance(get_gate("oracle"), SEQUENCE_INFO, None, seed=0)
    causality = next(c for c in report.checks if c.name == "causality")
    assert causality.skipped and "ceiling" in causality.detail
    assert report.passed and not report.verified_causal


@pytest.mark.parametrize(
    "gate_id, check, words",
    [
        ("test-peek-future", "causality", "reads the future"),
        ("test-batch-mix", "batch_isolation", "mixes information across the batch"),
        ("test-step-mismatch", "streaming", "forward and repeated step disagree"),
        ("test-nondeterministic", "determinism", "differ"),
        ("test-wrong-shape", "output", "expected (B, T, E) = (4, 12, 4)"),
    ],
)
def test_conformance_rejects_each_broken_gate(gate_id, check, words):
    report = run_conformance(get_gate(gate_id), SEQUENCE_INFO, None, seed=0)
    assert not report.passed
    failed = {c.name: c.detail for c in report.checks if not (c.passed or c.skipped)}
    assert check in failed, failed
    assert words in failed[check]


STREAMING_PROBLEMS = {
    "test-ignores-state": "forward over two chunks (state carried at t=6)",
    "test-stale-state": "the final state of forward and of repeated step",
    "test-detached": "parameter gradients through forward and through repeated step",
}


@pytest.mark.parametrize("gate_id", sorted(STREAMING_PROBLEMS))
def test_streaming_compares_chunks_final_state_and_gradients(gate_id):
    """Each of these gates agrees with its step() in outputs and breaks one other part of the
    streaming rule; the check names that part (a stale final state also breaks chunking)."""
    report = run_conformance(get_gate(gate_id), SEQUENCE_INFO, None, seed=0)
    failed = {c.name: c.detail for c in report.checks if not (c.passed or c.skipped)}
    assert set(failed) == {"streaming"}, failed
    detail = failed["streaming"]
    assert STREAMING_PROBLEMS[gate_id] in detail
    assert "forward and repeated step disagree" not in detail
    assert (STREAMING_PROBLEMS["test-detached"] in detail) == (gate_id == "test-detached")
    assert (STREAMING_PROBLEMS["test-stale-state"] in detail) == (gate_id == "test-stale-state")


def test_peeking_is_caught_even_on_single_token_tasks():
    info = TASK_INFOS["transition/precision-static"]
    assert info.seq_len == 1
    report = run_conformance(get_gate("test-peek-future"), info, None, seed=0)
    assert "causality" in report.reason()


@pytest.mark.parametrize("beta", [0.05, 0.5, 0.9, 0.999])
def test_leaky_scan_matches_the_recurrence_on_long_sequences(beta):
    torch.manual_seed(0)
    memory = LeakyIntegrator(8, beta_init=beta)
    x = torch.randn(3, 300, 8)
    h0 = torch.randn(3, 8)
    scanned = memory.scan(x, h0)
    h, stepped = h0, []
    for t in range(x.shape[1]):
        h = memory.step(x[:, t], h)
        stepped.append(h)
    scale = 1 + torch.stack(stepped, 1).abs().max().item()
    assert torch.allclose(scanned, torch.stack(stepped, 1), atol=1e-5 * scale, rtol=1e-5)


@pytest.mark.parametrize("T", [65, 128, 200, 1000])
def test_the_chunked_scan_equals_the_one_piece_scan_in_values_and_gradients(T):
    from baselines.temporal_memory import CHUNK, _chunked_sums, _decayed_sums

    assert T > CHUNK
    torch.manual_seed(0)
    log_beta = torch.log(torch.tensor([0.05, 0.5, 0.9, 0.999])).requires_grad_(True)
    x = torch.randn(2, T, 4, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(2, T, 4, dtype=torch.float64)
    outs, grads = [], []
    for fn in (_decayed_sums, _chunked_sums):
        out = fn(x, log_beta.double())
        outs.append(out)
        grads.append(torch.autograd.grad((out * probe).sum(), [x, log_beta]))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    for chunked, whole in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(chunked, whole, rtol=1e-9, atol=1e-9)


def test_leaky_scan_gradient_is_finite_for_long_sequences():
    # the masked upper triangle must not overflow into inf * 0 = NaN in the backward pass
    memory = LeakyIntegrator(4, beta_init=0.01)
    x = torch.randn(2, 400, 4, requires_grad=True)
    memory.scan(x).sum().backward()
    assert torch.isfinite(memory.raw.grad).all() and torch.isfinite(x.grad).all()


def test_precision_update_equals_sequential_ema():
    tracker = PrecisionTracker(4, momentum=0.95, var_init=0.5)
    errors = torch.rand(16, 11, 4)
    var = torch.full((4,), 0.5)
    for s in range(errors.shape[1]):
        var = 0.95 * var + 0.05 * errors[:, s].mean(0)
    tracker.update(errors)
    assert torch.allclose(tracker.var, var, atol=1e-6)
    assert torch.allclose(tracker.pi(), 1 / (var + 1e-4), rtol=1e-5)


def test_precision_converges_to_two_one_two_one_in_the_ablation():
    # err_e = "expert e was not the correct one", targets 0 or 2 half the time each
    tracker = PrecisionTracker(4)
    targets = torch.tensor([0, 2] * 256)[:, None].expand(512, 11)
    for _ in range(200):
        error = (targets[..., None] != torch.arange(4)).float()
        tracker.update(error)
    assert torch.allclose(tracker.pi(), torch.tensor([2.0, 1.0, 2.0, 1.0]), rtol=1e-3)


def test_composed_gate_observe_changes_only_precision_gates():
    info = SEQUENCE_INFO
    fb = Feedback(expert_error=torch.ones(2, 3, info.n_experts), step=0)
    with_pi = get_gate("beta+pi").build(info)
    before = with_pi.precision.var.clone()
    deliver_feedback(with_pi, fb)
    assert not torch.equal(before, with_pi.precision.var)
    without_pi = get_gate("beta+ant").build(info)
    state = {k: v.clone() for k, v in without_pi.state_dict().items()}
    deliver_feedback(without_pi, fb)
    assert all(torch.equal(state[k], v) for k, v in without_pi.state_dict().items())


def test_unsupported_pairs_say_why():
    ok, reason = get_gate("oracle").supports(TASK_INFOS["transition/early-signal"])
    assert not ok and "next-domain" in reason
    ok, reason = get_gate("beta").supports(TASK_INFOS["transition/precision-static"])
    assert not ok and "two or more tokens" in reason


class _TokenRouter(RouterGate):
    """Routes on x and an embedding of the token ids the family provides as side inputs."""

    def __init__(self, info: TaskInfo, peek: bool = False) -> None:
        super().__init__(info)
        self.embed = torch.nn.Embedding(info.vocab_size, info.n_experts)
        self.W = torch.nn.Linear(info.d_model, info.n_experts)
        self.peek = peek

    def forward(self, x, state=None, side=None):
        ids = side.token_ids
        if self.peek:  # route on the next token's id: reads the future
            ids = torch.cat([ids[:, 1:], ids[:, -1:]], dim=1)
        return GateOutput(self.W(x) + self.embed(ids))

    def step(self, x_t, state=None, side=None):
        return GateOutput(self.W(x_t) + self.embed(side.token_ids))


@pytest.mark.parametrize("peek", [False, True])
def test_side_inputs_reach_gates_that_take_them_and_are_checked_for_causality(peek):
    from suite.gates.entries import GateEntry

    info = TaskInfo(
        d_model=4, n_experts=3, seq_len=8, inputs=("x", "token_ids"), extras={"vocab_size": 11}
    )
    entry = GateEntry("test-token-router", _TokenRouter, {"peek": peek}, "token ids", origin="test")
    report = run_conformance(entry, info, None, seed=0)
    if peek:
        assert "reads the future" in report.reason()
    else:
        assert report.passed and report.verdict == "ranked", report.reason()

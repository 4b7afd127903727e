"""The router zoo: conformance (expert choice rejected as non-causal), the load-balancing and
z-losses against hand-computed values, and the sparse routers' log-weight convention."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.zoo._common import load_balancing_loss, log_weights, top_k_mask, z_loss
from suite.contract import Side, TaskInfo
from suite.gates.conformance import run_conformance
from suite.gates.entries import get_gate

INFO = TaskInfo(
    d_model=8, n_experts=4, seq_len=6, inputs=("x", "token_ids"),
    extras={"vocab_size": 26, "top_k": 2, "family": "lm"},
)  # fmt: skip
CAUSAL = ["softmax", "topk-lb", "topk-z", "hash", "dynmole"]


@pytest.mark.parametrize("gate_id", CAUSAL)
def test_zoo_routers_pass_conformance_and_stay_in_their_family(gate_id):
    report = run_conformance(get_gate(gate_id), INFO, None, seed=0)
    assert report.passed, report.reason()
    elsewhere = TaskInfo(d_model=8, n_experts=4, seq_len=6)
    assert not get_gate(gate_id).supports(elsewhere)[0]


def test_expert_choice_is_rejected_as_non_causal():
    report = run_conformance(get_gate("expert-choice"), INFO, None, seed=0)
    assert not report.passed
    failed = {c.name for c in report.checks if not c.passed}
    assert failed & {"causality", "batch_isolation"}, failed


def test_load_balancing_loss_by_hand():
    # 4 tokens, 2 experts, k = 1: tokens 0-2 go to expert 0, token 3 to expert 1
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    mask = top_k_mask(probs, 1)
    f = torch.tensor([3 / 4, 1 / 4])
    P = torch.tensor([(0.9 + 0.8 + 0.6 + 0.3) / 4, (0.1 + 0.2 + 0.4 + 0.7) / 4])
    expected = 0.01 * 2 * float((f * P).sum())
    assert load_balancing_loss(probs, mask, 0.01).item() == pytest.approx(expected)
    balanced = torch.full((4, 2), 0.5)
    even = torch.tensor([[True, False], [False, True]] * 2)
    assert load_balancing_loss(balanced, even, 1.0).item() == pytest.approx(1.0)  # its minimum


def test_z_loss_by_hand():
    logits = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    lse = [math.log(2.0), math.log(math.e + math.e**2)]
    assert z_loss(logits, 1e-3).item() == pytest.approx(1e-3 * (lse[0] ** 2 + lse[1] ** 2) / 2)


def test_top_k_logits_are_the_renormalised_top_k():
    torch.manual_seed(0)
    gate = get_gate("topk-lb").build(INFO)
    x = torch.randn(3, 6, 8)
    out = gate(x)
    mixed = torch.softmax(out.logits, -1)
    probs = torch.softmax(gate.W(x), -1)
    kept = probs * top_k_mask(probs, 2)
    torch.testing.assert_close(mixed, kept / kept.sum(-1, keepdim=True))
    assert ((mixed > 1e-6).sum(-1) == 2).all() and out.aux_loss.item() > 0
    z = get_gate("topk-z").build(INFO)(x)
    assert z.aux_loss is not None
    assert torch.equal(log_weights(torch.tensor([1.0, 0.0]))[1], torch.tensor(-1e4))


def test_hash_routing_follows_the_token_id_only():
    gate = get_gate("hash").build(INFO)
    ids = torch.tensor([[3, 5, 3, 7, 5, 3]])
    a = gate(torch.randn(1, 6, 8), None, Side(token_ids=ids)).logits.argmax(-1)
    b = gate(torch.randn(1, 6, 8), None, Side(token_ids=ids)).logits.argmax(-1)
    assert torch.equal(a, b)
    assert a[0, 0] == a[0, 2] == a[0, 5] and a[0, 1] == a[0, 4]


def test_dynmole_keeps_the_top_p_set_and_falls_back_to_all_when_unsure():
    from baselines.zoo.dynmole import top_p_mask, tsallis

    peaked = torch.tensor([[0.7, 0.2, 0.06, 0.04]])
    assert top_p_mask(peaked, 0.75, 2).tolist() == [[True, True, False, False]]
    assert top_p_mask(torch.tensor([[0.97, 0.01, 0.01, 0.01]]), 0.75, 2).sum() == 2  # >= 2
    assert top_p_mask(torch.tensor([[0.3, 0.3, 0.3, 0.1]]), 0.75, 2).sum() == 3
    q = 1.1
    p = torch.tensor([0.5, 0.5])
    assert tsallis(p, q).item() == pytest.approx((1 - 2 * 0.5**q) / (q - 1))
    gate = get_gate("dynmole").build(INFO)
    with torch.no_grad():
        gate.W.weight.zero_()
        gate.W.bias.zero_()  # uniform probabilities: maximal entropy, every expert kept
    out = gate(torch.randn(2, 6, 8))
    torch.testing.assert_close(torch.softmax(out.logits, -1), torch.full((2, 6, 4), 0.25))
    uniform_entropy = (1 - 4 ** (1 - q)) / (q - 1)
    expected = 0.01 * uniform_entropy + 0.001 * 4 * (4 * 0.25 * 0.25)
    assert out.aux_loss.item() == pytest.approx(expected, rel=1e-5)

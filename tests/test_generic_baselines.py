"""The generic baselines (issue: the baselines the papers never ran): as large as the paper's full
gate at most, sized without moving their own initialisation, and the clock reads no input."""

from __future__ import annotations

import pytest
import torch

from suite.gates.entries import get_gate
from suite.gates.proxy import trainable_count
from suite.seeding import seeded_global_rng
from suite.tasks.family import get_family

GENERIC = ["gru", "lstm", "causal-attention"]


@pytest.mark.parametrize("gate_id", GENERIC)
def test_generic_memories_fit_the_full_gates_budget_and_use_most_of_it(tasks, gate_id):
    for task_id in ("transition/anticipation", "transition/domain-switch"):
        spec = tasks[task_id]
        info = get_family(spec.family).task_info(spec)
        budget = trainable_count(get_gate("beta+pi+ant").build(info))
        n = trainable_count(get_gate(gate_id).build(info))
        assert 0.8 * budget <= n <= budget, (task_id, n, budget)


@pytest.mark.parametrize("gate_id", GENERIC)
def test_sizing_does_not_move_the_initialisation(tasks, gate_id):
    spec = tasks["transition/anticipation"]
    info = get_family(spec.family).task_info(spec)
    entry = get_gate(gate_id)
    with seeded_global_rng(7):
        matched = entry.build(info)
    width = {"gru": "hidden", "lstm": "hidden", "causal-attention": "width"}[gate_id]
    with seeded_global_rng(7):  # the same width given explicitly: no sizing, the same draws
        explicit = entry.cls(info, **{width: getattr(matched, width)})
    for a, b in zip(matched.state_dict().values(), explicit.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_the_clock_reads_positions_not_inputs(tasks):
    spec = tasks["transition/anticipation"]
    gate = get_gate("clock").build(get_family(spec.family).task_info(spec))
    with torch.no_grad():
        gate.e.copy_(torch.randn(gate.e.shape))
        a = gate(torch.randn(3, 12, 16)).logits
        b = gate(torch.randn(3, 12, 16) * 5).logits
    assert torch.equal(a, b) and not torch.equal(a[:, 0], a[:, 1])

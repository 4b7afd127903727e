"""Routers that ask the family for more than their logits (``suite.contract``, Requests): ReMix's
sampled expert sets scored by RLOO and ERC's probes, against hand-computed values, through
conformance, the lm family, the vectorised seeds' fallback and the untrusted-gate proxy."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.zoo.remix import draw_sets
from suite.contract import GateOutput, Probes, Samples, TaskInfo
from suite.gates.conformance import run_conformance
from suite.gates.entries import get_gate
from suite.gates.kinds import kinds
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.lm.requests import coupling_loss, rloo_loss
from suite.tasks.family import RunContext, get_family

INFO = TaskInfo(
    d_model=8, n_experts=4, seq_len=6, inputs=("x", "token_ids"),
    extras={"vocab_size": 26, "top_k": 2, "family": "lm", "requests": ("samples", "probes")},
)  # fmt: skip


def test_rloo_by_hand():
    losses = torch.tensor([[1.0], [2.0], [6.0]])  # M = 3 samples of one position
    log_prob = torch.zeros(3, 1, requires_grad=True)
    loss = rloo_loss(losses, log_prob)
    loss.backward()
    assert loss.item() == pytest.approx(3.0)  # the samples' mean loss; the surrogate is 0 here
    # advantage of sample m: L_m − mean of the others, over M · positions = 3
    expected = [(1 - 4) / 3, (2 - 3.5) / 3, (6 - 1.5) / 3]
    assert log_prob.grad.squeeze(1).tolist() == pytest.approx(expected)


def test_coupling_loss_by_hand():
    norms = torch.tensor([[2.0, 1.5], [0.5, 1.0]])  # M_ij: expert j on probe i
    # i=0, j=1: ReLU(1.5 − 0.5·2) + ReLU(1.5 − 0.5·1) = 0.5 + 1.0
    # i=1, j=0: ReLU(0.5 − 0.5·1) + ReLU(0.5 − 0.5·2) = 0 + 0
    assert coupling_loss(norms, 0.5).item() == pytest.approx((1.5 + 0.0) / 2)
    assert coupling_loss(torch.eye(3) * 4, 0.5).item() == 0.0  # perfectly coupled


def test_drawn_sets_are_distinct_follow_the_policy_and_carry_their_order_probability():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05]).expand(4000, 4)
    drawn = draw_sets(probs, 2, 2, torch.Generator().manual_seed(0))
    assert drawn.experts.shape == (2, 4000, 2) and drawn.log_prob.shape == (2, 4000)
    assert (drawn.experts[..., 0] != drawn.experts[..., 1]).all()
    first = torch.bincount(drawn.experts[..., 0].flatten(), minlength=4).float() / 8000
    assert torch.allclose(first, probs[0], atol=0.02)  # the first pick follows π
    a, b = drawn.experts[0, 0].tolist()
    p = probs[0].tolist()
    expected = math.log(p[a]) + math.log(p[b] / (1 - p[a]))
    assert drawn.log_prob[0, 0].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gate_id", ["remix", "erc"])
def test_request_routers_pass_conformance_only_where_the_family_offers_requests(gate_id):
    report = run_conformance(get_gate(gate_id), INFO, None, seed=0)
    assert report.passed, report.reason()
    without = TaskInfo(**{**INFO.as_dict(), "extras": {**INFO.extras, "requests": ()}})
    assert not get_gate(gate_id).supports(without)[0]


def test_an_output_asking_a_family_for_what_it_does_not_offer_is_rejected():
    kind = kinds.get("router")
    logits = torch.zeros(2, 6, 4)
    samples = Samples(torch.zeros(2, 2, 6, 1, dtype=torch.long), torch.zeros(2, 2, 6))
    probes = Probes(torch.zeros(4, 8))
    plain = TaskInfo(d_model=8, n_experts=4, seq_len=6)
    assert "does not score" in kind.check_output(
        GateOutput(logits, None, None, samples), plain, 2, 6
    )
    assert "does not score" in kind.check_output(
        GateOutput(logits, None, None, None, probes), plain, 2, 6
    )
    assert kind.check_output(GateOutput(logits, None, None, samples, probes), INFO, 2, 6) is None
    bad = Samples(torch.zeros(1, 2, 6, 1, dtype=torch.long), torch.zeros(1, 2, 6))
    assert "M >= 2" in kind.check_output(GateOutput(logits, None, None, bad), INFO, 2, 6)


def _smoke_run(tasks, gate_id: str, seed: int = 0):
    spec = tasks["lm/char-switch"].for_profile("smoke")
    family = get_family("lm")
    ctx = RunContext(seeds=RunSeeds(spec.master_seed, spec.id, seed))
    with seeded_global_rng(ctx.seeds.init):
        gate = get_gate(gate_id).build(family.task_info(spec))
    before = gate.W.weight.detach().clone()
    out = family.run(spec, gate, ctx)
    return out, gate, before


def test_remix_learns_its_router_only_through_the_policy_term(tasks, monkeypatch):
    out, gate, before = _smoke_run(tasks, "remix")
    assert all(math.isfinite(v) for v in out.metrics.values())
    assert not torch.equal(gate.W.weight, before)  # the RLOO term moved the router
    again, _, _ = _smoke_run(tasks, "remix")
    assert again.metrics == out.metrics  # its own seeded generator: deterministic
    # without the sets scored, constant weights give the router no gradient at all
    monkeypatch.setattr("suite.tasks.families.lm.requests.rloo_loss", lambda *a: 0.0)
    _, frozen, start = _smoke_run(tasks, "remix")
    assert torch.equal(frozen.W.weight, start)


def test_erc_adds_its_coupling_loss_to_training(tasks, monkeypatch):
    out, _, _ = _smoke_run(tasks, "erc")
    calls = []
    real = coupling_loss

    def counted(norms, alpha):
        calls.append(norms.shape)
        return real(norms, alpha)

    monkeypatch.setattr("suite.tasks.families.lm.requests.coupling_loss", counted)
    plain, _, _ = _smoke_run(tasks, "erc")
    spec = tasks["lm/char-switch"].for_profile("smoke")
    assert calls and all(shape == (2, 2) for shape in calls)
    assert len(calls) == spec.train.epochs  # once per training step, never in evaluation
    assert plain.metrics == out.metrics
    topk, _, _ = _smoke_run(tasks, "topk-lb")
    assert topk.metrics != out.metrics  # the coupling loss changes what is learned


def test_request_routers_fall_back_from_the_vectorised_seeds_and_say_why(tasks, monkeypatch):
    monkeypatch.setattr("suite.tasks.seed_stack.VECTORISE_ON_CPU", True)
    spec = tasks["lm/char-switch"].for_profile("smoke")
    family = get_family("lm")
    ctxs = [RunContext(seeds=RunSeeds(spec.master_seed, spec.id, i)) for i in range(2)]
    gates = []
    for ctx in ctxs:
        with seeded_global_rng(ctx.seeds.init):
            gates.append(get_gate("erc").build(family.task_info(spec)))
    together = family.run_seeds(spec, gates, ctxs)
    assert any("seeds ran one after another" in n for n in together[0].notes)
    alone = _smoke_run(tasks, "erc", seed=1)[0]
    assert together[1].metrics == alone.metrics


def test_request_routers_give_the_same_numbers_behind_the_proxy(sweep, tmp_path):
    gates = ["remix", "erc"]
    _, here = sweep(["lm/char-switch"], gates, results=tmp_path / "a", seeds=1)
    _, proxied = sweep(
        ["lm/char-switch"], gates, results=tmp_path / "b", seeds=1, isolate_baselines=True
    )
    assert all("own process" in r.provenance.sandbox for r in proxied)

    def numbers(records):
        return {(r.gate.id, r.seed_index): r.metrics for r in records}

    assert numbers(here) == numbers(proxied) and len(numbers(here)) == 2

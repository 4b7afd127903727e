"""The DSC layer against its formulas, the dense and DSC layers as the lm family's model option
(``model.layer``), and the efficiency table's rows."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from suite.gates.entries import get_gate
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.lm import dsc
from suite.tasks.families.lm.efficiency import BASE, moe_latency
from suite.tasks.families.lm.model import CharLM, dense_ffn, moe_active_parameters
from suite.tasks.families.lm.spec import ROUTING_METRICS, LMModel
from suite.tasks.family import RunContext, get_family


def tiny_layer(d: int = 4, atoms: int = 3, k: int = 2) -> dsc.DSCLayer:
    torch.manual_seed(0)
    return dsc.DSCLayer(d, hidden=5, n_atoms=atoms, k=k)


def test_the_fast_form_equals_the_formula_with_gathered_atoms():
    layer = tiny_layer(d=8, atoms=16, k=4).double()
    x = torch.randn(50, 8, dtype=torch.float64)
    out, _ = layer(x)
    expected = layer.static(x) + layer.gamma * layer.composed_gathered(x)
    assert torch.allclose(out, expected, atol=1e-12)


def test_the_layer_maps_tokens_to_tokens_with_a_scalar_loss():
    layer = tiny_layer(d=8, atoms=6, k=3)
    out, aux = layer(torch.randn(11, 8))
    r, chosen, z = layer.route(torch.randn(11, 8))
    assert out.shape == (11, 8) and aux.shape == () and torch.isfinite(aux)
    assert r.shape == (11, 6) and chosen.shape == z.shape == (11, 3)


def test_the_chosen_atoms_and_weights_match_a_per_token_loop():
    layer = tiny_layer(d=4, atoms=7, k=3).double()
    x = torch.randn(9, 4, dtype=torch.float64)
    _, chosen, z = layer.route(x)
    logits = layer.router(layer.norm(x)).tolist()
    for n, row in enumerate(logits):  # the formulas, one token at a time
        alpha = [math.log1p(math.exp(min(max(v, -dsc.CLAMP), dsc.CLAMP))) for v in row]
        best = sorted(range(7), key=lambda m: -alpha[m])[:3]
        total = sum(alpha[m] for m in best)
        weight = {m: alpha[m] / total * math.tanh(total) for m in best}
        assert set(chosen[n].tolist()) == set(best)
        for m, w in zip(chosen[n].tolist(), z[n].tolist(), strict=True):
            assert w == pytest.approx(weight[m], rel=1e-12)


def test_routing_keeps_the_k_largest_alphas_scaled_by_tanh_of_their_sum():
    layer = tiny_layer(d=4, atoms=6, k=2)
    x = torch.randn(10, 4)
    r, chosen, z = layer.route(x)
    alpha = F.softplus(r)
    assert torch.equal(chosen.sort(-1).values, alpha.topk(2, -1).indices.sort(-1).values)
    S = alpha.gather(-1, chosen).sum(-1)
    assert torch.allclose(z.sum(-1), torch.tanh(S), atol=1e-6)
    assert (r.abs() <= dsc.CLAMP).all()


def test_the_four_losses_against_hand_computed_values():
    layer = tiny_layer(d=2, atoms=3, k=2)
    with torch.no_grad():
        layer.U.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        layer.V.copy_(torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    r = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
    chosen = torch.tensor([[1, 0], [0, 1]])
    z = torch.zeros(2, 2)
    losses = layer.losses(r, chosen, z)
    sp = [[math.log(2), math.log(1 + math.e), math.log(1 + math.exp(-1))],
          [math.log(1 + math.e**2), math.log(2), math.log(2)]]  # fmt: skip
    P = [sum(row[m] / sum(row) for row in sp) / 2 for m in range(3)]
    assert losses["balance"].item() == pytest.approx(3 * sum(p * p for p in P), rel=1e-6)
    S = [sp[0][1] + sp[0][0], sp[1][0] + sp[1][1]]
    assert losses["budget"].item() == pytest.approx(max(0.0, 1 - sum(S) / 2) ** 2, abs=1e-7)
    # Û rows: e1, e2, (1,1)/√2: off-diagonal cosines 0, 1/√2, 1/√2 (twice each); V̂: e1, e2, e2
    coherence = 2 * (0.5 + 0.5) + 2 * (0 + 0 + 1.0)
    assert losses["coherence"].item() == pytest.approx(coherence, rel=1e-6)
    lse = [math.log(sum(math.exp(v) for v in row)) for row in r.tolist()]
    assert losses["z"].item() == pytest.approx(sum(v * v for v in lse) / 2, rel=1e-6)


def test_atoms_are_used_at_unit_norm():
    layer = tiny_layer(d=4, atoms=3, k=1)
    x = torch.randn(6, 4)
    base = layer(x)[0]
    with torch.no_grad():
        layer.U.mul_(7.0)
        layer.V.mul_(0.1)
    assert torch.allclose(layer(x)[0], base, atol=1e-5)


@pytest.mark.parametrize("d, experts, k", [(64, 5, 2), (16, 2, 1), (32, 8, 2)])
def test_dsc_never_uses_more_active_parameters_than_the_moe(d, experts, k):
    h = 4 * d
    moe_active = d * experts + experts + k * (2 * d * h + h + d)
    hidden = dsc.static_hidden(d, moe_active, 16, 4)
    active = dsc.active_parameters(dsc.DSCLayer(d, hidden, 16, 4))
    assert moe_active - (2 * d + 1) < active <= moe_active


@pytest.mark.parametrize("d, experts, k", [(64, 5, 2), (16, 2, 1), (32, 8, 2)])
def test_dense_uses_the_experts_active_parameters_less_the_router_and_k_minus_1_biases(
    d, experts, k
):
    h = 4 * d
    dense = sum(p.numel() for p in dense_ffn(d, k * h).parameters())
    assert dense == moe_active_parameters(d, experts, h, k) - (d * experts + experts) - (k - 1) * d


@pytest.mark.parametrize("layer", ["dsc", "dense"])
def test_the_char_lm_builds_the_chosen_layer_and_ignores_the_gate(layer):
    torch.manual_seed(0)
    model = CharLM(vocab=26, d_model=8, n_experts=4, ff_mult=2, layer=layer, active=2)
    x = model.embed(torch.randint(0, 26, (3, 5)))
    logits, weights, aux = model.finish(x, torch.randn(3, 5, 4), "top-k", 2)
    again, _, _ = model.finish(x, torch.randn(3, 5, 4), "top-k", 2)
    assert logits.shape == (3, 5, 26) and torch.equal(logits, again)
    assert torch.equal(weights, torch.full((3, 5, 4), 0.25))
    assert (aux > 0).item() == (layer == "dsc")
    experts = sum(p.numel() for p in model.experts.parameters())
    assert experts < 4 * (2 * 8 * 16 + 16 + 8)  # fewer than the four experts' parameters


def test_the_layer_option_keeps_old_hashes_and_drops_the_routing_metrics(tasks):
    spec = tasks["lm/char-switch"]
    assert "layer" not in spec.identity()["model"]
    assert LMModel(layer="dsc").active_experts == 2  # soft: sized to every expert
    assert LMModel(layer="dsc", dispatch="top-k", n_experts=4, top_k=2).active_experts == 2
    raw = spec.for_profile("smoke").model_dump(mode="json")
    raw["model"].update(layer="dsc", dispatch="top-k")
    with pytest.raises(ValueError, match="p_correct_transition"):
        type(spec).model_validate(raw)
    raw.update(metrics=["bpc_transition", "bpc_all"], claims=[])
    dsc_spec = type(spec).model_validate(raw)
    assert dsc_spec.identity()["model"]["layer"] == "dsc"
    assert dsc_spec.spec_hash() != spec.for_profile("smoke").spec_hash()
    assert not ROUTING_METRICS & set(dsc_spec.available_metrics())


def test_a_smoke_run_of_the_family_with_the_dsc_layer(tasks):
    raw = tasks["lm/char-switch"].for_profile("smoke").model_dump(mode="json")
    raw["model"].update(layer="dsc", dispatch="top-k", top_k=1)
    raw.update(metrics=["bpc_transition", "bpc_all"], claims=[])
    spec = type(tasks["lm/char-switch"]).model_validate(raw)
    family = get_family("lm")
    ctx = RunContext(seeds=RunSeeds(spec.master_seed, spec.id, 0))
    with seeded_global_rng(ctx.seeds.init):
        gate = get_gate("affinity").build(family.task_info(spec))
    out = family.run(spec, gate, ctx)
    assert set(out.metrics) == {"bpc_transition", "bpc_all"}
    assert all(math.isfinite(v) and v > 0 for v in out.metrics.values())
    assert any("layer dsc" in note for note in out.notes)


def test_the_efficiency_table_has_every_layer_and_figure():
    found = moe_latency(tokens=64, d_model=8, ff_mult=2, min_run_time=0.01)
    for rows in found.values():
        assert set(rows) == {
            "soft (all experts)",
            BASE,
            "top-k looped",
            "dense (iso-active)",
            "dsc (iso-active)",
        }
        assert rows[BASE]["ratio"] == 1.0
        for row in rows.values():
            assert row["ms"] > 0 and row["iqr_ms"] >= 0 and row["allocated_mb"] > 0
            assert row["params_active"] <= row["params_total"]
        assert rows["dsc (iso-active)"]["params_active"] <= rows[BASE]["params_active"]


def test_only_moe_stores_the_table_beside_the_bench_records_other_items(tmp_path):
    from suite.bench.run import update_report

    out = tmp_path / "bench.json"
    out.write_text('{"hardware": "cpu", "seed_ms": {"one": 1.0}}')
    update_report(out, "moe_latency_ms", {"E=5, k=2": {}})
    report = json.loads(out.read_text())
    assert report == {
        "hardware": "cpu",
        "seed_ms": {"one": 1.0},
        "moe_latency_ms": {"E=5, k=2": {}},
    }

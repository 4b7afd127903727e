"""The DSC layer against its formulas, and the efficiency table's rows."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from suite.tasks.families.lm import dsc
from suite.tasks.families.lm.efficiency import BASE, moe_latency


def tiny_layer(d: int = 4, atoms: int = 3, k: int = 2) -> dsc.DSCLayer:
    torch.manual_seed(0)
    return dsc.DSCLayer(d, hidden=5, n_atoms=atoms, k=k)


def test_the_fast_form_equals_the_formula_with_gathered_atoms():
    layer = tiny_layer(d=8, atoms=16, k=4).double()
    x = torch.randn(50, 8, dtype=torch.float64)
    out, _ = layer(x)
    expected = layer.static(x) + layer.gamma * layer.composed_gathered(x)
    assert torch.allclose(out, expected, atol=1e-12)


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
            assert row["ms"] > 0 and row["allocated_mb"] > 0
            assert row["params_active"] <= row["params_total"]
        assert rows["dsc (iso-active)"]["params_active"] <= rows[BASE]["params_active"]

"""The dual updater: two lerp memories at two time scales whose LoRA deltas add up."""

from __future__ import annotations

import pytest
import torch

from suite.gates.conformance import run_conformance
from suite.gates.entries import get_gate
from suite.seeding import seeded_global_rng
from tests.test_facts import _lively, _outputs_and_grads, small_info


def _delta(factors: tuple[torch.Tensor, ...], u: torch.Tensor) -> list[torch.Tensor]:
    """u A_m B_m for each adapted matrix m (u: (B, T, d_in) of matching width)."""
    out = []
    for A, B in zip(factors[0::2], factors[1::2], strict=True):
        d_in = A.shape[-2]
        out.append(
            torch.einsum("btr,btrf->btf", torch.einsum("btd,btdr->btr", u[..., :d_in], A), B)
        )
    return out


def test_the_delta_is_the_sum_of_the_fast_and_the_slow_updaters():
    info = small_info(rank=4)
    with seeded_global_rng(0):
        gate = _lively(get_gate("dual-updater").build(info)).double()
    x = torch.randn(2, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    u = torch.randn(2, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    whole = gate(x).factors
    assert [tuple(f.shape[2:]) for f in whole] == [(8, 4), (4, 6), (6, 4), (4, 8)]
    parts = [_delta(g(x).factors, u) for g in (gate.fast, gate.slow)]
    for total, fast, slow in zip(_delta(whole, u), *parts, strict=True):
        assert torch.allclose(total, fast + slow, atol=1e-12)


def test_its_time_scales_start_apart_and_its_parameters_fit_a_single_updater():
    info = small_info(rank=4)
    with seeded_global_rng(0):
        gate = get_gate("dual-updater").build(info)
        single = get_gate("lerp-scan").build(info)
    beta = gate.diagnostics()
    assert beta["beta_fast"] == pytest.approx(0.5) and beta["beta_slow"] == pytest.approx(0.01)
    count = sum(p.numel() for p in gate.parameters())
    assert count <= sum(p.numel() for p in single.parameters()) + 2 * (8 + 1)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-8), (torch.float32, 1e-5)])
def test_parallel_and_step_forms_agree(dtype, tol):
    with seeded_global_rng(0):
        gate = _lively(get_gate("dual-updater").build(small_info(rank=3))).to(dtype)
    x = torch.randn(3, 21, 8, dtype=dtype, generator=torch.Generator().manual_seed(2))
    ya, ga = _outputs_and_grads(gate, x, sequential=False)
    yb, gb = _outputs_and_grads(gate, x, sequential=True)
    assert (ya - yb).abs().max() <= tol * (1 + ya.abs().max())
    for a, b in zip(ga, gb, strict=True):
        assert (a - b).abs().max() <= tol * (1 + a.abs().max())


def test_conformance_and_a_rank_too_small_to_split():
    assert run_conformance(get_gate("dual-updater"), small_info(), None, seed=0).verdict == "ranked"
    ok, why = get_gate("dual-updater").supports(small_info(rank=1))
    assert not ok and "rank" in why

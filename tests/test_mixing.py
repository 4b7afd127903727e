"""Expert mixing keeps ``torch.einsum``'s numbers, forward and backward, alone and under vmap."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from suite.tasks.mixing import mix_experts


def _expert_outputs(x, W, w):
    """(E, N, D) outputs as the character LM lays them out, and the softmax weights (N, E)."""
    return torch.einsum("nh,ehd->end", x, W), w.softmax(-1)


def _reference(x, W, w):
    y, weights = _expert_outputs(x, W, w)
    return torch.einsum("end,ne->nd", y, weights)


def _mixed(x, W, w):
    y, weights = _expert_outputs(x, W, w)
    return mix_experts(y.permute(1, 0, 2), weights)


def _inputs(n: int, h: int, e: int, d: int, seeds: int | None = None) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(n + h + e + d)
    shapes = [(n, h), (e, h, d), (n, e)]
    if seeds:
        shapes = [(seeds, *s) for s in shapes]
    return [torch.randn(*s, generator=g).requires_grad_() for s in shapes]


def _value_and_grads(f, inputs):
    out = f(*inputs)
    probe = torch.linspace(-1, 1, out.shape[-1])  # unequal gradients per output column
    return out, torch.autograd.grad((out * probe).sum(), inputs)


SHAPES = [(126, 64, 2, 16), (96, 256, 2, 64), (126, 64, 4, 16), (75, 64, 5, 16), (64, 32, 4, 64)]


@pytest.mark.parametrize("seeds", [None, 3])
@pytest.mark.parametrize(("n", "h", "e", "d"), SHAPES)
def test_mixing_is_bit_identical_to_einsum(n, h, e, d, seeds):
    """Bit for bit where E·D < 400 (the character LM's soft MoE): there PyTorch's ``bmm`` runs its
    own small-matrix loop, which sums the experts in order as the mixing does."""
    inputs = _inputs(n, h, e, d, seeds)
    ref, new = _reference, _mixed
    if seeds:
        ref, new = torch.func.vmap(ref), torch.func.vmap(new)
    out_ref, grads_ref = _value_and_grads(ref, inputs)
    out_new, grads_new = _value_and_grads(new, inputs)
    assert torch.equal(out_ref, out_new)
    for a, b in zip(grads_ref, grads_new, strict=True):
        assert torch.equal(a, b)


def test_mixing_matches_einsum_where_mkl_sums_the_experts():
    inputs = _inputs(40, 32, 8, 64)
    out_ref, grads_ref = _value_and_grads(_reference, inputs)
    out_new, grads_new = _value_and_grads(_mixed, inputs)
    torch.testing.assert_close(out_new, out_ref, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads_ref, grads_new, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_mixing_leading_axes_and_weights_only_gradients():
    """Any leading axes ((B, T, E, D) here); no gradient asked for the outputs."""
    y = torch.randn(3, 7, 4, 8)
    w = F.softmax(torch.randn(3, 7, 4), -1).requires_grad_()
    out = mix_experts(y, w)
    torch.testing.assert_close(out, torch.einsum("bte,bted->btd", w, y), rtol=0, atol=1e-6)
    (grad,) = torch.autograd.grad(out.sum(), [w])
    torch.testing.assert_close(grad, y.sum(-1), rtol=1e-6, atol=1e-6)

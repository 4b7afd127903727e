"""Soft mixing of experts' outputs, Σ_e w_e · y_e, with the numbers of ``torch.einsum`` and less
of its cost.

``einsum`` contracts the expert axis with one ``bmm`` of a (1 × E) by (E × D) product per token,
forward and twice backward: thousands of tiny matrix products. Here the forward is E elementwise
products summed in the experts' order, the gradient to the outputs (products with nothing to sum)
is elementwise and laid out as ``einsum``'s is, and only the gradient to the weights keeps its
``bmm``. Where E · D < 400 (the character LM's soft MoE) PyTorch's ``bmm`` runs its own
small-matrix loop, which sums the experts in the same order: forward and gradients are then
bit-identical to ``einsum``'s (``tests/test_mixing.py``), and the mixing with its backward takes
15-25% less time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class _Mix(torch.autograd.Function):
    generate_vmap_rule = True  # plain torch ops throughout: vmap over seeds works unchanged

    @staticmethod
    def forward(outputs: Tensor, weights: Tensor) -> Tensor:
        # E elementwise products over every token, accumulated in einsum's order (E <= 8).
        mixed = outputs[..., 0, :] * weights[..., 0, None]
        for e in range(1, outputs.shape[-2]):
            mixed = mixed + outputs[..., e, :] * weights[..., e, None]
        return mixed

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        outputs, weights = ctx.saved_tensors
        grad_outputs = grad_weights = None
        if ctx.needs_input_grad[0]:  # (..., D, E) transposed: the layout einsum's gradient has
            grad_outputs = (grad[..., :, None] * weights[..., None, :]).transpose(-1, -2)
        if ctx.needs_input_grad[1]:
            E, D = outputs.shape[-2:]
            flat = outputs.reshape(-1, E, D).transpose(1, 2)
            grad_weights = torch.bmm(grad.reshape(-1, 1, D), flat).reshape(weights.shape)
        return grad_outputs, grad_weights


def mix_experts(outputs: Tensor, weights: Tensor) -> Tensor:
    """Σ_e weights[..., e] · outputs[..., e, :] for outputs (..., E, D) and weights (..., E)."""
    return _Mix.apply(outputs, weights)

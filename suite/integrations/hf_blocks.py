"""What runs inside a bridged MoE block: the gate's call (state carried through cached
generation, token ids as its side input), then the block's own selection and experts.

A router's logits go through the block's own softmax (float32), top-k and renormalisation; an
updater's per-position LoRA factors are applied inside every expert (``lora_experts``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.contract import GateOutput, Side, UpdaterOutput

# ``bridge`` and ``layer`` below are suite.integrations.hf's Bridge and _Layer (typed Any here so
# that this module does not import the one that imports it)
Bridge = _Layer = Any


def call_gate(bridge: Bridge, layer: _Layer, hidden: Tensor) -> Any:
    state = layer.state if bridge._continuing else None
    ids = bridge._token_ids
    side = None
    if ids is not None and ids.shape == hidden.shape[:2]:
        side = Side(token_ids=ids)
    from suite.gates.kinds import kinds

    out = kinds.get(bridge.kind).forward(layer.gate, hidden, state, side)
    layer.state = out.state
    layer.aux = out.aux_loss
    return out


def _jitter(block: nn.Module, hidden: Tensor) -> Tensor:
    noise = float(getattr(block, "jitter_noise", 0.0) or 0.0)
    if block.training and noise > 0:  # Mixtral's input jitter, as its own block applies it
        return hidden * torch.empty_like(hidden).uniform_(1.0 - noise, 1.0 + noise)
    return hidden


def _top_k(block: nn.Module, logits: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The block's own selection: softmax in float32, top-k, renormalised where it does so."""
    router = block.gate
    probs = F.softmax(logits.float(), dim=-1)
    weights, index = torch.topk(probs, int(router.top_k), dim=-1)
    if getattr(router, "norm_topk_prob", True):  # Mixtral's router always renormalises
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights.to(dtype), index


def with_shared_expert(block: nn.Module, flat: Tensor, routed: Tensor) -> Tensor:
    if hasattr(block, "shared_expert"):  # Qwen2-MoE
        return routed + torch.sigmoid(block.shared_expert_gate(flat)) * block.shared_expert(flat)
    return routed


def router_forward(block: nn.Module, hidden: Tensor, bridge: Bridge, layer: _Layer) -> Tensor:
    B, T, D = hidden.shape
    hidden = _jitter(block, hidden)
    out: GateOutput = call_gate(bridge, layer, hidden)
    flat = hidden.reshape(-1, D)
    weights, index = _top_k(block, out.logits.reshape(B * T, -1), flat.dtype)
    layer.choices = index.detach()
    routed = block.experts(flat, index, weights)
    return with_shared_expert(block, flat, routed).reshape(B, T, D)


def updater_forward(block: nn.Module, hidden: Tensor, bridge: Bridge, layer: _Layer) -> Tensor:
    B, T, D = hidden.shape
    hidden = _jitter(block, hidden)
    out: UpdaterOutput = call_gate(bridge, layer, hidden)
    flat = hidden.reshape(-1, D)
    _, weights, index = block.gate(flat)  # the model's own router chooses the experts
    layer.choices = index.detach()
    a_gu, b_gu, a_down, b_down = (f.reshape(B * T, *f.shape[2:]) for f in out.factors[:4])
    routed = lora_experts(block.experts, flat, index, weights, (a_gu, b_gu, a_down, b_down))
    return with_shared_expert(block, flat, routed).reshape(B, T, D)


def lora_experts(
    experts: nn.Module,
    flat: Tensor,
    index: Tensor,
    weights: Tensor,
    factors: tuple[Tensor, Tensor, Tensor, Tensor],
    clamp: float | None = None,
) -> Tensor:
    """The experts' SwiGLU MLPs with per-token LoRA corrections shared by every expert:
    gate_up(u) + (u A_gu) B_gu and down(h) + (h A_down) B_down. The gate/up correction is the
    same for every expert, so it is computed once per token. ``clamp`` caps each correction's
    norm (the preprint clamps them; None leaves them as they are)."""
    a_gu, b_gu, a_down, b_down = factors
    cap = _capped if clamp is not None else (lambda c, _: c)
    low_gu = torch.einsum("nd,ndr->nr", flat, a_gu)
    correction = cap(torch.einsum("nr,nro->no", low_gu, b_gu), clamp)
    out = torch.zeros_like(flat)
    n_experts = experts.gate_up_proj.shape[0]
    with torch.no_grad():
        hit = torch.unique(index)
    for e in hit.tolist():
        if e >= n_experts:
            continue
        token, slot = torch.where(index == e)
        u = flat[token]
        gate, up = (F.linear(u, experts.gate_up_proj[e]) + correction[token]).chunk(2, dim=-1)
        h = experts.act_fn(gate) * up
        low = torch.einsum("ni,nir->nr", h, a_down[token])
        low_down = cap(torch.einsum("nr,nrd->nd", low, b_down[token]), clamp)
        y = F.linear(h, experts.down_proj[e]) + low_down
        out.index_add_(0, token, (y * weights[token, slot, None]).to(out.dtype))
    return out


def _capped(correction: Tensor, clamp: float) -> Tensor:
    """``correction`` with each row's norm at most ``clamp``."""
    norm = correction.norm(dim=-1, keepdim=True)
    return correction * (clamp / norm.clamp(min=1e-12)).clamp(max=1.0)

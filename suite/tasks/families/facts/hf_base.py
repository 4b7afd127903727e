"""The frozen base as a ``transformers`` MoE model (Mixtral, OLMoE, Qwen-MoE; tiny and built
here, or pretrained and read from disk), split where the updater reads it.

The updater adapts the last MoE block through the bridge's own expert path
(``suite.integrations.hf_blocks.lora_experts``: per-position LoRA factors shared by every expert,
the model's own router choosing), so a gate meets here the computation it meets in any bridged
model (``attach``), which a test checks. The trunk (every layer up to the last block's MoE) is
split off so that the gates of one job share it, and the last MoE and the head run on the scored
positions only. Attention sees the last ``window`` tokens: an additive mask passed to each
layer, the same as Mixtral's native ``sliding_window`` (also tested) and what OLMoE lacks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from suite.integrations.hf_blocks import lora_experts, with_shared_expert

LAYER_PARTS = ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp")

Factors = tuple[Tensor, ...]


class HFBase(nn.Module):
    """Token ids -> next-token logits over the task's words; ``trunk``/``finish`` as the
    hand-written base has them, so the protocol reads either the same way."""

    def __init__(
        self,
        model: Any,
        window: int,
        vocab_size: int,
        clamp: float | None = None,
        token_offset: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.window, self.vocab_size = window, vocab_size
        self.clamp, self.offset = clamp, token_offset
        inner = getattr(model, "model", None)
        layers = getattr(inner, "layers", None)
        last = layers[-1] if layers else None
        missing = [p for p in LAYER_PARTS if not hasattr(last, p)]
        if missing or not hasattr(last.mlp, "experts"):
            raise ValueError(
                f"{type(model).__name__} is not a decoder of pre-norm layers with an MoE block "
                f"(its last layer lacks {missing or ['mlp.experts']}): the facts family needs "
                "OLMoE, Mixtral or Qwen-MoE"
            )
        if token_offset + vocab_size > model.config.vocab_size:
            raise ValueError(
                f"the task's {vocab_size} words from token {token_offset} do not fit the "
                f"model's vocabulary of {model.config.vocab_size}; lower base.token_offset"
            )

    @property
    def _inner(self) -> Any:
        return self.model.model

    def _mask(self, T: int, like: Tensor) -> Tensor:
        """(1, 1, T, T) additive: 0 where t may attend to s (s <= t, t - s < window)."""
        t = torch.arange(T, device=like.device)
        diff = t[:, None] - t[None, :]
        allowed = (diff >= 0) & (diff < self.window)
        blocked = torch.full((), torch.finfo(like.dtype).min, dtype=like.dtype, device=like.device)
        return torch.where(allowed, torch.zeros((), dtype=like.dtype), blocked)[None, None]

    def trunk(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """The residual stream after the last layer's attention, and the last MoE's input ``u``
        (what the updater reads)."""
        inner = self._inner
        x = inner.embed_tokens(tokens + self.offset)
        T = tokens.shape[1]
        position_ids = torch.arange(T, device=tokens.device)[None]
        kw = dict(
            position_embeddings=inner.rotary_emb(x, position_ids),
            attention_mask=self._mask(T, x),
            position_ids=position_ids,
        )
        for layer in inner.layers[:-1]:
            x = layer(x, **kw)
        last = inner.layers[-1]
        attended, _ = last.self_attn(hidden_states=last.input_layernorm(x), **kw)
        x = x + attended
        return x, last.post_attention_layernorm(x)

    def finish(self, x: Tensor, u: Tensor, factors: Factors = ()) -> Tensor:
        """Logits over the task's words from the trunk's outputs (any positions), the last MoE
        adapted by ``factors``."""
        block = self._inner.layers[-1].mlp
        B, K, D = u.shape
        flat = u.reshape(B * K, D)
        _, weights, index = block.gate(flat)  # the model's own router chooses the experts
        if factors:
            flat_factors = tuple(f.reshape(B * K, *f.shape[2:]) for f in factors[:4])
            routed = lora_experts(block.experts, flat, index, weights, flat_factors, self.clamp)
        else:
            routed = block.experts(flat, index, weights)
        x = x + with_shared_expert(block, flat, routed).reshape(B, K, D)
        logits = self.model.lm_head(self._inner.norm(x))
        return logits[..., self.offset : self.offset + self.vocab_size]

    def forward(self, tokens: Tensor) -> Tensor:
        x, u = self.trunk(tokens)
        return self.finish(x, u)


def dims(model: Any) -> tuple[int, int, int]:
    """(width, expert hidden width, experts) of the last MoE block's experts."""
    experts = model.model.layers[-1].mlp.experts
    return int(experts.hidden_dim), int(experts.intermediate_dim), int(experts.num_experts)

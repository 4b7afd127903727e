"""The base of the ``moe`` family: a small ``transformers`` MoE model, built from the spec."""

from __future__ import annotations

from typing import Any

import torch

from suite.tasks.families.moe.spec import MoeSpec
from suite.tasks.families.moe.text import VOCAB


def build_model(spec: MoeSpec) -> Any:
    """A fresh model of the spec's architecture (its parameters drawn from the global RNG)."""
    import transformers as t

    m, d = spec.model, spec.data
    common = dict(
        vocab_size=VOCAB, hidden_size=m.hidden, intermediate_size=m.expert_hidden,
        num_hidden_layers=m.layers, num_attention_heads=m.heads, num_key_value_heads=m.heads,
        max_position_embeddings=max(2 * d.seq_len, 128), eos_token_id=None, pad_token_id=None,
        bos_token_id=None, tie_word_embeddings=False,
    )  # fmt: skip
    if m.arch == "mixtral":
        config = t.MixtralConfig(**common, num_local_experts=m.experts, num_experts_per_tok=m.top_k)
        model = t.MixtralForCausalLM(config)
    else:
        config = t.OlmoeConfig(**common, num_experts=m.experts, num_experts_per_tok=m.top_k)
        model = t.OlmoeForCausalLM(config)
    with torch.no_grad():  # OLMoE's routers start at zero: give them something to choose by
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.02)
    return model


def load_base(spec: MoeSpec, artifact: dict[str, torch.Tensor]) -> Any:
    """The frozen pre-trained base of one seed, from its prepared artefact."""
    model = build_model(spec)
    model.load_state_dict(artifact)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model

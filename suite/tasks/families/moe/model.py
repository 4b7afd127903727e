"""The base of the ``moe`` family: a small ``transformers`` MoE model, built from the spec."""

from __future__ import annotations

from typing import Any

import torch

from suite.integrations.hf_models import tiny_moe
from suite.tasks.families.moe.spec import MoeSpec
from suite.tasks.families.moe.text import VOCAB


def build_model(spec: MoeSpec) -> Any:
    """A fresh model of the spec's architecture (its parameters drawn from the global RNG)."""
    m, d = spec.model, spec.data
    return tiny_moe(
        m.arch, vocab=VOCAB, hidden=m.hidden, expert_hidden=m.expert_hidden, layers=m.layers,
        heads=m.heads, experts=m.experts, top_k=m.top_k,
        max_positions=max(2 * d.seq_len, 128),
    )  # fmt: skip


def load_base(spec: MoeSpec, artifact: dict[str, torch.Tensor]) -> Any:
    """The frozen pre-trained base of one seed, from its prepared artefact."""
    model = build_model(spec)
    model.load_state_dict(artifact)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model

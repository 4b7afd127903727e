"""Building and loading ``transformers`` MoE models for GateBench's own tasks: a tiny model of a
supported architecture, built from a few sizes, and a pretrained one read from disk only.

Nothing here downloads: a pretrained model is read with ``local_files_only``, from a local folder
or from the Hugging Face cache, and a missing one is a one-line ``WeightsMissing`` that says where
it was looked for and how to provide it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch

from suite.errors import GateBenchError

TinyArch = Literal["mixtral", "olmoe"]


class WeightsMissing(GateBenchError):
    """A pretrained model that is not on this machine."""


def tiny_moe(
    arch: TinyArch,
    *,
    vocab: int,
    hidden: int,
    expert_hidden: int,
    layers: int,
    heads: int,
    experts: int,
    top_k: int,
    max_positions: int,
    sliding_window: int | None = None,
    rope_theta: float | None = None,
    init_std: float | None = None,
    embed_std: float | None = None,
) -> Any:
    """A fresh causal LM of ``arch`` (parameters drawn from the global RNG: seed it around the
    call). Mixtral gets its native ``sliding_window``; OLMoE has none (its callers mask).
    ``rope_theta`` replaces the architecture's default rotary base (Mixtral's is 1e6) and
    ``init_std`` its ``initializer_range`` (0.02, sized for wide models); ``embed_std`` redraws
    the token embeddings."""
    import transformers as t

    common = dict(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=expert_hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_positions, eos_token_id=None, pad_token_id=None,
        bos_token_id=None, tie_word_embeddings=False,
    )  # fmt: skip
    if init_std is not None:
        common["initializer_range"] = init_std
    if rope_theta is not None:
        common["rope_parameters"] = {"rope_type": "default", "rope_theta": rope_theta}
    if arch == "mixtral":
        config = t.MixtralConfig(
            **common, num_local_experts=experts, num_experts_per_tok=top_k,
            sliding_window=sliding_window,
        )  # fmt: skip
        model = t.MixtralForCausalLM(config)
    elif arch == "olmoe":
        config = t.OlmoeConfig(**common, num_experts=experts, num_experts_per_tok=top_k)
        model = t.OlmoeForCausalLM(config)
    else:
        raise ValueError(f"unknown tiny MoE architecture {arch!r}: mixtral or olmoe")
    with torch.no_grad():  # OLMoE's routers start at zero: give them something to choose by
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.02)
        if embed_std is not None:
            model.get_input_embeddings().weight.normal_(0, embed_std)
    return model


def cache_dir() -> Path:
    """Where ``transformers`` keeps downloaded models on this machine."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def find_pretrained(name: str) -> Path:
    """The local folder holding ``name``'s config and weights: ``name`` itself where it is a
    folder, else its snapshot in the Hugging Face cache; ``WeightsMissing`` otherwise."""
    folder = Path(os.path.expanduser(name))
    if not folder.is_dir():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            folder = Path(snapshot_download(name, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError):
            folder = Path("/nonexistent")
    weights = [*folder.glob("*.safetensors"), *folder.glob("*.bin")] if folder.is_dir() else []
    if not (folder / "config.json").is_file() or not weights:
        raise WeightsMissing(
            f"pretrained model '{name}' is not on this machine (looked for a folder '{name}' and "
            f"in the Hugging Face cache {cache_dir()}); on a machine with network run "
            f"`huggingface-cli download {name}` (HF_HOME picks the cache) or give a local "
            "folder written by save_pretrained"
        )
    return folder


def load_pretrained(name: str, dtype: torch.dtype = torch.float32) -> Any:
    """The causal LM ``name`` from disk (never the network), frozen, in eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        find_pretrained(name), local_files_only=True, dtype=dtype
    )
    model.requires_grad_(False)
    model.eval()
    return model

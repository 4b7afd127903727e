"""Bench item 14: what the transformers bridge costs against the model's own router.

One training step (forward, the language-model loss, backward) of a tiny model of each supported
architecture, timed with ``torch.utils.benchmark`` on one thread: with its own router, with
``affinity`` attached through the bridge (the same routing: the router's weights are copied, so
the same experts compute), and with a stateful gate (``beta+ant``). The goal for affinity-like
gates is at most 1.3x the model's own step.
"""

from __future__ import annotations

from typing import Any

import torch

from suite.bench.roofline import median_ms

ARCHS = ("mixtral", "olmoe", "qwen2-moe", "qwen3-moe")
STATEFUL = "beta+ant"
GOAL = 1.3


def tiny_model(arch: str, hidden: int = 64, experts: int = 8, layers: int = 2) -> Any:
    """A small model of a supported architecture, its routers given non-zero weights."""
    import transformers as t

    common = dict(
        vocab_size=128, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=None, pad_token_id=0,
    )  # fmt: skip
    moe = dict(num_experts=experts, num_experts_per_tok=2, moe_intermediate_size=hidden)
    if arch == "mixtral":
        config = t.MixtralConfig(**common, num_local_experts=experts, num_experts_per_tok=2)
        model = t.MixtralForCausalLM(config)
    elif arch == "olmoe":
        model = t.OlmoeForCausalLM(
            t.OlmoeConfig(**common, num_experts=experts, num_experts_per_tok=2)
        )
    elif arch == "qwen2-moe":
        config = t.Qwen2MoeConfig(**common, **moe, shared_expert_intermediate_size=hidden)
        model = t.Qwen2MoeForCausalLM(config)
    elif arch == "qwen3-moe":
        model = t.Qwen3MoeForCausalLM(t.Qwen3MoeConfig(**common, **moe))
    else:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.02)
    return model


def _step_ms(model: Any, ids: torch.Tensor, aux: Any, min_run_time: float) -> float:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss = model(ids, labels=ids).loss
        (loss + aux() if aux is not None else loss).backward()

    return median_ms(step, min_run_time)


def hf_bridge_costs(
    device: str = "cpu", batch: int = 8, seq_len: int = 64, min_run_time: float = 1.0
) -> dict[str, dict[str, float]]:
    """{arch: {model_ms, affinity_ms, stateful_ms, affinity_ratio, stateful_ratio}}."""
    from suite.integrations.hf import attach

    found = {}
    for arch in ARCHS:
        torch.manual_seed(0)
        model = tiny_model(arch).to(device).train()
        ids = torch.randint(1, 128, (batch, seq_len), device=device)
        own = _step_ms(model, ids, None, min_run_time)
        bridge = attach(model, "affinity")
        with torch.no_grad():
            for layer in bridge.layers:
                layer.gate.W.weight.copy_(layer.block.gate.weight)
                layer.gate.W.bias.zero_()
        affinity = _step_ms(model, ids, bridge.aux_loss, min_run_time)
        bridge.detach()
        bridge = attach(model, STATEFUL)
        stateful = _step_ms(model, ids, bridge.aux_loss, min_run_time)
        bridge.detach()
        found[arch] = {
            "model_ms": own,
            "affinity_ms": affinity,
            "stateful_ms": stateful,
            "affinity_ratio": affinity / own,
            "stateful_ratio": stateful / own,
        }
    return found


def print_hf_bridge(found: dict[str, dict[str, float]]) -> None:
    print(
        f"\nThe transformers bridge, one training step of a tiny model (ms; goal ≤ {GOAL}x "
        "for affinity):"
    )
    print(f"  {'architecture':<12} {'own router':>10} {'affinity':>9} {'ratio':>6} "
          f"{STATEFUL:>9} {'ratio':>6}")  # fmt: skip
    for arch, row in found.items():
        print(
            f"  {arch:<12} {row['model_ms']:10.2f} {row['affinity_ms']:9.2f} "
            f"{row['affinity_ratio']:5.2f}x {row['stateful_ms']:9.2f} {row['stateful_ratio']:5.2f}x"
        )

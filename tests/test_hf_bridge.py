"""The Hugging Face transformers bridge: GateBench gates inside real MoE architectures (tiny
configs on the CPU), per supported architecture and gate kind."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from suite.integrations.hf import BridgeError, attach, moe_blocks  # noqa: E402

SMALL = dict(
    vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    eos_token_id=None, pad_token_id=0,
)  # fmt: skip


def _model(arch: str) -> torch.nn.Module:
    t = transformers
    torch.manual_seed(0)
    if arch == "mixtral":
        model = t.MixtralForCausalLM(
            t.MixtralConfig(**SMALL, num_local_experts=4, num_experts_per_tok=2)
        )
    elif arch == "olmoe":
        model = t.OlmoeForCausalLM(t.OlmoeConfig(**SMALL, num_experts=4, num_experts_per_tok=2))
    elif arch == "qwen2-moe":
        config = t.Qwen2MoeConfig(
            **SMALL, moe_intermediate_size=24, shared_expert_intermediate_size=24,
            num_experts=4, num_experts_per_tok=2, norm_topk_prob=True,
        )  # fmt: skip
        model = t.Qwen2MoeForCausalLM(config)
    else:
        config = t.Qwen3MoeConfig(
            **SMALL, moe_intermediate_size=24, num_experts=4, num_experts_per_tok=2
        )
        model = t.Qwen3MoeForCausalLM(config)
    with torch.no_grad():  # routers start at zero in some architectures: give them a choice
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.02)
    return model.eval()


ARCHS = ["mixtral", "olmoe", "qwen2-moe", "qwen3-moe"]
IDS = torch.randint(1, 64, (2, 9), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", ARCHS)
def test_the_models_router_through_the_bridge_gives_the_models_outputs(arch):
    """affinity carrying the model's own router weights: the bridge's softmax, top-k and
    renormalisation are the block's own (and Qwen2-MoE's shared expert is kept)."""
    model = _model(arch)
    with torch.no_grad():
        before = model(IDS).logits
    bridge = attach(model, "affinity")
    assert len(bridge.layers) == 2
    with torch.no_grad():
        for layer in bridge.layers:
            layer.gate.W.weight.copy_(layer.block.gate.weight)
            layer.gate.W.bias.zero_()
        through = model(IDS).logits
    torch.testing.assert_close(through, before, rtol=0, atol=1e-6)
    bridge.detach()
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, before)  # the model's router again, bit for bit
    assert not any("gatebench" in n for n, _ in model.named_modules())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("gate", ["beta+ant", "delta-rule"])
def test_forward_backward_and_the_aux_loss_reach_the_gate(arch, gate):
    model = _model(arch)
    bridge = attach(model, gate, layers=[1])
    assert list(bridge.gates) == [1] and bridge.kind == (
        "updater" if gate == "delta-rule" else "router"
    )
    model.train()
    out = model(IDS, labels=IDS)
    loss = out.loss + bridge.aux_loss()
    loss.backward()
    grads = [p.grad for p in bridge.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
    if gate == "beta+ant":  # its predictor's loss is part of what trains it
        assert bridge.aux_loss().item() > 0
    assert bridge.diagnostics()[1] is not None
    bridge.detach()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("gate", ["beta+ant", "delta-rule"])
def test_cached_generation_equals_generation_without_a_cache(arch, gate, monkeypatch):
    model = _model(arch)
    bridge = attach(model, gate)
    with torch.no_grad():  # trained-looking parameters (an updater starts writing nothing)
        for p in bridge.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3)
    prompt = IDS[:, :4]
    kw = dict(max_new_tokens=6, do_sample=False, output_logits=True, return_dict_in_generate=True)
    with torch.no_grad():
        cached = model.generate(prompt, use_cache=True, **kw)
        fresh = model.generate(prompt, use_cache=False, **kw)
        again = model.generate(prompt, use_cache=True, **kw)  # a new prompt starts afresh
    assert torch.equal(cached.sequences, fresh.sequences)
    for a, b in zip(cached.logits, fresh.logits, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert torch.equal(again.sequences, cached.sequences)
    # the control: a bridge that forgot its state between cached steps gives other logits
    import suite.integrations.hf as hf

    monkeypatch.setattr(hf, "_continues", lambda kwargs: False)
    with torch.no_grad():
        forgetful = model.generate(prompt, use_cache=True, **kw)
    assert any(not torch.allclose(a, b, atol=1e-5) for a, b in zip(forgetful.logits, fresh.logits))
    bridge.detach()


def test_a_model_without_moe_and_an_unknown_moe_block_are_named():
    llama = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
                                 num_hidden_layers=1, num_attention_heads=4)
    )  # fmt: skip
    with pytest.raises(BridgeError, match="LlamaForCausalLM has no Mixture-of-Experts block"):
        attach(llama, "affinity")
    config = transformers.DeepseekV3Config(
        vocab_size=64, hidden_size=32, intermediate_size=48, moe_intermediate_size=16,
        num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4,
        num_experts_per_tok=2, first_k_dense_replace=0, n_group=1, topk_group=1,
        q_lora_rank=None, kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8,
    )  # fmt: skip
    with pytest.raises(
        BridgeError,
        match=r"class DeepseekV3MoE, which the bridge does not "
        r"support; supported blocks: OlmoeSparseMoeBlock",
    ):
        attach(transformers.DeepseekV3ForCausalLM(config), "affinity")


def test_non_causal_gates_bad_layers_and_double_attachment_are_refused():
    model = _model("mixtral")
    with pytest.raises(BridgeError, match="'oracle' is declared non-causal"):
        attach(model, "oracle")
    with pytest.raises(BridgeError, match=r"layers \[7\] have no MoE block; MoE layers .*\[0, 1\]"):
        attach(model, "affinity", layers=[7])
    bridge = attach(model, "affinity")
    with pytest.raises(BridgeError, match="already holds a GateBench gate"):
        attach(model, "beta")
    bridge.detach()
    assert [i for i, _, _ in moe_blocks(model)] == [0, 1]
    with pytest.raises(BridgeError, match="cannot route"):
        attach(model, "task-keyed")  # a continual-learning router: needs a task sequence


def test_a_gate_class_or_a_submission_folder_attaches_too(tmp_path):
    from pathlib import Path

    from baselines.affinity import AffinityGate

    model = _model("olmoe")
    with attach(model, AffinityGate) as bridge:
        assert all(type(g).__name__ == "AffinityGate" for g in bridge.gates.values())
        model(IDS)
    example = Path(__file__).resolve().parent.parent / "submissions" / "selective-memory"
    with attach(model, example) as bridge:
        with torch.no_grad():
            model(IDS)
        assert bridge.kind == "router"
    from suite.gates.entries import gates

    gates.remove("selective-memory")


def test_the_example_script_trains_a_gate_in_a_mixtral_and_generates():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "hf_router.py"
    spec = importlib.util.spec_from_file_location("hf_router_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    found = example.main(["--steps", "30"])
    assert found["last_loss"] < found["first_loss"]  # it learns the text
    assert found["seconds"] > 0


def test_the_bench_item_times_the_bridge_against_the_models_router():
    from suite.bench.hf import ARCHS, hf_bridge_costs, print_hf_bridge

    found = hf_bridge_costs(batch=2, seq_len=8, min_run_time=0.01)
    assert set(found) == set(ARCHS)
    for row in found.values():
        assert row["model_ms"] > 0 and row["affinity_ms"] > 0 and row["stateful_ms"] > 0
        assert row["affinity_ratio"] == row["affinity_ms"] / row["model_ms"]
    print_hf_bridge(found)

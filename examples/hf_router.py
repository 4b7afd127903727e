"""A GateBench gate inside a Hugging Face MoE model: attach, train, generate with a cache.

    python examples/hf_router.py [--gate beta+ant] [--steps 200]

A tiny Mixtral-architecture model (2 layers, 4 experts, 2 active) learns English prose shipped
with Python (the help topics of ``pydoc_data``) one character at a time, with the router of
every MoE layer replaced by a GateBench gate. Everything runs on the CPU in under a minute, needs
no network, and prints the loss, the gates' own diagnostics and a generated continuation.
"""

from __future__ import annotations

import argparse
import time
from pydoc_data.topics import topics

import torch
from transformers import MixtralConfig, MixtralForCausalLM

from suite.integrations.hf import attach

VOCAB = 128  # ASCII characters


def corpus() -> torch.Tensor:
    text = " ".join(topics[k] for k in sorted(topics))
    return torch.tensor([ord(c) for c in text if ord(c) < VOCAB], dtype=torch.long)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gate", default="beta+ant", help="a registered gate id or a folder")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    config = MixtralConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        max_position_embeddings=256, eos_token_id=None, pad_token_id=0,
    )  # fmt: skip
    model = MixtralForCausalLM(config)
    bridge = attach(model, args.gate, seq_len=64)  # the gate now routes every MoE layer
    data = corpus()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)  # the gates are submodules
    start, first = time.monotonic(), None
    model.train()
    for step in range(args.steps):
        at = torch.randint(0, len(data) - 65, (16,))
        batch = torch.stack([data[i : i + 65] for i in at.tolist()])
        out = model(batch[:, :-1], labels=batch[:, :-1])
        loss = out.loss + bridge.aux_loss()  # the gate's auxiliary loss trains it too
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        first = loss.item() if first is None else first
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}")
    model.eval()
    prompt = torch.tensor([[ord(c) for c in "The object "]])
    with torch.no_grad():
        tokens = model.generate(prompt, max_new_tokens=40, do_sample=False, use_cache=True)
    print("generated:", repr("".join(chr(int(t)) for t in tokens[0])))
    for layer, values in bridge.diagnostics().items():
        shown = {k: [round(float(x), 3) for x in v.flatten()[:4]] for k, v in values.items()}
        print(f"layer {layer} gate diagnostics: {shown}")
    seconds = time.monotonic() - start
    print(f"{args.steps} steps in {seconds:.1f} s")
    bridge.detach()
    return {"first_loss": first or 0.0, "last_loss": loss.item(), "seconds": seconds}


if __name__ == "__main__":
    main()

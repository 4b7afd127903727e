"""Latency of the character LM's expert layer, run four ways (``nox -s bench``, item 8).

Every expert mixed softly; top-k with tokens sorted by expert and batched matmuls; the same top-k
with a Python loop over experts (the "looped MoE" that DSC's latency claim was measured against);
and a dense MLP with the same active parameters. ``torch.utils.benchmark`` times each, one thread,
median of timed blocks after a warm-up.
"""

from __future__ import annotations

import torch

from suite.seeding import seeded_global_rng
from suite.tasks.families.lm.model import ExpertBank, looped_experts, route

MOE_SHAPES = ((2, 1), (8, 2))  # (experts, k)


def print_moe(found: dict) -> None:
    print("\nMoE layer forward, ms per batch of 256 × 63 tokens (d 64, expert MLP 64-256-64):")
    for shape, row in found.items():
        base = row["top-k batched"]
        cells = ", ".join(f"{name} {ms:.2f} ({ms / base:.2f}x)" for name, ms in row.items())
        print(f"  {shape}: {cells}")


def moe_latency(tokens: int = 256 * 63, d_model: int = 64, ff_mult: int = 4) -> dict:
    """Forward milliseconds per batch of each way to run the experts (item 8)."""
    from torch.utils import benchmark

    found: dict[str, dict[str, float]] = {}
    for n_experts, k in MOE_SHAPES:
        with seeded_global_rng(0):
            bank = ExpertBank(n_experts, d_model, ff_mult * d_model)
            hidden = k * ff_mult * d_model
            dense = torch.nn.Sequential(
                torch.nn.Linear(d_model, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, d_model)
            )
            x = torch.randn(tokens, d_model)
            logits = torch.randn(tokens, n_experts)
        weights, chosen, w = route(logits, "top-k", k)
        soft = torch.softmax(logits, -1)
        cases = {
            "soft (all experts)": lambda bank=bank, x=x, soft=soft: bank.soft(x, soft),
            "top-k batched": lambda bank=bank, x=x, c=chosen, w=w: bank.sparse(x, c, w),
            "top-k looped": lambda bank=bank, x=x, wt=weights: looped_experts(bank, x, wt),
            "dense (iso-active)": lambda dense=dense, x=x: dense(x),
        }
        row = {}
        with torch.no_grad():
            for name, fn in cases.items():
                timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=1)
                fn()  # warm-up
                row[name] = timer.blocked_autorange(min_run_time=1.0).median * 1e3
        found[f"E={n_experts}, k={k}"] = row
    return found

"""What fusing operators would buy on this CPU (``nox -s bench``, item 13).

Item 12 shows that most of a run's time is not its matrix products but elementwise work and
each operator's fixed cost, which a compiler that fuses operators is meant to remove. This item
measures that instead of assuming it, at Table 5's shape (batch 512, T = 12, d 16, 4 experts):

1. one training step of a gate (forward, a next-domain loss, backward) eager against the same
   step through ``torch.compile`` (inductor, one graph); the first compiled call, which compiles,
   is reported apart;
2. torch's softmax over a short last axis (a router's experts, one attention head's positions)
   against ``exp(x - max) / sum`` written out, forward and forward + backward, with their largest
   difference: the families already score with ``x - logsumexp(x)`` for this reason.

Neither is applied to the runs: both change the numbers' last bits (item 2's difference is shown),
and item 1 makes most gates' steps slower here, not faster (see the README).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch

from suite.bench.roofline import median_ms
from suite.gates.entries import get_gate
from suite.tasks.family import get_family
from suite.tasks.loading import load_task

TASK = "transition/anticipation"
COMPILE_GATES = ("affinity", "beta+ant", "causal-attention", "gru")
SOFTMAX_SHAPES = ((512, 12, 4), (512, 12, 12), (256, 63, 5))


def _training_step(
    gate: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor
) -> Callable[[], torch.Tensor]:
    def loss() -> torch.Tensor:
        logits = gate(x).logits
        logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        return -logp.gather(-1, targets.unsqueeze(-1)).mean()

    return loss


def compiled_steps(
    gates: tuple[str, ...] = COMPILE_GATES,
    profile: str = "paper",
    batch: int | None = None,
    min_run_time: float = 1.0,
) -> dict[str, dict[str, Any]]:
    """{gate: {eager_ms, compiled_ms, compile_s, ratio, max_abs_diff}}, or {gate: {error}} where
    compiling fails (no C++ compiler, an operator inductor cannot lower). Inductor's on-disk
    cache is pointed at an empty folder for the call, so ``compile_s`` is a cold compile."""
    with (
        tempfile.TemporaryDirectory() as cache,
        mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache}),
    ):
        return _compiled_steps(gates, profile, batch, min_run_time)


def _compiled_steps(
    gates: tuple[str, ...], profile: str, batch: int | None, min_run_time: float
) -> dict[str, dict[str, Any]]:
    spec = load_task(TASK, profile)
    info = get_family(spec.family).task_info(spec)
    B = batch or spec.train.batch_size
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(B, info.seq_len, info.d_model, generator=generator)
    targets = torch.randint(0, info.n_experts, (B, info.seq_len), generator=generator)
    found: dict[str, dict[str, Any]] = {}
    for gate_id in gates:
        torch.manual_seed(0)
        gate = get_gate(gate_id).build(info)
        eager = _training_step(gate, x, targets)
        eager_ms = median_ms(lambda eager=eager: eager().backward(), min_run_time)
        twin = copy.deepcopy(gate)
        torch._dynamo.reset()
        try:
            compiled = torch.compile(_training_step(twin, x, targets))
            started = time.perf_counter()
            first = compiled()
            first.backward()
            compile_s = time.perf_counter() - started
            compiled_ms = median_ms(lambda c=compiled: c().backward(), min_run_time)
        except Exception as exc:  # no compiler here: say so, the other items go on
            found[gate_id] = {"eager_ms": eager_ms, "error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        found[gate_id] = {
            "eager_ms": eager_ms,
            "compiled_ms": compiled_ms,
            "compile_s": compile_s,
            "ratio": compiled_ms / eager_ms,
            "max_abs_diff": float((first.detach() - eager().detach()).abs()),
        }
    torch._dynamo.reset()
    return found


def _written_out(s: torch.Tensor) -> torch.Tensor:
    e = (s - s.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def softmax_costs(
    shapes: tuple[tuple[int, ...], ...] = SOFTMAX_SHAPES, min_run_time: float = 0.5
) -> dict[str, dict[str, float]]:
    """{"B×T×E": {torch_ms, written_ms, torch_fwd_bwd_ms, written_fwd_bwd_ms, max_abs_diff}}."""
    generator = torch.Generator().manual_seed(0)
    return {
        "×".join(map(str, shape)): _softmax_row(
            torch.randn(*shape, generator=generator, requires_grad=True),
            torch.randn(*shape, generator=generator),
            min_run_time,
        )
        for shape in shapes
    }


def _softmax_row(s: torch.Tensor, grad: torch.Tensor, min_run_time: float) -> dict[str, float]:
    def torchs(t: torch.Tensor) -> torch.Tensor:
        return torch.softmax(t, -1)

    row: dict[str, float] = {}
    for name, fn in (("torch", torchs), ("written", _written_out)):
        with torch.no_grad():
            row[f"{name}_ms"] = median_ms(lambda fn=fn: fn(s), min_run_time)
        row[f"{name}_fwd_bwd_ms"] = median_ms(lambda fn=fn: fn(s).backward(grad), min_run_time)
    with torch.no_grad():
        row["max_abs_diff"] = float((torchs(s) - _written_out(s)).abs().max())
    return row


def fusion_costs() -> dict[str, Any]:
    """The two measurements under their keys in ``results/bench.json``."""
    return {"compiled_step_ms": compiled_steps(), "softmax_ms": softmax_costs()}


def print_fusion(found: dict[str, Any]) -> None:
    print(f"\nOne training step at Table 5's shape ({TASK}, one thread), eager vs torch.compile:")
    print(f"  {'gate':<18} {'eager ms':>9} {'compiled ms':>12} {'ratio':>6} {'compile s':>10}")
    for gate_id, row in found["compiled_step_ms"].items():
        if "error" in row:
            print(f"  {gate_id:<18} {row['eager_ms']:9.2f}  not compiled: {row['error']}")
            continue
        print(
            f"  {gate_id:<18} {row['eager_ms']:9.2f} {row['compiled_ms']:12.2f} "
            f"{row['ratio']:5.2f}x {row['compile_s']:10.1f}"
        )
    print("  softmax over a short last axis, torch's kernel vs exp(x - max) / sum written out:")
    print(f"  {'shape':<18} {'fwd ms':>14} {'fwd+bwd ms':>16} {'max diff':>9}")
    for shape, row in found["softmax_ms"].items():
        print(
            f"  {shape:<18} {row['torch_ms']:6.3f} / {row['written_ms']:5.3f} "
            f"{row['torch_fwd_bwd_ms']:7.3f} / {row['written_fwd_bwd_ms']:6.3f} "
            f"{row['max_abs_diff']:9.1e}"
        )

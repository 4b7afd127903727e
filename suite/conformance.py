"""Conformance checks every gate passes before it is ranked (the rules of ``suite.contract``).

Each check builds what it needs from a seeded generator, so a report is reproducible; a failing
check says what was perturbed, where the logits moved and by how much, and how to fix it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch import Tensor

from suite.contract import Feedback, GateOutput, RouterGate, TaskInfo
from suite.registry import GateEntry
from suite.seeding import derive_seed, generator, seeded_global_rng

BATCH = 4
MIN_LENGTH = 6  # long enough to catch a gate that peeks ahead, even on single-token tasks
TOLERANCE = 1e-5  # relative to the logits' scale


class CheckResult(BaseModel):
    name: str
    passed: bool
    detail: str = ""
    skipped: bool = False


class ConformanceReport(BaseModel):
    gate: str
    declared_causal: bool
    shape: dict[str, int]
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(c.passed or c.skipped for c in self.checks)

    @property
    def verified_causal(self) -> bool:
        return any(c.name == "causality" and c.passed for c in self.checks)

    def reason(self) -> str:
        failed = [c for c in self.checks if not (c.passed or c.skipped)]
        return "; ".join(f"{c.name}: {c.detail}" for c in failed)


def _scale(t: Tensor) -> float:
    return 1.0 + float(t.detach().abs().max()) if t.numel() else 1.0


def _max_diff(a: Tensor, b: Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max()) if a.numel() else 0.0


def _inputs(info: TaskInfo, seed: int, purpose: str, length: int) -> Tensor:
    g = generator(derive_seed(seed, "conformance", purpose))
    return torch.randn(BATCH, length, info.d_model, generator=g)


def check_output(gate: RouterGate, x: Tensor, n_experts: int) -> CheckResult:
    out = gate(x)
    if not isinstance(out, GateOutput):
        return CheckResult(
            name="output",
            passed=False,
            detail=f"forward returned {type(out).__name__}; return suite.contract.GateOutput",
        )
    expected = (x.shape[0], x.shape[1], n_experts)
    if tuple(out.logits.shape) != expected:
        return CheckResult(
            name="output",
            passed=False,
            detail=f"logits have shape {tuple(out.logits.shape)}, expected (B, T, E) = {expected}",
        )
    if not torch.isfinite(out.logits).all():
        return CheckResult(name="output", passed=False, detail="logits contain NaN or inf")
    if out.aux_loss is not None and (out.aux_loss.numel() != 1 or not torch.isfinite(out.aux_loss)):
        return CheckResult(
            name="output", passed=False, detail="aux_loss must be a finite scalar tensor or None"
        )
    return CheckResult(name="output", passed=True, detail=f"logits {expected}, finite")


def check_causality(gate: RouterGate, x: Tensor, seed: int) -> CheckResult:
    """Perturb every input after position t; logits up to t must not move."""
    reference = gate(x).logits
    g = generator(derive_seed(seed, "conformance", "future"))
    T = x.shape[1]
    worst = (0.0, -1)
    for t in range(T - 1):
        perturbed = x.clone()
        perturbed[:, t + 1 :] = torch.randn(perturbed[:, t + 1 :].shape, generator=g) * 3.0
        moved = _max_diff(gate(perturbed).logits[:, : t + 1], reference[:, : t + 1])
        if moved > worst[0]:
            worst = (moved, t)
    if worst[0] > TOLERANCE * _scale(reference):
        return CheckResult(
            name="causality",
            passed=False,
            detail=f"logits at positions <= {worst[1]} changed by {worst[0]:.3g} when only "
            f"inputs after position {worst[1]} were perturbed: the gate reads the future. "
            "Use only x[:, :t+1] for the logits at t (set causal = False for a ceiling).",
        )
    return CheckResult(name="causality", passed=True, detail=f"checked every t < {T - 1}")


def check_batch_isolation(gate: RouterGate, x: Tensor, seed: int) -> CheckResult:
    """Perturb sequence 0; every other sequence's logits must not move."""
    reference = gate(x).logits
    g = generator(derive_seed(seed, "conformance", "batch"))
    perturbed = x.clone()
    perturbed[0] = torch.randn(perturbed[0].shape, generator=g) * 3.0
    moved = _max_diff(gate(perturbed).logits[1:], reference[1:])
    if moved > TOLERANCE * _scale(reference):
        return CheckResult(
            name="batch_isolation",
            passed=False,
            detail=f"perturbing sequence 0 changed the logits of other sequences by {moved:.3g}: "
            "the gate mixes information across the batch (batch statistics, pooling over B). "
            "Compute each sequence's logits from that sequence only.",
        )
    return CheckResult(name="batch_isolation", passed=True, detail=f"batch of {x.shape[0]}")


def stream_logits(gate: RouterGate, x: Tensor) -> Tensor:
    """Logits (B, T, E) from feeding x to ``step`` one position at a time: the streaming path."""
    state, stepped = gate.initial_state(x.shape[0]), []
    for t in range(x.shape[1]):
        out = gate.step(x[:, t], state)
        stepped.append(out.logits)
        state = out.state
    return torch.stack(stepped, dim=1)


def check_streaming(gate: RouterGate, x: Tensor) -> CheckResult:
    """forward over the whole sequence == repeated step == forward over two chunks."""
    full = gate(x).logits
    T = x.shape[1]
    try:
        stepped = stream_logits(gate, x)
    except NotImplementedError:
        return CheckResult(
            name="streaming",
            passed=False,
            detail="step() is not implemented; a causal gate must stream one token at a time",
        )
    tol = TOLERANCE * _scale(full)
    step_diff = _max_diff(stepped, full)
    if step_diff > tol:
        return CheckResult(
            name="streaming",
            passed=False,
            detail=f"forward and repeated step disagree by {step_diff:.3g} (tolerance {tol:.1g}); "
            "make step() the plain recurrence that forward() computes in parallel",
        )
    k = T // 2
    first = gate(x[:, :k], gate.initial_state(x.shape[0]))
    second = gate(x[:, k:], first.state)
    chunk_diff = _max_diff(torch.cat([first.logits, second.logits], dim=1), full)
    if chunk_diff > tol:
        return CheckResult(
            name="streaming",
            passed=False,
            detail=f"forward over two chunks (state carried at t={k}) disagrees with one forward "
            f"by {chunk_diff:.3g}; forward(x, state) must continue from state",
        )
    return CheckResult(
        name="streaming",
        passed=True,
        detail=f"max difference {max(step_diff, chunk_diff):.2g} (step and chunked)",
    )


def check_parameter_budget(
    gate: RouterGate, task_limit: int | None, declared: int | None
) -> CheckResult:
    """Trainable parameters within the task's limit and the manifest's declared budget."""
    n = sum(p.numel() for p in gate.parameters() if p.requires_grad)
    for limit, whose in ((task_limit, "the task allows"), (declared, "the manifest declares")):
        if limit is not None and n > limit:
            return CheckResult(
                name="parameter_budget",
                passed=False,
                detail=f"{whose} at most {limit:,} trainable parameters; this gate has {n:,}. "
                "Shrink the gate (or correct parameter_budget in submission.yaml).",
            )
    limits = [v for v in (task_limit, declared) if v is not None]
    return CheckResult(
        name="parameter_budget",
        passed=True,
        detail=f"{n:,} trainable parameters" + (f" (limit {min(limits):,})" if limits else ""),
    )


def _train_briefly(
    build: Callable[[], RouterGate], x: Tensor, n_experts: int, seed: int
) -> tuple[RouterGate, Tensor]:
    gate = build()
    gate.train()
    g = generator(derive_seed(seed, "conformance", "targets"))
    targets = torch.randint(0, n_experts, x.shape[:2], generator=g)
    params = [p for p in gate.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-2) if params else None
    for step in range(3):
        out = gate(x)
        loss = F.cross_entropy(out.logits.reshape(-1, n_experts), targets.reshape(-1))
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        error = (targets.unsqueeze(-1) != torch.arange(n_experts)).float()
        gate.observe(Feedback(expert_error=error, step=step))
    gate.eval()
    return gate, gate(x).logits.detach()


def check_determinism(
    build: Callable[[], RouterGate], x: Tensor, n_experts: int, seed: int
) -> CheckResult:
    """Two builds from one seed, trained for three steps, must be bit-identical."""
    first, logits_a = _train_briefly(build, x, n_experts, seed)
    second, logits_b = _train_briefly(build, x, n_experts, seed)
    state_a, state_b = first.state_dict(), second.state_dict()
    differing = [k for k in state_a if not torch.equal(state_a[k], state_b[k])]
    if differing or not torch.equal(logits_a, logits_b):
        what = f"parameters/buffers {differing}" if differing else "logits"
        return CheckResult(
            name="determinism",
            passed=False,
            detail=f"two runs from the same seed differ in {what}; draw randomness only from "
            "the global RNG at construction (the harness seeds it) or from a seeded generator",
        )
    return CheckResult(name="determinism", passed=True, detail="3 training steps, bit-identical")


def run_conformance(
    entry: GateEntry,
    info: TaskInfo,
    overrides: Mapping[str, Any] | None,
    seed: int,
    max_params: int | None = None,
    declared_budget: int | None = None,
) -> ConformanceReport:
    """Every check, in order; a check that raises fails with the exception's message."""
    length = max(info.seq_len, MIN_LENGTH)
    shape = {"batch": BATCH, "length": length, "d_model": info.d_model, "n_experts": info.n_experts}

    def build() -> RouterGate:
        with seeded_global_rng(seed):
            return entry.build(info, overrides)

    checks: list[CheckResult] = []

    def attempt(name: str, fn: Callable[[], CheckResult]) -> bool:
        try:
            with torch.no_grad() if name != "determinism" else torch.enable_grad():
                result = fn()
        except Exception as exc:  # untrusted code: any failure is a finding, not a crash
            last = traceback.extract_tb(exc.__traceback__)[-1]
            result = CheckResult(
                name=name,
                passed=False,
                detail=f"raised {type(exc).__name__}: {exc} (at {last.filename}:{last.lineno})",
            )
        checks.append(result)
        return result.passed

    gate_box: list[RouterGate] = []

    def built() -> CheckResult:
        gate_box.append(build().eval())
        return CheckResult(name="build", passed=True, detail=type(gate_box[0]).__name__)

    if not attempt("build", built):
        return ConformanceReport(
            gate=entry.id, declared_causal=entry.causal, shape=shape, checks=checks
        )
    gate = gate_box[0]
    attempt("parameter_budget", lambda: check_parameter_budget(gate, max_params, declared_budget))
    x = _inputs(info, seed, "x", length)
    if not attempt("output", lambda: check_output(gate, x, info.n_experts)):
        return ConformanceReport(
            gate=entry.id, declared_causal=entry.causal, shape=shape, checks=checks
        )
    if entry.causal:
        attempt("causality", lambda: check_causality(gate, x, seed))
    else:
        checks.append(
            CheckResult(
                name="causality",
                passed=False,
                skipped=True,
                detail="declared non-causal: shown as a labelled ceiling, never ranked",
            )
        )
    attempt("batch_isolation", lambda: check_batch_isolation(gate, x, seed))
    if entry.causal:
        attempt("streaming", lambda: check_streaming(gate, x))
    attempt("determinism", lambda: check_determinism(build, x, info.n_experts, seed))
    return ConformanceReport(
        gate=entry.id, declared_causal=entry.causal, shape=shape, checks=checks
    )

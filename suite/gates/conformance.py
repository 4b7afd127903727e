"""Conformance checks every gate passes before it is ranked (the rules of ``suite.contract``).

Each property is written once, against the gate kind's adapter (``suite.gates.kinds``), so it
applies to routers, updaters and any kind registered later. Each check builds what it needs from a
seeded generator, so a report is reproducible; a failing check says what was perturbed, where the
outputs moved and by how much, and how to fix it. A gate ends *ranked* (every check passed),
*ceiling* (declared non-causal, shown but never ranked) or *rejected* (with the reason).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from pydantic import BaseModel
from torch import Tensor

from suite.contract import Gate, Side, State, TaskInfo, deliver_feedback
from suite.gates.kinds import GateKind, kinds, side_at, side_redrawn
from suite.gates.proxy import parameter_grads, parameter_state, trainable_count
from suite.seeding import derive_seed, generator, seeded_global_rng
from suite.tasks.training import make_optimizer

BATCH = 4
MIN_LENGTH = 6  # long enough to catch a gate that peeks ahead, even on single-token tasks
TOLERANCE = 1e-5  # relative to the outputs' scale
Verdict = Literal["ranked", "ceiling", "rejected"]


class CheckResult(BaseModel):
    name: str
    passed: bool
    detail: str = ""
    skipped: bool = False


class ConformanceReport(BaseModel):
    gate: str
    kind: str = "router"
    declared_causal: bool
    shape: dict[str, int]
    checks: list[CheckResult]
    seconds: float | None = None  # 3 training steps on the probe: a rough cost, to plan jobs

    @property
    def passed(self) -> bool:
        return all(c.passed or c.skipped for c in self.checks)

    @property
    def verified_causal(self) -> bool:
        return any(c.name == "causality" and c.passed for c in self.checks)

    @property
    def verdict(self) -> Verdict:
        if not self.passed:
            return "rejected"
        return "ranked" if self.verified_causal else "ceiling"

    def reason(self) -> str:
        failed = [c for c in self.checks if not (c.passed or c.skipped)]
        return "; ".join(f"{c.name}: {c.detail}" for c in failed)


def scale(t: Tensor) -> float:
    """1 + the largest magnitude: tolerances are relative to the outputs' scale."""
    return 1.0 + float(t.detach().abs().max()) if t.numel() else 1.0


def max_diff(a: Tensor, b: Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max()) if a.numel() else 0.0


def _tensors(state: State) -> list[Tensor]:
    """The tensors inside a state (a tensor, nested tuples/lists/dicts of them, or None)."""
    if isinstance(state, Tensor):
        return [state]
    if isinstance(state, list | tuple):
        return [t for s in state for t in _tensors(s)]
    if isinstance(state, dict):
        return [t for k in sorted(state) for t in _tensors(state[k])]
    return []


class Probe:
    """One gate under test with its kind's adapter, its inputs and its side inputs."""

    def __init__(self, gate: Gate, kind: GateKind, info: TaskInfo, seed: int, length: int):
        self.gate, self.kind, self.info, self.seed = gate, kind, info, seed
        g = generator(derive_seed(seed, "conformance", "x"))
        self.x = torch.randn(BATCH, length, info.d_model, generator=g)
        self.side = self._side(length, g)

    def _side(self, length: int, g: torch.Generator) -> Side | None:
        if self.info.inputs == ("x",):
            return None
        token_ids = task_id = None
        if "token_ids" in self.info.inputs:
            vocab = int(self.info.get("vocab_size", 2))
            token_ids = torch.randint(0, vocab, (BATCH, length), generator=g)
        if "task_id" in self.info.inputs:
            task_id = torch.randint(0, int(self.info.get("n_tasks", 2)), (BATCH,), generator=g)
        return Side(token_ids=token_ids, task_id=task_id)

    def forward(self, x: Tensor, state: State = None, side: Side | None = None) -> Any:
        return self.kind.forward(self.gate, x, state, self.side if side is None else side)

    def outputs(self, x: Tensor, side: Side | None = None) -> Tensor:
        return self.kind.per_position(self.forward(x, side=side))

    def future_side(self, t: int, g: torch.Generator) -> Side | None:
        """The side inputs with the token ids after position t redrawn (task ids are per
        sequence, not per position)."""
        vocab = int(self.info.get("vocab_size", 2))
        return side_redrawn(self.side, slice(None), slice(t + 1, None), vocab, g)

    def perturbed(self, purpose: str) -> tuple[Tensor, torch.Generator]:
        return self.x.clone(), generator(derive_seed(self.seed, "conformance", purpose))


def check_output(probe: Probe) -> CheckResult:
    out = probe.forward(probe.x)
    problem = probe.kind.check_output(out, probe.info, BATCH, probe.x.shape[1])
    if problem is None and not torch.isfinite(probe.kind.per_position(out)).all():
        problem = "outputs contain NaN or inf"
    aux = probe.kind.aux_loss(out) if problem is None else None
    if aux is not None and (aux.numel() != 1 or not torch.isfinite(aux)):
        problem = "aux_loss must be a finite scalar tensor or None"
    if problem is not None:
        return CheckResult(name="output", passed=False, detail=problem)
    shape = tuple(probe.kind.per_position(out).shape)
    return CheckResult(name="output", passed=True, detail=f"outputs {shape}, finite")


def check_causality(probe: Probe) -> CheckResult:
    """Perturb every input after position t (x and token ids); outputs up to t must not move."""
    reference = probe.outputs(probe.x)
    x, g = probe.perturbed("future")
    T = x.shape[1]
    worst = (0.0, -1)
    for t in range(T - 1):
        perturbed = x.clone()
        perturbed[:, t + 1 :] = torch.randn(perturbed[:, t + 1 :].shape, generator=g) * 3.0
        side = probe.future_side(t, g)
        moved = max_diff(probe.outputs(perturbed, side)[:, : t + 1], reference[:, : t + 1])
        if moved > worst[0]:
            worst = (moved, t)
    if worst[0] > TOLERANCE * scale(reference):
        return CheckResult(
            name="causality",
            passed=False,
            detail=f"outputs at positions <= {worst[1]} changed by {worst[0]:.3g} when only "
            f"inputs after position {worst[1]} were perturbed: the gate reads the future. "
            "Use only x[:, :t+1] for the output at t (set causal = False for a ceiling).",
        )
    return CheckResult(name="causality", passed=True, detail=f"checked every t < {T - 1}")


def check_batch_isolation(probe: Probe) -> CheckResult:
    """Perturb sequence 0; every other sequence's outputs must not move."""
    reference = probe.outputs(probe.x)
    x, g = probe.perturbed("batch")
    x[0] = torch.randn(x[0].shape, generator=g) * 3.0
    moved = max_diff(probe.outputs(x)[1:], reference[1:])
    if moved > TOLERANCE * scale(reference):
        return CheckResult(
            name="batch_isolation",
            passed=False,
            detail=f"perturbing sequence 0 changed the outputs of other sequences by {moved:.3g}: "
            "the gate mixes information across the batch (batch statistics, pooling over B). "
            "Compute each sequence's outputs from that sequence only.",
        )
    return CheckResult(name="batch_isolation", passed=True, detail=f"batch of {BATCH}")


def _grads(probe: Probe, outputs: Tensor) -> list[Tensor]:
    """Gradients of a fixed projection of the outputs with respect to the gate's parameters."""
    g = generator(derive_seed(probe.seed, "conformance", "projection"))
    weights = torch.randn(outputs.shape, generator=g)
    return parameter_grads(probe.gate, (outputs * weights).sum())


def _largest_diff(a: list[Tensor], b: list[Tensor]) -> tuple[float, float]:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return float("inf"), 1.0
    diffs = [max_diff(x, y) for x, y in zip(a, b, strict=True)]
    scales = [scale(x) for x in a]
    return max(diffs, default=0.0), max(scales, default=1.0)


def check_streaming(probe: Probe) -> CheckResult:
    """forward over the whole sequence == repeated step == forward over two chunks, in outputs,
    final state and parameter gradients."""
    x = probe.x
    with torch.enable_grad():
        full_out = probe.forward(x)
        full = probe.kind.per_position(full_out)
        try:
            stepped, step_state = probe.kind.stream(probe.gate, x, side=probe.side)
        except NotImplementedError:
            return CheckResult(
                name="streaming",
                passed=False,
                detail="step() is not implemented; a causal gate must stream one token at a time",
            )
        full_grads, step_grads = _grads(probe, full), _grads(probe, stepped)
    tol = TOLERANCE * scale(full)
    problems = []
    step_diff = max_diff(stepped, full)
    if step_diff > tol:
        problems.append(
            f"forward and repeated step disagree by {step_diff:.3g} (tolerance {tol:.1g}); "
            "make step() the plain recurrence that forward() computes in parallel"
        )
    state_diff, state_scale = _largest_diff(
        _tensors(probe.kind.state(full_out)), _tensors(step_state)
    )
    if state_diff > TOLERANCE * state_scale:
        problems.append(
            f"the final state of forward and of repeated step differ by {state_diff:.3g}; "
            "forward must return the state after the last position, as step does"
        )
    grad_diff, grad_scale = _largest_diff(full_grads, step_grads)
    if grad_diff > TOLERANCE * grad_scale:
        problems.append(
            f"parameter gradients through forward and through repeated step differ by "
            f"{grad_diff:.3g}; the parallel form must compute the same function as the recurrence"
        )
    T = x.shape[1]
    k = T // 2
    first = probe.forward(
        x[:, :k], probe.gate.initial_state(BATCH), side_at(probe.side, slice(0, k))
    )
    second = probe.forward(x[:, k:], probe.kind.state(first), side_at(probe.side, slice(k, T)))
    chunked = torch.cat([probe.kind.per_position(first), probe.kind.per_position(second)], dim=1)
    chunk_diff = max_diff(chunked, full)
    if chunk_diff > tol:
        problems.append(
            f"forward over two chunks (state carried at t={k}) disagrees with one forward "
            f"by {chunk_diff:.3g}; forward(x, state) must continue from state"
        )
    if problems:
        return CheckResult(name="streaming", passed=False, detail="; ".join(problems))
    worst = max(step_diff, chunk_diff)
    return CheckResult(
        name="streaming",
        passed=True,
        detail=f"max difference {worst:.2g} (step and chunked; final state and gradients agree)",
    )


def check_parameter_budget(gate: Gate, task_limit: int | None, declared: int | None) -> CheckResult:
    """Trainable parameters within the task's limit and the manifest's declared budget."""
    n = trainable_count(gate)
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


def _train_briefly(build: Callable[[], Gate], probe: Probe) -> tuple[Gate, Tensor]:
    gate = build()
    trained = Probe(gate, probe.kind, probe.info, probe.seed, probe.x.shape[1])
    gate.train()
    g = generator(derive_seed(probe.seed, "conformance", "targets"))
    targets = torch.randint(0, max(1, probe.info.n_experts), probe.x.shape[:2], generator=g)
    optimizer = make_optimizer(1e-2, [gate])
    for step in range(3):
        out = trained.forward(probe.x)
        loss = probe.kind.probe_loss(out, targets)
        aux = probe.kind.aux_loss(out)
        if aux is not None:
            loss = loss + aux
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        feedback = probe.kind.feedback(probe.info, targets, step)
        if feedback is not None:
            deliver_feedback(gate, feedback)
    gate.eval()
    return gate, trained.outputs(probe.x).detach()


def check_determinism(
    build: Callable[[], Gate], probe: Probe, timing: dict[str, float] | None = None
) -> CheckResult:
    """Two builds from one seed, trained for three steps, must be bit-identical. ``timing``
    gets the second's seconds (the first pays the process's warm-up)."""
    first, out_a = _train_briefly(build, probe)
    started = time.perf_counter()
    second, out_b = _train_briefly(build, probe)
    if timing is not None:
        timing["train"] = time.perf_counter() - started
    state_a, state_b = parameter_state(first), parameter_state(second)
    differing = [k for k in state_a if k not in state_b or not torch.equal(state_a[k], state_b[k])]
    if differing or not torch.equal(out_a, out_b):
        what = f"parameters/buffers {differing}" if differing else "outputs"
        return CheckResult(
            name="determinism",
            passed=False,
            detail=f"two runs from the same seed differ in {what}; draw randomness only from "
            "the global RNG at construction (the harness seeds it) or from a seeded generator",
        )
    return CheckResult(name="determinism", passed=True, detail="3 training steps, bit-identical")


def run_conformance(
    entry: Any,
    info: TaskInfo,
    overrides: Mapping[str, Any] | None,
    seed: int,
    max_params: int | None = None,
    declared_budget: int | None = None,
    build: Callable[[], Gate] | None = None,
) -> ConformanceReport:
    """Every check, in order, for a gate entry (its ``id`` and ``causal``); a check that raises
    fails with the exception's message. ``build`` makes a fresh gate from ``seed``; by default
    ``entry.build`` here, for an untrusted gate a proxy to the gate's own process."""
    kind = kinds.get(info.kind)
    length = max(info.seq_len, MIN_LENGTH)
    shape = {"batch": BATCH, "length": length, "d_model": info.d_model, "n_experts": info.n_experts}
    checks: list[CheckResult] = []
    timing: dict[str, float] = {}

    def report() -> ConformanceReport:
        return ConformanceReport(
            gate=entry.id, kind=kind.name, declared_causal=entry.causal, shape=shape, checks=checks,
            seconds=timing.get("train"),
        )  # fmt: skip

    def build_here() -> Gate:
        with seeded_global_rng(seed):
            return entry.build(info, overrides)

    build = build or build_here

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

    built: list[Probe] = []

    def build_probe() -> CheckResult:
        gate = build().eval()
        built.append(Probe(gate, kind, info, seed, length))
        return CheckResult(name="build", passed=True, detail=type(gate).__name__)

    if not attempt("build", build_probe):
        return report()
    probe = built[0]
    attempt(
        "parameter_budget", lambda: check_parameter_budget(probe.gate, max_params, declared_budget)
    )
    if not attempt("output", lambda: check_output(probe)):
        return report()
    if entry.causal:
        attempt("causality", lambda: check_causality(probe))
    else:
        checks.append(
            CheckResult(
                name="causality",
                passed=False,
                skipped=True,
                detail="declared non-causal: shown as a labelled ceiling, never ranked",
            )
        )
    attempt("batch_isolation", lambda: check_batch_isolation(probe))
    if entry.causal:
        attempt("streaming", lambda: check_streaming(probe))
    attempt("determinism", lambda: check_determinism(build, probe, timing))
    return report()

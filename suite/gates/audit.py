"""Audits on the real run: the contract's rules checked again on the real batches, in the real
configuration (batch size, length, device, train or eval mode, after training has started), at
forward calls the gate cannot predict (training and evaluation calls each in every window).

The fixed-shape conformance checks are the fast first gate; a gate can tell their small inputs
apart from the real run. The harness therefore wraps every gate it runs in an ``AuditedGate``.
At calls drawn from a seed held by the harness (recorded in the run's record afterwards), after
the real call, it makes side calls on a copy of the gate made only then (so a gate that notices
the copy learns of the audit too late), each drawing the random numbers the real call drew, from
a forked RNG, so the real computation is exactly what it would have been unaudited:

* no hidden state across calls: the copy gives the real call's output on its input, twice;
* causality: the future of a secret position perturbed, the past outputs unchanged;
* batch isolation: one secret sequence perturbed, the other sequences' outputs unchanged.

A violation raises ``AuditViolation`` naming the call, the check and its size; the harness records
the run as rejected. Honest gates' numbers are bit-identical with and without audits.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from suite.contract import Feedback, Gate, Side, State
from suite.gates.conformance import TOLERANCE, max_diff, scale
from suite.gates.kinds import GateKind, side_redrawn
from suite.gates.proxy import release, side_twin
from suite.gates.violations import AuditViolation
from suite.seeding import derive_seed, generator

# One audited call drawn from each window of forward-call indices: every stretch of a run, short
# or long, is audited at least once, at a call the gate cannot predict.
WINDOWS = (
    (1, 4), (5, 16), (17, 64), (65, 256), (257, 1024), (1025, 4096), (4097, 16384), (16385, 65536)
)  # fmt: skip


def _rng_states(x: Tensor) -> tuple[Tensor, Tensor | None]:
    """The global random states (CPU, and ``x``'s GPU) before a call."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(x.device) if x.is_cuda else None


def audit_calls(seed: int) -> list[int]:
    """The forward-call indices (0-based) to audit: one drawn from each window."""
    g = generator(derive_seed(seed, "audit", "calls"))
    return [int(torch.randint(low, high + 1, (1,), generator=g)) for low, high in WINDOWS]


@dataclass
class Ledger:
    """A run's audit schedule, counts and findings. Shared by the gate and every copy a family
    makes of it (the facts family evaluates on fresh copies of the trained gate): a copy carries
    on the count, and its audits go into the run's record."""

    pending: dict[str, set[int]]  # mode -> the calls to audit
    mode_calls: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    calls: int = 0
    done: list[str] = field(default_factory=list)  # one line per audit passed, for the record


class AuditedGate(nn.Module):
    """A gate as the harness runs it: the same calls, parameters and outputs, audited at secret
    calls. Families see the contract's interface and nothing else changes for them."""

    def __init__(self, gate: Gate, kind: GateKind, seed: int) -> None:
        super().__init__()
        self.inner = gate
        self.kind_adapter = kind
        self.seed = seed
        # Training and evaluation calls are counted and audited apart: a gate that cheats only
        # in eval mode meets audits however long its training ran (eval calls of a long run
        # would otherwise all lie past the last window).
        pending = {"train": audit_calls(seed), "eval": audit_calls(derive_seed(seed, "eval"))}
        self.ledger = Ledger({mode: set(calls) for mode, calls in pending.items()})

    def __deepcopy__(self, memo: dict[int, Any]) -> AuditedGate:
        """A copy of the gate (made in its own process for a proxy), audited on the same
        ledger."""
        twin = AuditedGate(copy.deepcopy(self.inner, memo), self.kind_adapter, self.seed)
        twin.ledger = self.ledger
        return twin.train(self.training)

    @property
    def calls(self) -> int:
        return self.ledger.calls

    @property
    def done(self) -> list[str]:
        return self.ledger.done

    # -- the contract, delegated ------------------------------------------------------------

    @property
    def info(self) -> Any:
        return self.inner.info

    def forward(self, x: Tensor, state: State = None, side: Side | None = None) -> Any:
        call = self._count()
        if call is None:
            return self.kind_adapter.forward(self.inner, x, state, side)
        rng = _rng_states(x)
        out = self.kind_adapter.forward(self.inner, x, state, side)
        # Only now, with the real output fixed, is the gate copied for the side calls: a gate
        # that notices the copy (its __deepcopy__, the clone command) learns of the audit too
        # late to behave for it. The real call must give what the copy gives on the same input.
        self._audit(call, x, state, side, rng, self.kind_adapter.per_position(out).detach())
        return out

    def before_call(self, x: Tensor, state: State = None, side: Side | None = None) -> None:
        """Count one forward call and audit it (before it) if its index is secret-drawn: for a
        caller that runs the gate's computation itself (GateBench's own baselines, their seeds
        vectorised together), which calls this per seed."""
        call = self._count()
        if call is not None:
            self._audit(call, x, state, side, _rng_states(x))

    def _count(self) -> int | None:
        """Count a forward call; its index when it is one of the secret-drawn ones."""
        mode, ledger = "train" if self.training else "eval", self.ledger
        due = ledger.mode_calls[mode] in ledger.pending[mode]
        ledger.mode_calls[mode] += 1
        ledger.calls += 1
        return ledger.calls - 1 if due else None

    def step(self, x_t: Tensor, state: State = None, side: Side | None = None) -> Any:
        return self.kind_adapter.step(self.inner, x_t, state, side)

    def initial_state(self, batch_size: int) -> State:
        return self.inner.initial_state(batch_size)

    def observe(self, feedback: Feedback) -> None:
        self.inner.observe(feedback)

    def begin_task(self, index: int) -> None:
        self.inner.begin_task(index)

    def end_task(self, index: int) -> None:
        self.inner.end_task(index)

    def diagnostics(self) -> dict[str, Tensor]:
        return self.inner.diagnostics()

    # -- the audit ------------------------------------------------------------------------------

    def _audit(
        self,
        call: int,
        x: Tensor,
        state: State,
        side: Side | None,
        rng: tuple[Tensor, Any],
        real: Tensor | None = None,
    ) -> None:
        """The side calls' checks on a copy of the gate, each drawing from ``rng`` (the random
        state before the real call); ``real``: the real call's output, which the copy must give
        again on the same input."""
        twin = side_twin(self.inner)  # side calls never touch the real gate's state
        try:
            self._side_calls(twin, x, state, side, call, rng, real)
        finally:
            release(twin)
        mode = "train" if self.training else "eval"
        self.done.append(f"call {call}: batch {x.shape[0]}, length {x.shape[1]}, {mode}: passed")

    def _side_calls(
        self,
        twin: Any,
        x: Tensor,
        state: State,
        side: Side | None,
        call: int,
        rng: tuple[Tensor, Any],
        real: Tensor | None,
    ) -> None:
        g = generator(derive_seed(self.seed, "audit", call))
        devices = [x.device] if x.is_cuda else []
        cpu_rng, cuda_rng = rng

        def outputs(inputs: Tensor, side_in: Side | None = side) -> Tensor:
            torch.set_rng_state(cpu_rng)  # every side call draws what the real call drew
            if cuda_rng is not None:
                torch.cuda.set_rng_state(cuda_rng, x.device)
            out = self.kind_adapter.forward(twin, inputs, state, side_in)
            return self.kind_adapter.per_position(out).detach()

        vocab = int(self.info.get("vocab_size", 2))

        def redrawn(rows: Any, cols: Any) -> Side | None:
            return side_redrawn(side, rows, cols, vocab, g)

        with torch.random.fork_rng(devices=devices), torch.no_grad():
            first = outputs(x)
            again = outputs(x)
            tol = TOLERANCE * scale(first)
            moved = max_diff(first, again)
            if moved > tol:
                self._reject(call, "hidden state across calls", moved, "the same input twice")
            moved = 0.0 if real is None else max_diff(real, first)
            if moved > tol:
                what = "the real call, then a copy of the gate made after it, on the same input"
                self._reject(call, "hidden state across calls", moved, what)
            B, T = x.shape[0], x.shape[1]
            if T > 1 and self.inner.causal:  # a declared ceiling is shown, never ranked
                t = int(torch.randint(0, T - 1, (1,), generator=g))
                future = x.clone()
                future[:, t + 1 :] = torch.randn(future[:, t + 1 :].shape, generator=g).to(x) * 3
                after = redrawn(slice(None), slice(t + 1, None))
                moved = max_diff(outputs(future, after)[:, : t + 1], first[:, : t + 1])
                if moved > tol:
                    self._reject(call, "causality", moved, f"inputs after position {t} perturbed")
            if B > 1:
                b = int(torch.randint(0, B, (1,), generator=g))
                other = x.clone()
                other[b] = torch.randn(other[b].shape, generator=g).to(x) * 3
                keep = torch.arange(B, device=x.device) != b
                moved = max_diff(outputs(other, redrawn(b, slice(None)))[keep], first[keep])
                if moved > tol:
                    self._reject(call, "batch isolation", moved, f"sequence {b} perturbed")

    @staticmethod
    def _reject(call: int, check: str, size: float, what: str) -> None:
        raise AuditViolation(
            f"audit at forward call {call} on the real batch: {check} violated by {size:.3g} "
            f"({what}); the gate behaves differently on the real run than in the conformance "
            "checks"
        )

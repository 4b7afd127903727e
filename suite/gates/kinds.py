"""Gate kinds: what the harness needs to know to call, check and train a gate of each kind.

The contract (``suite.contract``) says what a gate author implements; a ``GateKind`` is the small
adapter the harness uses on top of it: how to call forward and step (with the family's side
inputs where the gate takes them), which tensor holds the per-position output that causality,
streaming and isolation are checked on, and which shape it must have. Conformance is written once
per property against this adapter, so a new kind (the facts family's updater, or a toy kind in the
tests) only registers an adapter.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from suite.contract import (
    Feedback,
    Gate,
    GateOutput,
    RouterGate,
    Side,
    State,
    TaskInfo,
    UpdaterGate,
    UpdaterOutput,
    adapted_shapes,
)
from suite.registry import Registry


def side_at(side: Side | None, positions: slice | int) -> Side | None:
    """The side inputs of some positions (token ids are per position, a task id per sequence)."""
    if side is None or side.token_ids is None:
        return side
    return side._replace(token_ids=side.token_ids[:, positions])


def side_redrawn(
    side: Side | None, rows: Any, cols: Any, vocab: int, g: torch.Generator
) -> Side | None:
    """The side inputs with the token ids at ``[rows, cols]`` redrawn from ``g``: a token id is
    input as much as x (the lm family's x is its embedding), so perturbations reach both."""
    if side is None or side.token_ids is None:
        return side
    ids = side.token_ids.clone()
    ids[rows, cols] = torch.randint(0, vocab, ids[rows, cols].shape, generator=g).to(ids)
    return side._replace(token_ids=ids)


def takes_side(gate: Gate) -> bool:
    """Whether the gate's forward accepts the family's side inputs (a third argument)."""
    params = inspect.signature(gate.forward).parameters
    return "side" in params


class GateKind:
    """The adapter of one gate kind; subclasses override what differs."""

    name: str = ""
    base: type[Gate] = Gate
    output_type: type = tuple

    # -- calling --------------------------------------------------------------------------------

    def forward(self, gate: Gate, x: Tensor, state: State = None, side: Side | None = None) -> Any:
        if side is not None and takes_side(gate):
            return gate(x, state, side)
        return gate(x, state) if state is not None else gate(x)

    def step(self, gate: Gate, x_t: Tensor, state: State, side_t: Side | None = None) -> Any:
        if side_t is not None and takes_side(gate):
            return gate.step(x_t, state, side_t)
        return gate.step(x_t, state)

    def stream(
        self, gate: Gate, x: Tensor, state: State = None, side: Side | None = None
    ) -> tuple[Tensor, State]:
        """Outputs (B, T, ...) and the final state from feeding x to ``step`` one position at a
        time: the streaming path, which ``forward`` is checked against."""
        state = gate.initial_state(x.shape[0]) if state is None else state
        stepped = []
        for t in range(x.shape[1]):
            out = self.step(gate, x[:, t], state, side_at(side, t))
            stepped.append(self.per_position(out))
            state = self.state(out)
        return torch.stack(stepped, dim=1), state

    # -- reading outputs ------------------------------------------------------------------------

    def per_position(self, out: Any) -> Tensor:
        """The output checked for causality, isolation and streaming: (B, T, ...) from forward,
        (B, ...) from step."""
        raise NotImplementedError

    def state(self, out: Any) -> State:
        return out.state

    def aux_loss(self, out: Any) -> Tensor | None:
        return getattr(out, "aux_loss", None)

    def expected_shape(self, info: TaskInfo, batch: int, length: int) -> tuple[int, ...]:
        raise NotImplementedError

    def check_output(self, out: Any, info: TaskInfo, batch: int, length: int) -> str | None:
        """A sentence saying what is wrong with a forward output, or None."""
        if not isinstance(out, self.output_type):
            return (
                f"forward returned {type(out).__name__}; return "
                f"suite.contract.{self.output_type.__name__}"
            )
        got = tuple(self.per_position(out).shape)
        expected = self.expected_shape(info, batch, length)
        if got != expected:
            return f"outputs have shape {got}, expected {self.shape_name} = {expected}"
        return None

    shape_name: str = "(B, T, ...)"

    # -- training in the checks -------------------------------------------------------------------

    def probe_loss(self, out: Any, targets: Tensor) -> Tensor:
        """A loss for the determinism and gradient checks; ``targets`` is (B, T) int64."""
        y = self.per_position(out)
        return (y.float() * torch.linspace(-1, 1, y.shape[-1], device=y.device)).mean()

    def feedback(self, info: TaskInfo, targets: Tensor, step: int) -> Feedback | None:
        return None


class RouterKind(GateKind):
    name = "router"
    base = RouterGate
    output_type = GateOutput
    shape_name = "(B, T, E)"

    def per_position(self, out: GateOutput) -> Tensor:
        return out.logits

    def expected_shape(self, info: TaskInfo, batch: int, length: int) -> tuple[int, ...]:
        return (batch, length, info.n_experts)

    def check_output(self, out: Any, info: TaskInfo, batch: int, length: int) -> str | None:
        problem = super().check_output(out, info, batch, length)
        if problem is not None:
            return problem
        offered = tuple(info.get("requests", ()) or ())
        for name in ("samples", "probes"):
            if getattr(out, name, None) is not None and name not in offered:
                return (
                    f"the output asks for {name}, which this family does not score (it offers "
                    f"{list(offered) or 'no requests'}): check info.get('requests') first"
                )
        if out.samples is not None:
            experts, log_prob = out.samples
            if experts.dim() != 4 or tuple(experts.shape[1:3]) != (batch, length):
                return f"samples.experts has shape {tuple(experts.shape)}, expected (M, B, T, k)"
            if experts.shape[0] < 2 or tuple(log_prob.shape) != tuple(experts.shape[:3]):
                return "samples need M >= 2 sets and log_prob of shape (M, B, T)"
        if out.probes is not None and tuple(out.probes.points.shape) != (
            info.n_experts,
            info.d_model,
        ):
            return f"probes.points has shape {tuple(out.probes.points.shape)}, expected (E, D)"
        return None

    def probe_loss(self, out: GateOutput, targets: Tensor) -> Tensor:
        """Cross-entropy of the logits, plus terms that reach what a router's requests train
        (the samples' log-probabilities, the probes), so a policy-gradient router is trained and
        checked for determinism like any other."""
        E = out.logits.shape[-1]
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, E), targets.reshape(-1))
        if out.samples is not None:
            loss = loss - out.samples.log_prob.mean()
        if out.probes is not None:
            loss = loss + out.probes.points.pow(2).mean()
        return loss

    def feedback(self, info: TaskInfo, targets: Tensor, step: int) -> Feedback:
        error = (targets.unsqueeze(-1) != torch.arange(info.n_experts)).float()  # (B, T, E)
        return Feedback(expert_error=error, step=step)


class UpdaterKind(GateKind):
    """Updaters: the checks run on every factor, flattened and concatenated per position."""

    name = "updater"
    base = UpdaterGate
    output_type = UpdaterOutput
    shape_name = "(B, T, sum of the factors' sizes)"

    def per_position(self, out: UpdaterOutput) -> Tensor:
        lead = out.factors[0].dim() - 2  # 2 (B, T) from forward, 1 (B,) from step
        return torch.cat([f.flatten(lead) for f in out.factors], dim=-1)

    def expected_shape(self, info: TaskInfo, batch: int, length: int) -> tuple[int, ...]:
        size = sum(a[0] * a[1] + b[0] * b[1] for a, b in adapted_shapes(info))
        return (batch, length, size)

    def check_output(self, out: Any, info: TaskInfo, batch: int, length: int) -> str | None:
        if not isinstance(out, UpdaterOutput):
            return f"forward returned {type(out).__name__}; return suite.contract.UpdaterOutput"
        wanted = [(batch, length, *s) for pair in adapted_shapes(info) for s in pair]
        got = [tuple(f.shape) for f in out.factors]
        if got != wanted:
            return (
                f"factors have shapes {got}, expected {wanted}: (A_m (B, T, d_in, rank), "
                "B_m (B, T, rank, d_out)) for each adapted matrix of info.adapted, in order"
            )
        return None


kinds: Registry[GateKind] = Registry("gate kind")


def register_kind(kind: GateKind) -> GateKind:
    return kinds.add(kind.name, kind, origin=type(kind).__module__)


register_kind(RouterKind())
register_kind(UpdaterKind())


def check_forward(
    gate: Gate, out: Any, info: TaskInfo, batch: int, length: int, where: str = "gate.forward"
) -> Any:
    """Fail with a readable reason when a gate returns the wrong thing (used in training loops)."""
    problem = kinds.get(info.kind).check_output(out, info, batch, length)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    return out

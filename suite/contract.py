"""The gate contract: everything a gate author needs, in one file.

A *gate* is the plug-in under test. Every gate, whatever its kind, is a causal sequence model over
token representations::

    forward(x, state) -> output     x: (B, T, D), the whole sequence at once (vectorised over time)
    step(x_t, state)  -> output     x_t: (B, D), one position, for streaming

Kinds differ in what the output holds. A *router* (``RouterGate``) returns routing logits over
experts, ``GateOutput(logits (B, T, E), state, aux_loss)``. An *updater* (``UpdaterGate``, returning
``UpdaterOutput(factors, state, aux_loss)``) writes LoRA factors, a fast-weight state that the
family applies inside its experts. Each task family declares the kind of gate it runs
(``GateKind``); the harness pairs a gate only with families of its kind.

There are two kinds and no third: a layer that replaces the experts rather than the routing
decision (Dynamic Subspace Composition, a dense FFN) is a model option of the family that
measures it, not a gate: the lm family's ``model.layer: dsc | dense`` (``suite.tasks.families.lm``:
``dsc``, ``model``, and the ``efficiency`` table). A gate decides which experts a token uses;
these layers have no experts to choose (DSC picks its atoms with its own router), so the gate's
logits mix nothing there. To put such a layer on a leaderboard beside the routers, a router may
*select* it instead of routing: a gate whose class sets ``layer`` to a name the family lists in
``info.get("layers")`` is a *layer entry*. The family builds that layer in place of its experts,
trains it under the same data, seeds and budget as every router, reports no routing metric for
it, and ignores the entry's logits (``dsc`` and ``dense`` in ``baselines/zoo/layers.py``).

The task family owns everything around the gate (data, experts, loss, optimiser, metrics). Per
training step it calls, in this order::

    out = gate(x)                          # gate(x, state, side) where a family has side inputs
    loss = task_loss(out.logits) + out.aux_loss
    loss.backward(); optimiser.step()
    gate.observe(Feedback(expert_error))   # the harness calls it under torch.no_grad()

Rules the harness checks before a gate is ranked (``suite.gates.conformance``), for every kind:

* causality: outputs at position t depend only on x[:, :t+1] (unless ``causal = False``, which
  makes the gate a labelled ceiling, shown but never ranked);
* streaming: ``forward`` agrees with repeated ``step`` and with ``forward`` over chunks whose state
  is carried across, in outputs, final state and gradients (tolerance 1e-5);
* batch isolation: sequence b's outputs depend only on sequence b;
* determinism: the same seed gives bit-identical outputs and parameters after training steps;
* shapes and finite outputs; the parameter budget of the task and of the manifest.

Requests: a router may ask a family with experts for more than the mixture of its logits, in
``forward`` while training (``self.training`` and grad enabled); a family that honours a request
names it in ``info.get("requests")`` and the harness rejects an output asking a family for what it
does not list. ``samples`` (``Samples``): the family also runs each drawn expert set with equal
weights, adds the mean of their task losses and the leave-one-out policy-gradient term
mean_m (L_m − mean_{j≠m} L_j) · log π(set_m), L per position (ReMix's RLOO). ``probes``
(``Probes``): the family runs point i through every expert j, M_ij = ‖expert j's hidden
activation‖, and adds weight · mean_{i≠j} [ReLU(M_ij − α M_ii) + ReLU(M_ij − α M_jj)] (ERC).
Both are per seed; they make seeds run one after another rather than vectorised.

The smallest complete gate is ``baselines/affinity.py``; a stateful one is
``baselines/composed.py`` with ``baselines/temporal_memory.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

State = Any
"""Per-sequence recurrent state: a tensor, a tuple of tensors, or None for stateless gates."""


@dataclass(frozen=True)
class TaskInfo:
    """What a gate may know about the task when it is built; nothing about the data itself.

    The shapes every family shares are fields; anything else a family declares (``readout``,
    ``target``, ``vocab_size``, ``n_tasks``, ...) is in ``extras`` and also readable as an
    attribute (``info.readout``). A gate that needs an extra checks for it in ``supports``.
    """

    d_model: int  # D, the width of x
    n_experts: int  # E, the number of experts (the width of a router's logits)
    seq_len: int  # T used in training (gates must still accept other lengths)
    kind: str = "router"  # the gate kind the family runs
    inputs: tuple[str, ...] = ("x",)  # side inputs the family provides besides x: see ``Side``
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extras", dict(self.extras))  # a private copy

    def __getattr__(self, name: str) -> Any:
        extras = self.__dict__.get("extras", {})
        if name in extras:
            return extras[name]
        raise AttributeError(
            f"TaskInfo has no field or extra '{name}' (extras here: {sorted(extras) or 'none'}); "
            "check for it in supports() before using it"
        )

    def get(self, name: str, default: Any = None) -> Any:
        """An extra, or ``default`` where this family does not declare it."""
        return self.extras.get(name, default)

    def __hash__(self) -> int:
        return hash(repr(self.as_dict()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskInfo) and self.as_dict() == other.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for job payloads and hashes)."""
        return {
            "d_model": self.d_model,
            "n_experts": self.n_experts,
            "seq_len": self.seq_len,
            "kind": self.kind,
            "inputs": list(self.inputs),
            "extras": dict(sorted(self.extras.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskInfo:
        return cls(**{**data, "inputs": tuple(data.get("inputs", ("x",)))})


class Side(NamedTuple):
    """Inputs besides x that some families provide (``TaskInfo.inputs`` names them).

    A gate that wants them takes a third argument ``side`` in ``forward`` and ``step``; the
    harness passes it only to such gates.
    """

    token_ids: Tensor | None = None  # (B, T) int64 (forward), (B,) (step): a vocabulary's ids
    task_id: Tensor | None = None  # (B,) int64: continual-learning families that reveal the task


class Samples(NamedTuple):
    """Expert sets a router drew from its policy, for the family to score (policy-gradient
    routers such as ReMix). Each set's experts are weighted equally."""

    experts: Tensor  # (M, B, T, k) int64: M sampled sets of k distinct experts per position
    log_prob: Tensor  # (M, B, T): log π(set_m | x_t), differentiable


class Probes(NamedTuple):
    """Points of x's space that the family runs through every expert (the expert-router
    coupling loss, ERC): point i stands for expert i, e.g. the router's row i, perturbed."""

    points: Tensor  # (E, D)
    alpha: float = 0.5  # margin α of the coupling loss
    weight: float = 1.0  # its weight in the training loss


class GateOutput(NamedTuple):
    """What a router's ``forward`` and ``step`` return."""

    logits: Tensor  # (B, T, E) from forward, (B, E) from step
    state: State = None  # state after the last position, to continue the stream from
    aux_loss: Tensor | None = None  # scalar added to the task loss (forward only)
    samples: Samples | None = None  # forward in training only; see "Requests" above
    probes: Probes | None = None  # forward in training only; see "Requests" above


@dataclass(frozen=True)
class Feedback:
    """Non-differentiable signal delivered after each optimiser step.

    ``expert_error[b, s, e]`` is how wrong expert e was on sequence b at scored step s: for
    routing tasks 1.0 where e was not the correct expert, for regression tasks its squared error.
    Steps are in time order, so a tracker may apply one update per step.
    """

    expert_error: Tensor  # (B, S, E), detached
    step: int  # optimiser step index (0-based)


class Gate(nn.Module):
    """What every gate kind shares. Hyper-parameters are keyword arguments of ``__init__`` after
    ``info``; parameters are drawn from the global RNG, which the harness seeds."""

    causal: ClassVar[bool] = True
    """False only for labelled ceilings (e.g. the oracle that reads x[t+1]); never ranked."""

    ceiling: ClassVar[bool] = False
    """True for a causal labelled ceiling: a baseline that knows the task's generator (the
    Bayes-optimal filter) or is trained outside the task's rules (all continual tasks at once);
    it is built with the family's ``ceiling_info``, shown, never ranked."""

    bayes_optimal: ClassVar[bool] = False
    """True for a ceiling that is the exact Bayes-optimal causal rule for the primary metric of
    the tasks it supports: a gate whose interval lies beyond it is flagged, never ranked."""

    kind: ClassVar[str] = ""
    """The gate kind ("router", "updater", ...); set by each kind's base class."""

    layer: ClassVar[str | None] = None
    """A layer entry's layer (one of the family's ``info.get("layers")``); None for a gate that
    routes. See the module docstring."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__()
        self.info = info

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        """Whether this gate, built with ``hparams``, can run on a task; the reason is shown to
        the user instead of a crash when it cannot."""
        return True, ""

    def initial_state(self, batch_size: int) -> State:
        """The state before the first token (None for stateless gates)."""
        return None

    def forward(self, x: Tensor, state: State = None) -> Any:
        """The whole sequence at once: x (B, T, D), continuing ``state``."""
        raise NotImplementedError

    def step(self, x_t: Tensor, state: State = None) -> Any:
        """One position: x_t (B, D) and the state so far -> output and the next state. A stateful
        gate implements the plain recurrence: the harness checks ``forward`` against it."""
        raise NotImplementedError

    def observe(self, feedback: Feedback) -> None:
        """Receive feedback after each optimiser step (called under no_grad). Default: ignore."""

    def begin_task(self, index: int) -> None:
        """A new task of a continual-learning sequence starts (task ``index``). Default: nothing."""

    def end_task(self, index: int) -> None:
        """Task ``index`` of a continual-learning sequence has ended. Default: nothing."""

    def diagnostics(self) -> dict[str, Tensor]:
        """Named internal quantities worth recording (e.g. learned decay, precision)."""
        return {}


class RouterGate(Gate):
    """Base class of every router: token representations -> routing logits over experts.

    Subclasses implement ``forward``; stateful gates also implement ``step`` and
    ``initial_state``.
    """

    kind: ClassVar[str] = "router"

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        """Route a whole sequence at once: x (B, T, D) -> logits (B, T, E), continuing ``state``."""
        raise NotImplementedError

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        """Route one position: x_t (B, D) -> logits (B, E) and the next state.

        The default is right for stateless gates only.
        """
        out = self.forward(x_t.unsqueeze(1), state)
        return GateOutput(out.logits.squeeze(1), out.state, None)


class UpdaterOutput(NamedTuple):
    """What an updater's ``forward`` and ``step`` return.

    ``factors`` are the fast weights in force at each position, after reading that position: for
    each adapted matrix m of ``info.adapted`` (a list of ``(d_in, d_out)``), in that order, the
    LoRA factors ``A_m (B, T, d_in, r)`` and ``B_m (B, T, r, d_out)`` with ``r = info.rank``; the
    family adds ``(u A_m) B_m`` to ``u W_m`` inside its experts. ``step`` returns them without T.
    """

    factors: tuple[Tensor, ...]  # (A_0, B_0, A_1, B_1, ...)
    state: State = None  # the fast-weight state after the last position (saved and re-loaded)
    aux_loss: Tensor | None = None


class UpdaterGate(Gate):
    """Base class of updaters: hidden states -> a recurrent fast-weight state that the family
    applies inside its experts (the "parameter updater expert" of the facts family).

    ``forward(h, state)`` reads hidden states h (B, T, D) and returns ``UpdaterOutput``; the
    state is whatever the rule carries (the factors themselves, or a memory they are read from).
    In the persistent evaluation the harness saves the state after reading the support, resets
    the gate to its trained parameters and answers queries in a fresh sequence from the saved
    state: anything the gate keeps outside the state is lost, by design.
    """

    kind: ClassVar[str] = "updater"

    def forward(self, x: Tensor, state: State = None) -> UpdaterOutput:
        raise NotImplementedError

    def step(self, x_t: Tensor, state: State = None) -> UpdaterOutput:
        raise NotImplementedError


def selected_layer(gate: Any) -> str | None:
    """The layer a gate selects instead of routing (a layer entry), through the harness's
    wrappers (audits, the untrusted-gate proxy); None for a gate that routes."""
    found = getattr(getattr(gate, "inner", gate), "layer", None)
    return None if found is None else str(found)


def adapted_shapes(info: TaskInfo) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The shapes (without batch and time) of each adapted matrix's factors A and B."""
    r = int(info.rank)
    return [((int(d_in), r), (r, int(d_out))) for d_in, d_out in info.adapted]


@torch.no_grad()
def deliver_feedback(gate: Gate, feedback: Feedback) -> None:
    """How the harness calls ``observe``: outside autograd, whatever the gate declares."""
    gate.observe(feedback)

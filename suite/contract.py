"""The gate contract: everything a gate author needs, in one file.

A *router gate* maps token representations to routing logits over experts::

    x: (B, T, D)  ->  logits: (B, T, E)

The task family owns everything around the gate (data, experts, loss, optimiser, metrics). Per
training step it calls, in this order::

    out = gate(x)                          # forward over the whole sequence, vectorised over time
    loss = task_loss(out.logits) + out.aux_loss
    loss.backward(); optimiser.step()
    gate.observe(Feedback(expert_error))   # optional, outside autograd

Rules the harness checks before a gate is ranked (``suite.conformance``):

* causality: logits at position t depend only on x[:, :t+1] (unless ``causal = False``);
* streaming: ``forward`` agrees with repeated ``step`` and with ``forward`` over chunks whose state
  is carried across (tolerance 1e-5);
* batch isolation: sequence b's logits depend only on sequence b;
* determinism: the same seed gives bit-identical logits and parameters after training steps;
* shapes and finite outputs.

The smallest complete gate is ``baselines/affinity.py``; a stateful one is
``baselines/composed.py`` with ``baselines/temporal_memory.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor, nn

State = Any
"""Per-sequence recurrent state: a tensor, a tuple of tensors, or None for stateless gates."""

Readout = Literal["all", "final"]
TargetKind = Literal["current-domain", "next-domain", "regression"]


@dataclass(frozen=True)
class TaskInfo:
    """What a gate may know about the task when it is built; nothing about the data itself."""

    d_model: int  # D, the width of x
    n_experts: int  # E, the width of the logits
    seq_len: int  # T used in training (gates must still accept other lengths)
    readout: Readout  # "final": only the last position is scored; "all": every position
    target: TargetKind  # what the scored positions are trained towards


class GateOutput(NamedTuple):
    """What ``forward`` and ``step`` return."""

    logits: Tensor  # (B, T, E) from forward, (B, E) from step
    state: State = None  # state after the last position, to continue the stream from
    aux_loss: Tensor | None = None  # scalar added to the task loss (forward only)


@dataclass(frozen=True)
class Feedback:
    """Non-differentiable signal delivered after each optimiser step.

    ``expert_error[b, s, e]`` is how wrong expert e was on sequence b at scored step s: for
    routing tasks 1.0 where e was not the correct expert, for regression tasks its squared error.
    Steps are in time order, so a tracker may apply one update per step.
    """

    expert_error: Tensor  # (B, S, E), detached
    step: int  # optimiser step index (0-based)


class RouterGate(nn.Module):
    """Base class of every router gate: baselines and submissions alike.

    Subclasses implement ``forward``; stateful gates also implement ``step`` and
    ``initial_state``. Hyper-parameters are keyword arguments of ``__init__`` after ``info``.
    """

    causal: ClassVar[bool] = True
    """False only for labelled ceilings (e.g. the oracle that reads x[t+1]); never ranked."""

    def __init__(self, info: TaskInfo) -> None:
        super().__init__()
        self.info = info

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        """Whether this gate, built with ``hparams``, can run on a task; the reason is shown to
        the user instead of a crash when it cannot."""
        return True, ""

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        """Route a whole sequence at once: x (B, T, D) -> logits (B, T, E), continuing ``state``."""
        raise NotImplementedError

    def initial_state(self, batch_size: int) -> State:
        """The state before the first token (None for stateless gates)."""
        return None

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        """Route one position: x_t (B, D) -> logits (B, E) and the next state.

        The default is right for stateless gates only. A stateful gate overrides it with the plain
        recurrence: the harness uses it as the oracle that ``forward`` is checked against.
        """
        out = self.forward(x_t.unsqueeze(1), state)
        return GateOutput(out.logits.squeeze(1), out.state, None)

    @torch.no_grad()
    def observe(self, feedback: Feedback) -> None:
        """Receive per-expert error after each optimiser step (no gradient). Default: ignore."""

    def reset(self) -> None:
        """Forget anything learned online through ``observe`` (not the parameters)."""

    def diagnostics(self) -> dict[str, Tensor]:
        """Named internal quantities worth recording (e.g. learned decay, precision)."""
        return {}

"""The composed gate of the 2^3 ablation: any subset of {beta, Pi, Ant} (Wong 2026, section 4.4).

    u_t      = h_t (beta on) or x_t                       h_t from temporal_memory.py
    score_t  = W u_t                                      (no Ant)
             = W f([x_t, h_t]) or W f(x_t)                (Ant, "direct" form)
             = W h_t + W_pred f([x_t, h_t])               (beta + Ant, "additive" form of the LM)
    logits_t = score_t ⊙ Pi                               (Pi on; precision.py)

One class registered under every id of the grid, so the cells differ only in their switches.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines._papers import WONG_2026, WONG_2026_URL
from baselines.anticipation import NextStatePredictor, prediction_loss
from baselines.precision import PrecisionTracker
from baselines.temporal_memory import LeakyIntegrator
from suite.contract import Feedback, GateOutput, RouterGate, State, TaskInfo
from suite.gates.entries import register_gate

_GRID = {
    "beta": "Temporal memory: route on a leaky per-dimension membrane h_t.",
    "pi": "Precision weighting: routing scores times per-expert inverse error variance.",
    "ant": "Stateless anticipation: route on a prediction of x_{t+1} made from x_t alone.",
    "beta+pi": "Temporal memory with precision weighting.",
    "beta+ant": "Anticipation conditioned on the membrane: route on f([x_t, h_t]).",
    "pi+ant": "Stateless anticipation with precision weighting.",
    "beta+pi+ant": "The full composed gate: membrane, anticipation and precision.",
}
_EQUATIONS = {
    "beta": "logits_t = W h_t, h_t = beta*h_{t-1} + x_t",
    "pi": "logits_t = (W x_t) * Pi",
    "ant": "logits_t = W f(x_t)",
    "beta+pi": "logits_t = (W h_t) * Pi",
    "beta+ant": "logits_t = W f([x_t, h_t])",
    "pi+ant": "logits_t = (W f(x_t)) * Pi",
    "beta+pi+ant": "logits_t = (W f([x_t, h_t])) * Pi",
}


def _register_grid(cls: type[RouterGate]) -> type[RouterGate]:
    for gate_id, description in _GRID.items():
        parts = set(gate_id.split("+"))
        register_gate(
            gate_id,
            description=description,
            paper=WONG_2026,
            equation=_EQUATIONS[gate_id],
            url=WONG_2026_URL,
            beta="beta" in parts,
            pi="pi" in parts,
            ant="ant" in parts,
        )(cls)
    register_gate(
        "beta-fixed",
        description="Temporal memory with a fixed, untrained decay (Table 1's fixed-beta LIF).",
        paper=WONG_2026,
        equation="logits_t = W h_t, beta fixed",
        url=WONG_2026_URL,
        beta=True,
        learn_beta=False,
    )(cls)
    register_gate(
        "beta+ant-additive",
        description="Additive anticipation of the character LM: W h_t + W_pred f([x_t, h_t]).",
        paper=WONG_2026,
        equation="logits_t = W h_t + W_pred f([x_t, h_t])",
        url=WONG_2026_URL,
        beta=True,
        ant=True,
        additive=True,
    )(cls)
    return cls


@_register_grid
class ComposedRouter(RouterGate):
    def __init__(
        self,
        info: TaskInfo,
        beta: bool = False,
        pi: bool = False,
        ant: bool = False,
        additive: bool = False,
        beta_init: float = 0.9,
        learn_beta: bool = True,
        var_init: float = 0.5,
        pi_momentum: float = 0.95,
        pred_weight: float = 0.5,
    ) -> None:
        super().__init__(info)
        if additive and not (beta and ant):
            raise ValueError("the additive form needs both beta and ant")
        D, E = info.d_model, info.n_experts
        self.W = nn.Linear(D, E)
        self.memory = LeakyIntegrator(D, beta_init, learn_beta) if beta else None
        self.predictor = NextStatePredictor(2 * D if beta else D, D) if ant else None
        self.W_pred = nn.Linear(D, E, bias=False) if additive else None
        self.precision = PrecisionTracker(E, pi_momentum, var_init=var_init) if pi else None
        self.pred_weight = pred_weight

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        if (hparams.get("beta") or hparams.get("ant")) and info.seq_len < 2:
            return False, "temporal memory and anticipation need sequences of two or more tokens"
        return True, ""

    def _route(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor | None]:
        """Shared by forward (x, h: (B, T, D)) and step (x, h: (B, D))."""
        x_hat = None
        if self.predictor is None:
            score = self.W(h)
        else:
            u = torch.cat([x, h], dim=-1) if self.memory is not None else x
            x_hat = self.predictor(u)
            score = self.W(x_hat) if self.W_pred is None else self.W(h) + self.W_pred(x_hat)
        if self.precision is not None:
            score = score * self.precision.pi()
        return score, x_hat

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        h = x if self.memory is None else self.memory.scan(x, state)  # (B, T, D)
        logits, x_hat = self._route(x, h)  # (B, T, E)
        aux = None if x_hat is None else prediction_loss(x_hat, x, self.pred_weight)
        new_state = None if self.memory is None else h[:, -1]
        return GateOutput(logits, new_state, aux)

    def step(self, x_t: Tensor, state: State = None) -> GateOutput:
        h = x_t if self.memory is None else self.memory.step(x_t, state)  # (B, D)
        logits, _ = self._route(x_t, h)
        return GateOutput(logits, None if self.memory is None else h)

    def observe(self, feedback: Feedback) -> None:
        if self.precision is not None:
            self.precision.update(feedback.expert_error)

    def diagnostics(self) -> dict[str, Tensor]:
        out = {}
        if self.memory is not None:
            out["beta"] = self.memory.beta().detach()
        if self.precision is not None:
            out["pi"] = self.precision.pi().detach()
        return out

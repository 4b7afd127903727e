"""GRIP's router protection (2026) carried over to a task sequence.

    W_eff = A + (W − A)(I − U Uᵀ),   logits_t = [x_t, 1] W_effᵀ

GRIP keeps the routing of retained data fixed while unlearning by projecting the router's
gradient onto the null space of the retained data's representations, G ← G(I − UUᵀ). Here the
retained data are the earlier tasks: U holds the principal directions of their router inputs
[x, 1]. A projected gradient is only exact for plain SGD (Adam rescales it elementwise and leaves
the null space), so the projection is built into the weight instead: the gradient with respect to
W is exactly G(I − UUᵀ) and, whatever the optimiser does to W, an input z in span(U) gets
z W_effᵀ = z Aᵀ, its routing when the directions were stored. GRIP projects per expert; one
subspace shared by all experts is the simpler form used here.

While a task is trained the second moment Σ [x,1][x,1]ᵀ of its router inputs is accumulated. At
``end_task`` the anchor A takes the weight in force (and W restarts from it), and the directions
of this task's inputs that, with those already in U, hold a share ``energy`` of the spectrum are
added to U, orthogonal to it: the energy threshold of Gradient Projection Memory (Saha et al.
2021). U is stored as a (D+1)×(D+1) buffer whose columns past ``rank`` are zero (so its shape never
changes); once the rank reaches D+1 the router is frozen.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from baselines._papers import GRIP, GRIP_URL
from baselines.continual._common import LinearRouter, augment, needs_sequence
from suite.contract import GateOutput, State, TaskInfo
from suite.gates.entries import register_gate


@register_gate(
    "grip-router",
    description="Our transfer of GRIP (an unlearning method) to continual learning: the router's "
    "weight is projected off the earlier tasks' input subspace, so their routing is kept exactly "
    "whatever the optimiser.",
    paper=GRIP,
    equation="logits_t = [x_t, 1] (A + (W - A)(I - U U^T))^T",
    url=GRIP_URL,
)
class GripRouterGate(LinearRouter):
    def __init__(self, info: TaskInfo, energy: float = 0.99) -> None:
        super().__init__(info)
        self.energy = float(energy)
        d1 = info.d_model + 1
        self.register_buffer("anchor", self.W.detach().clone())
        self.register_buffer("U", torch.zeros(d1, d1))  # orthonormal columns [:rank], zeros after
        self.register_buffer("rank", torch.zeros((), dtype=torch.long))
        self.register_buffer("moment", torch.zeros(d1, d1))  # Σ z zᵀ of this task's inputs
        self.register_buffer("tokens", torch.zeros(()))

    @classmethod
    def supports(cls, info: TaskInfo, **hparams: Any) -> tuple[bool, str]:
        energy = float(hparams.get("energy", 0.99))
        if not 0.0 < energy <= 1.0:
            return False, f"energy must be in (0, 1], got {energy}"
        return needs_sequence(info)

    @property
    def basis(self) -> Tensor:
        """U: (D+1, rank), orthonormal columns."""
        return self.U[:, : int(self.rank)]

    def weight(self) -> Tensor:
        projector = torch.eye(self.U.shape[0], dtype=self.U.dtype, device=self.U.device)
        projector = projector - self.U @ self.U.T
        return self.anchor + (self.W - self.anchor) @ projector

    def forward(self, x: Tensor, state: State = None) -> GateOutput:
        z = augment(x)
        if self.training:
            with torch.no_grad():
                flat = z.detach().reshape(-1, z.shape[-1])
                self.moment += flat.T @ flat
                self.tokens += flat.shape[0]
        return GateOutput(z @ self.weight().T)

    @torch.no_grad()
    def end_task(self, index: int) -> None:
        frozen = self.weight().detach().clone()
        self.anchor.copy_(frozen)
        self.W.copy_(frozen)
        if float(self.tokens) > 0:
            self._extend_basis()
        self.moment.zero_()
        self.tokens.zero_()

    def _extend_basis(self) -> None:
        """Add the residual principal directions of this task's inputs (GPM's energy rule)."""
        d1, k = self.U.shape[0], int(self.rank)
        if k >= d1:
            return
        M = (self.moment / self.tokens).double()
        U = self.U[:, :k].double()
        total = float(torch.trace(M))
        if total <= 0.0:
            return
        P = torch.eye(d1, dtype=M.dtype, device=M.device) - U @ U.T
        residual = P @ M @ P
        residual = (residual + residual.T) / 2
        captured = total - float(torch.trace(residual))  # the energy U already holds
        need = self.energy * total - captured
        if need <= 0.0:
            return
        values, vectors = torch.linalg.eigh(residual)  # ascending
        values, vectors = values.flip(0), vectors.flip(1)
        useful = int((values > 1e-9 * total).sum())  # directions with energy beyond rounding
        cumulative = torch.cumsum(values.clamp(min=0.0), dim=0)
        n = int(torch.searchsorted(cumulative, cumulative.new_tensor([need]))) + 1
        n = min(n, useful, d1 - k)
        if n <= 0:
            return
        new = vectors[:, :n]
        new = new - U @ (U.T @ new)  # already orthogonal to U up to rounding; make it exact
        new, _ = torch.linalg.qr(new)
        self.U[:, k : k + n] = new.to(self.U.dtype)
        self.rank += n

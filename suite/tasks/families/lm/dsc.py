"""Dynamic Subspace Composition (DSC), the expert layer that composes rank-1 atoms instead of
routing to whole experts (seed 004; facts in ``../shared/reference/continual-and-routers.md``).

    r = clamp(W · LN(x), ±20),   α = softplus(r)  over M atoms,   keep the top K of α
    z_k = (α_k / S) · tanh(S),   S = Σ_{k ≤ K} α_k
    y = MLP_static(x) + γ ⊙ Σ_k z_k (x · û_k) v̂_k,  û, v̂: unit rows of shared banks U, V (M × d)

Losses (weights as in the paper): load balance M · Σ_m P_m² with P the mean normalised α (0.01);
budget ReLU(1 − mean S)² (0.01); frame coherence ‖offdiag(Û Ûᵀ)‖²_F + ‖offdiag(V̂ V̂ᵀ)‖²_F (1e-3);
router z-loss mean logsumexp(r)² (1e-4). The banks cost O(M · d) parameters instead of an MoE's
O(E · d · h). Everything is gathered per token (no loop over atoms or tokens).

DSC is a model option of the lm family (``model.layer: dsc``, and a row of the efficiency table),
not a gate kind: it replaces the expert layer, not the routing decision (``suite.contract``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CLAMP = 20.0
LOSS_WEIGHTS = {"balance": 0.01, "budget": 0.01, "coherence": 1e-3, "z": 1e-4}
ATOMS, TOP_K = 16, 4  # M atoms in the bank (ours), K = 4 per token (the paper's)


def static_hidden(d_model: int, active: int, n_atoms: int, k: int) -> int:
    """Hidden width of DSC's static MLP that matches ``active`` parameters per token: the MLP
    (2·d·h + h + d), the router (M·d + M), γ (d), the LayerNorm (2d) and K atoms of U and V
    (2·K·d) — rounded down, so DSC never uses more than the MoE it is compared with (at most
    2·d parameters fewer: one hidden unit's)."""
    fixed = d_model + n_atoms * d_model + n_atoms + d_model + 2 * d_model + 2 * k * d_model
    return max(1, (active - fixed) // (2 * d_model + 1))


class DSCLayer(nn.Module):
    def __init__(self, d_model: int, hidden: int, n_atoms: int = ATOMS, k: int = TOP_K) -> None:
        super().__init__()
        if not 1 <= k <= n_atoms:
            raise ValueError(f"DSC needs 1 <= k <= n_atoms, got k={k}, n_atoms={n_atoms}")
        self.k = k
        self.norm = nn.LayerNorm(d_model)
        self.router = nn.Linear(d_model, n_atoms)
        self.U = nn.Parameter(torch.randn(n_atoms, d_model) / d_model**0.5)
        self.V = nn.Parameter(torch.randn(n_atoms, d_model) / d_model**0.5)
        self.gamma = nn.Parameter(torch.ones(d_model))
        self.static = nn.Sequential(
            nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model)
        )

    def route(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Router logits r (N, M), the chosen atoms (N, K) and their weights z (N, K)."""
        r = self.router(self.norm(x)).clamp(-CLAMP, CLAMP)
        alpha = F.softplus(r)
        top, chosen = alpha.topk(self.k, dim=-1)
        total = top.sum(-1, keepdim=True)
        return r, chosen, top / total * torch.tanh(total)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Outputs (N, d) for tokens x (N, d), and the layer's weighted auxiliary loss.

        With M small, projecting on every atom (two (N, d) × (d, M) matmuls) and zeroing the
        unchosen ones is faster than gathering K atoms per token; ``composed_gathered`` is the
        per-token form, the tests' oracle."""
        r, chosen, z = self.route(x)
        u_hat, v_hat = F.normalize(self.U, dim=-1), F.normalize(self.V, dim=-1)
        weights = torch.zeros_like(r).scatter(-1, chosen, z)  # (N, M): z on the chosen atoms
        composed = (weights * (x @ u_hat.T)) @ v_hat
        return self.static(x) + self.gamma * composed, self.loss(r, chosen, z)

    def composed_gathered(self, x: Tensor) -> Tensor:
        """Σ_k z_k (x · û_k) v̂_k with the K atoms gathered per token (the formula as written)."""
        _, chosen, z = self.route(x)
        u_hat, v_hat = F.normalize(self.U, dim=-1), F.normalize(self.V, dim=-1)
        coeff = z * torch.einsum("nd,nkd->nk", x, u_hat[chosen])
        return torch.einsum("nk,nkd->nd", coeff, v_hat[chosen])

    def loss(self, r: Tensor, chosen: Tensor, z: Tensor) -> Tensor:
        losses = self.losses(r, chosen, z)
        return sum(LOSS_WEIGHTS[name] * value for name, value in losses.items())

    def losses(self, r: Tensor, chosen: Tensor, z: Tensor) -> dict[str, Tensor]:
        """The four losses, unweighted (the tests check each against hand-computed values)."""
        alpha = F.softplus(r)
        M = alpha.shape[-1]
        P = (alpha / alpha.sum(-1, keepdim=True)).mean(0)
        S = alpha.gather(-1, chosen).sum(-1)
        u_hat, v_hat = F.normalize(self.U, dim=-1), F.normalize(self.V, dim=-1)
        off = 1.0 - torch.eye(M, device=r.device)
        coherence = ((u_hat @ u_hat.T) * off).pow(2).sum() + ((v_hat @ v_hat.T) * off).pow(2).sum()
        return {
            "balance": M * P.pow(2).sum(),
            "budget": F.relu(1.0 - S.mean()).pow(2),
            "coherence": coherence,
            "z": torch.logsumexp(r, dim=-1).pow(2).mean(),
        }


def matched(d_model: int, active: int, n_atoms: int = ATOMS, k: int = TOP_K) -> DSCLayer:
    """A DSC layer whose active parameters per token match ``active`` (``static_hidden``)."""
    return DSCLayer(d_model, static_hidden(d_model, active, n_atoms, k), n_atoms, k)


def active_parameters(layer: DSCLayer) -> int:
    """Parameters a token touches: all but the M − K atoms of U and V it does not use."""
    total = sum(p.numel() for p in layer.parameters())
    unused = (layer.U.shape[0] - layer.k) * layer.U.shape[1] * 2
    return total - unused


def flops_per_token(d_model: int, hidden: int, n_atoms: int, k: int) -> int:
    """Multiply-adds × 2 of one token's forward: LayerNorm (≈ 5d), router (2·d·M), softplus and
    top-K (≈ 3M, counted as M), static MLP (4·d·h), K atoms (dot and axpy: 4·K·d), γ (d)."""
    return (
        5 * d_model
        + 2 * d_model * n_atoms
        + n_atoms
        + 4 * d_model * hidden
        + 4 * k * d_model
        + d_model
    )

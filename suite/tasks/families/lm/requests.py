"""What a router may ask the lm family for beyond the mixture of its logits (``suite.contract``,
"Requests"): sampled expert sets scored with REINFORCE leave-one-out (ReMix) and probe points run
through every expert for the expert-router coupling loss (ERC).

Both are per seed and per training step; the family adds the result to that seed's loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.tasks.seed_stack import ModuleStack

OFFERED = ("samples", "probes")


def rloo_loss(losses: Tensor, log_prob: Tensor) -> Tensor:
    """The samples' mean loss (it trains the experts on the sets drawn) plus the leave-one-out
    policy-gradient surrogate mean_m (L_m − mean_{j≠m} L_j) · log π_m, whose gradient is the
    RLOO estimate of the expected loss's gradient: losses and log_prob (M, ...), M ≥ 2."""
    M = losses.shape[0]
    baseline = (losses.sum(0, keepdim=True) - losses) / (M - 1)
    return losses.mean() + ((losses - baseline).detach() * log_prob).mean()


def coupling_loss(norms: Tensor, alpha: float) -> Tensor:
    """ERC: with M_ij = ‖expert j's activation on probe i‖ (E, E), the mean over i ≠ j of
    ReLU(M_ij − α M_ii) + ReLU(M_ij − α M_jj): each expert answers its own probe more strongly
    than any other does, and each probe moves its own expert more than any other."""
    E = norms.shape[0]
    diag = norms.diagonal()
    terms = F.relu(norms - alpha * diag[:, None]) + F.relu(norms - alpha * diag[None, :])
    off = ~torch.eye(E, dtype=torch.bool, device=norms.device)
    return terms[off].mean()


def request_losses(
    lm: ModuleStack, outputs: list[Any] | None, x: Tensor, targets: Tensor, scale: Tensor
) -> Tensor:
    """(S,) losses of what each seed's router asked for; zeros where it asked nothing. ``x``
    (S, B, T, D) are the embeddings the gates read, ``targets`` (S, B, T) the next characters
    and ``scale`` (S, B, T) the per-position loss weights of the task loss."""
    found = x.new_zeros(x.shape[0])
    for s, out in enumerate(outputs or []):
        if out is None:
            continue
        if out.samples is not None:
            experts, log_prob = out.samples
            logits = lm.call_one(s, "sampled", x[s], experts)  # (M, B, T, V)
            M = experts.shape[0]
            ce = F.cross_entropy(
                logits.flatten(0, 2), targets[s].expand(M, -1, -1).flatten(), reduction="none"
            ).view(log_prob.shape)
            found[s] = found[s] + rloo_loss(ce * scale[s], log_prob)
        if out.probes is not None:
            points, alpha, weight = out.probes
            found[s] = found[s] + weight * coupling_loss(lm.call_one(s, "probe", points), alpha)
    return found

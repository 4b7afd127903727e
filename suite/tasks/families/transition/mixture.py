"""Expert-mixture regression: the gate weights experts whose reliability differs (Wong 2026, 4.2).

Four small MLP experts (trained with the gate) predict a scalar; each adds output noise of a fixed
std from the spec. The prediction is the gate-weighted sum; the loss is its MSE. After every
optimiser step the gate observes each expert's squared error, which precision gates track.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from suite.contract import Feedback, RouterGate, TaskInfo, deliver_feedback
from suite.gates.kinds import check_forward
from suite.seeding import derive_seed, seeded_global_rng
from suite.tasks.columns import fingerprint, to_dataset
from suite.tasks.families.transition.data import (
    MixtureBatch,
    MixtureStream,
)
from suite.tasks.families.transition.spec import ExpertMixtureData, TransitionSpec
from suite.tasks.family import ArrayResult, RunContext, RunOutput
from suite.tasks.training import check_finite, diagnostics_summary, make_optimizer, thin


class ExpertBank(nn.Module):
    """E independent MLPs d -> hidden -> 1 (ReLU), evaluated together with batched einsums."""

    def __init__(self, n_experts: int, d_model: int, hidden: int) -> None:
        super().__init__()
        layers = [nn.Linear(d_model, hidden) for _ in range(n_experts)]
        heads = [nn.Linear(hidden, 1) for _ in range(n_experts)]
        self.w1 = nn.Parameter(torch.stack([m.weight.T for m in layers]).detach())  # (E, D, H)
        self.b1 = nn.Parameter(torch.stack([m.bias for m in layers]).detach())  # (E, H)
        self.w2 = nn.Parameter(torch.stack([m.weight[0] for m in heads]).detach())  # (E, H)
        self.b2 = nn.Parameter(torch.stack([m.bias[0] for m in heads]).detach())  # (E,)

    def forward(self, x: Tensor) -> Tensor:
        hidden = torch.relu(torch.einsum("bd,edh->beh", x, self.w1) + self.b1)  # (B, E, H)
        return torch.einsum("beh,eh->be", hidden, self.w2) + self.b2  # (B, E)


def eval_columns(batches: list[MixtureBatch]) -> dict[str, np.ndarray]:
    return {
        "x": torch.cat([b.x[:, 0] for b in batches]).numpy(),
        "domains": torch.cat([b.domains for b in batches]).numpy().astype(np.int8),
        "y": torch.cat([b.y for b in batches]).numpy(),
        "noise": torch.cat([b.noise for b in batches]).numpy(),
    }


def task_info(spec: TransitionSpec) -> TaskInfo:
    """One token per example: the gate weights experts on x alone."""
    return TaskInfo(
        d_model=spec.data.d_model,
        n_experts=spec.model.n_experts,
        seq_len=1,
        kind="router",
        extras={"readout": "all", "target": "regression"},
    )


def eval_dataset(spec: TransitionSpec, data_seed: int):
    """The last ``eval_window`` steps' batches as a Dataset."""
    stream = MixtureStream(spec.data, data_seed)
    first = spec.train.epochs - spec.train.eval_window
    return to_dataset(
        eval_columns(
            [stream.batch(s, spec.train.batch_size) for s in range(first, spec.train.epochs)]
        )
    )


def _first_step(condition: Tensor, start: int) -> int | None:
    """Index of the first True at or after ``start`` in a (steps,) bool tensor, else None."""
    hits = torch.nonzero(condition[start:]).flatten()
    return int(hits[0]) if hits.numel() else None


def window_losses(losses: Tensor, window: int, shift_at: int | None) -> dict[str, float]:
    """Mean training loss over the first and the last ``window`` steps, and over the ``window``
    steps from the shift where the experts' noise swaps."""
    found = {
        "loss_early": losses[:window].mean().item(),
        "loss_final": losses[-window:].mean().item(),
    }
    if shift_at is not None:
        found["loss_after_shift"] = losses[shift_at : shift_at + window].mean().item()
    return found


def run(spec: TransitionSpec, gate: RouterGate, ctx: RunContext) -> RunOutput:
    data = spec.data
    train = spec.train
    device = ctx.device
    E = spec.model.n_experts
    stream = MixtureStream(data, ctx.seeds.data)
    with seeded_global_rng(derive_seed(ctx.seeds.init, "experts")):
        experts = ExpertBank(E, data.d_model, spec.model.expert_hidden).to(device)
    optimizer = make_optimizer(train.lr, [gate, experts])

    steps = train.epochs
    losses = torch.zeros(steps)
    pi_history: Tensor | None = None
    eval_batches: list[MixtureBatch] = []
    info = task_info(spec)
    gate.train()
    for step in range(steps):
        batch = stream.batch(step, train.batch_size)
        x, y, noise = batch.x.to(device), batch.y.to(device), batch.noise.to(device)
        out = check_forward(gate, gate(x), info, x.shape[0], 1)
        weights = torch.softmax(out.logits[:, 0], dim=-1)  # (B, E)
        predictions = experts(x[:, 0]) + noise  # (B, E)
        task_loss = ((weights * predictions).sum(-1) - y).pow(2).mean()
        loss = task_loss if out.aux_loss is None else task_loss + out.aux_loss
        check_finite(loss, step)
        losses[step] = task_loss.detach()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        error = (predictions.detach() - y.unsqueeze(1)).pow(2)  # (B, E)
        deliver_feedback(gate, Feedback(expert_error=error.unsqueeze(1), step=step))
        pi = gate.diagnostics().get("pi")
        if pi is not None:
            if pi_history is None:
                pi_history = torch.zeros(steps, E)
            pi_history[step] = pi.detach().cpu()
        if step >= steps - train.eval_window:
            eval_batches.append(batch)
        ctx.tick(step + 1, steps)

    metrics = window_losses(losses, train.eval_window, data.shift.at if data.shift else None)
    notes: list[str] = []
    marks = {"shift": data.shift.at} if data.shift else {}
    x_steps, loss_points = thin(losses)
    arrays = {"train_loss": ArrayResult(loss_points, {"step": x_steps}, marks)}
    if pi_history is not None:
        final = pi_history[-1]
        metrics["pi_contrast"] = (final.max() / final.min()).item()
        x_pi, pi_points = thin(pi_history)
        arrays["pi"] = ArrayResult(pi_points, {"step": x_pi, "expert": list(range(E))}, marks)
        if data.shift is not None:
            metrics.update(_shift_metrics(stream, pi_history, data, notes))
    else:
        notes.append("this gate exposes no 'pi' diagnostic, so precision metrics do not apply")
    wanted = {k: v for k, v in metrics.items() if k in spec.metrics}
    return RunOutput(
        metrics=wanted,
        arrays=arrays,
        diagnostics=diagnostics_summary(gate.diagnostics()),
        notes=notes,
        data_fingerprint=fingerprint(eval_columns(eval_batches)),
    )


def _shift_metrics(
    stream: MixtureStream, pi: Tensor, data: ExpertMixtureData, notes: list[str]
) -> dict[str, float]:
    """How fast Pi notices that two experts swapped reliability, in steps after the shift."""
    at = data.shift.at
    old_reliable, new_reliable = sorted(
        data.shift.swap, key=lambda e: stream.noise_at(0)[e].pow(2).mean().item()
    )
    out: dict[str, float] = {}
    flipped = pi[:, new_reliable] > pi[:, old_reliable]
    detected = _first_step(flipped, at)
    if detected is None:
        notes.append(f"Pi never ranked expert {new_reliable} above expert {old_reliable}")
    else:
        out["detection_step"] = float(detected)
    # Full reorder: every pair of experts with different post-shift noise is ordered by it.
    variance = stream.noise_at(at).pow(2).mean(dim=1)  # (E,)
    better = variance[:, None] < variance[None, :]  # better[i, j]: i more reliable than j
    ordered = ((pi[:, :, None] > pi[:, None, :]) | ~better).all(dim=2).all(dim=1)  # (steps,)
    reordered = _first_step(ordered, at)
    if reordered is None:
        notes.append("Pi never ordered all experts by their post-shift reliability")
    else:
        out["reorder_step"] = float(reordered)
    return out if all(math.isfinite(v) for v in out.values()) else {}

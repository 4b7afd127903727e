"""Routing-stream training: the gate itself is trained to pick the correct expert.

Protocol of the paper (Wong 2026, sections 4.1 and 4.4): every epoch draws a fresh batch; the loss
is cross-entropy of the gate's logits against the correct expert at each scored position (mean over
positions and batch) plus the gate's auxiliary loss; metrics are averaged over the last
``eval_window`` epochs, measured on each epoch's batch before its optimiser step (unseen samples).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from suite.contract import Feedback, RouterGate, TaskInfo, deliver_feedback
from suite.gates.kinds import check_forward
from suite.tasks.columns import fingerprint, to_dataset
from suite.tasks.coverage import k_for_coverage
from suite.tasks.families.transition.data import (
    RoutingBatch,
    RoutingStream,
)
from suite.tasks.families.transition.spec import TransitionSpec
from suite.tasks.family import ArrayResult, RunContext, RunOutput
from suite.tasks.training import check_finite, diagnostics_summary, make_optimizer, thin


def eval_columns(stream: RoutingStream, batches: list[RoutingBatch], first_epoch: int) -> dict:
    n = batches[0].x.shape[0]
    epochs = np.repeat(np.arange(first_epoch, first_epoch + len(batches)), n).astype(np.int32)
    return {
        "epoch": epochs,
        "x": torch.cat([b.x for b in batches]).numpy(),
        "domains": torch.cat([b.domains for b in batches]).numpy().astype(np.int8),
        "targets": torch.cat([b.targets for b in batches]).numpy().astype(np.int8),
        "switch_at": torch.cat([b.switch_at for b in batches]).numpy().astype(np.int16),
    }


def task_info(spec: TransitionSpec) -> TaskInfo:
    data = spec.data
    return TaskInfo(
        d_model=data.d_model,
        n_experts=spec.model.n_experts,
        seq_len=data.seq_len,
        kind="router",
        extras={"readout": data.readout, "target": data.target},
    )


def eval_dataset(spec: TransitionSpec, data_seed: int):
    """The evaluation split (the batches of the last ``eval_window`` epochs) as a Dataset."""
    stream = RoutingStream(spec.data, data_seed)
    first = spec.train.epochs - spec.train.eval_window
    batches = [stream.batch(e, spec.train.batch_size) for e in range(first, spec.train.epochs)]
    return to_dataset(eval_columns(stream, batches, first))


def run(spec: TransitionSpec, gate: RouterGate, ctx: RunContext) -> RunOutput:
    data = spec.data
    train = spec.train
    device = ctx.device
    stream = RoutingStream(data, ctx.seeds.data)
    optimizer = make_optimizer(train.lr, [gate])
    n_experts = spec.model.n_experts
    expert_ids = torch.arange(n_experts, device=device)
    scored = stream.scored.to(device)  # (S,)
    S = scored.numel()
    first_eval = train.epochs - train.eval_window
    with_transition = data.has_scored_transition

    # Sums over the evaluation window, per scored position / at the transition.
    correct_by_pos = torch.zeros(S, device=device)
    p_by_pos = torch.zeros(S, device=device)
    correct_transition = torch.zeros((), device=device)
    p_transition = torch.zeros((), device=device)
    losses = torch.zeros(train.epochs)
    eval_batches: list[RoutingBatch] = []

    info = task_info(spec)
    gate.train()
    for epoch in range(train.epochs):
        batch = stream.batch(epoch, train.batch_size)
        x = batch.x.to(device)  # (B, T, D)
        targets = batch.targets.to(device)[:, scored]  # (B, S)
        out = check_forward(gate, gate(x), info, x.shape[0], x.shape[1])
        logp = F.log_softmax(out.logits[:, scored], dim=-1)  # (B, S, E)
        logp_correct = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, S)
        loss = -logp_correct.mean()
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
        losses[epoch] = check_finite(loss, epoch)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        error = (targets.unsqueeze(-1) != expert_ids).float()  # (B, S, E): 1 where e is wrong
        deliver_feedback(gate, Feedback(expert_error=error, step=epoch))

        if epoch >= first_eval:
            with torch.no_grad():
                correct = (logp.argmax(-1) == targets).float()  # (B, S)
                p_correct = logp_correct.exp()
                correct_by_pos += correct.mean(0)
                p_by_pos += p_correct.mean(0)
                if with_transition:
                    # the transition's column among the scored positions, per sequence
                    col = (stream.transition_positions(batch).to(device) - scored[0]).unsqueeze(1)
                    correct_transition += correct.gather(1, col).mean()
                    p_transition += p_correct.gather(1, col).mean()
            eval_batches.append(batch)
        ctx.tick(epoch + 1, train.epochs)

    W = train.eval_window
    metrics = {
        "acc_all": (correct_by_pos / W).mean().item(),
        "p_correct_all": (p_by_pos / W).mean().item(),
    }
    arrays = {}
    marks = {}
    if with_transition:
        p_tr = (p_transition / W).item()
        metrics.update(
            acc_transition=(correct_transition / W).item(),
            p_correct_transition=p_tr,
            k99_transition=k_for_coverage(p_tr),
        )
        low, high = data.switch_range or (0, 0)
        if low == high:
            marks["transition"] = low - 1 if data.target == "next-domain" else low
    if data.readout == "all":
        positions = {"position t": scored.tolist()}
        arrays["p_correct_by_position"] = ArrayResult(p_by_pos / W, positions, marks)
        arrays["acc_by_position"] = ArrayResult(correct_by_pos / W, positions, marks)
    steps, values = thin(losses)
    arrays["train_loss"] = ArrayResult(values, {"epoch": steps})
    wanted = {k: v for k, v in metrics.items() if k in spec.metrics}
    columns = eval_columns(stream, eval_batches, first_eval)
    return RunOutput(
        metrics=wanted,
        arrays=arrays,
        diagnostics=diagnostics_summary(gate.diagnostics()),
        data_fingerprint=fingerprint(columns),
    )

"""Routing-stream training: the gate itself is trained to pick the correct expert.

Protocol of the paper (Wong 2026, sections 4.1 and 4.4): every epoch draws a fresh batch; the loss
is cross-entropy of the gate's logits against the correct expert at each scored position (mean over
positions and batch) plus the gate's auxiliary loss; metrics are averaged over the last
``eval_window`` epochs, measured on each epoch's batch before its optimiser step (unseen samples).
"""

from __future__ import annotations

import numpy as np
import torch

from suite.contract import Feedback, RouterGate, TaskInfo
from suite.tasks.columns import fingerprint, to_dataset
from suite.tasks.coverage import k_for_coverage
from suite.tasks.families.transition.data import (
    RoutingBatch,
    RoutingStream,
)
from suite.tasks.families.transition.spec import TransitionSpec
from suite.tasks.family import ArrayResult, RunContext, RunOutput, only_result
from suite.tasks.seed_stack import stack_gates
from suite.tasks.training import diagnostics_summary, thin


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
    return only_result(run_seeds(spec, [gate], [ctx]))


def run_seeds(
    spec: TransitionSpec, gates: list[RouterGate], ctxs: list[RunContext], vectorise: bool = True
) -> list[RunOutput | BaseException]:
    """Train the seeds of one gate together (``suite.tasks.seed_stack``): tensors carry a leading
    seed axis S; each seed has its own stream, gate, optimiser state and result. Called with
    several gates on one seed (``run_gates``), the gates take turns on one draw of the stream."""
    data = spec.data
    train = spec.train
    device = ctxs[0].device
    # one stream per data seed: the gates of one seed (``run_gates``) read one draw of it
    by_seed = {
        seed: RoutingStream(data, seed) for seed in dict.fromkeys(c.seeds.data for c in ctxs)
    }
    streams = [by_seed[ctx.seeds.data] for ctx in ctxs]
    n_experts = spec.model.n_experts
    expert_ids = torch.arange(n_experts, device=device)
    scored = streams[0].scored.to(device)  # (P,): the same positions for every seed
    # the scored positions are one run of steps: a slice's view (and its cheap backward)
    # instead of gathering them
    span = slice(int(scored[0]), int(scored[-1]) + 1)
    if not torch.equal(scored, torch.arange(span.start, span.stop, device=device)):
        raise ValueError("the scored positions of a routing stream must be consecutive")
    first_eval = train.epochs - train.eval_window
    with_transition = data.has_scored_transition
    info = task_info(spec)
    S = len(gates)

    def batches(epoch: int) -> list[RoutingBatch]:
        drawn = {seed: stream.batch(epoch, train.batch_size) for seed, stream in by_seed.items()}
        return [drawn[ctx.seeds.data] for ctx in ctxs]

    first = batches(0)
    stack = stack_gates(
        gates, info, torch.stack([b.x for b in first]).to(device), vectorise=vectorise
    )
    optimizer = stack.optimizer(train.lr)

    # Sums over the evaluation window, per seed and scored position / at the transition.
    correct_by_pos = torch.zeros(S, scored.numel(), device=device)
    p_by_pos = torch.zeros(S, scored.numel(), device=device)
    correct_transition = torch.zeros(S, device=device)
    p_transition = torch.zeros(S, device=device)
    losses = torch.zeros(train.epochs, S)
    eval_batches: list[list[RoutingBatch]] = []

    stack.train()
    for epoch in range(train.epochs):
        batch = first if epoch == 0 else batches(epoch)
        x = torch.stack([b.x for b in batch]).to(device)  # (S, B, T, D)
        targets = torch.stack([b.targets for b in batch]).to(device)[:, :, span]  # (S, B, P)
        out = stack(x)
        logits = out.logits[:, :, span]
        # x - logsumexp(x), not F.log_softmax: over a last axis of a few experts the latter's CPU
        # kernel is 3-4x slower, forward and backward (0.6 against 2.5 ms at (5, 512, 12, 4))
        logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)  # (S, B, P, E)
        logp_correct = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (S, B, P)
        # Reductions run per seed: a reduction over a stacked tensor may sum in an order that
        # depends on S, and a seed's numbers must not depend on its stack.
        per_seed = -torch.stack([lc.mean() for lc in logp_correct]) + out.aux_loss  # (S,)
        loss = stack.total_loss(per_seed, epoch)
        losses[epoch] = per_seed.detach().cpu()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        error = (targets.unsqueeze(-1) != expert_ids).float()  # (S, B, P, E): 1 where e is wrong
        stack.observe([Feedback(expert_error=error[s], step=epoch) for s in range(S)])

        if epoch >= first_eval:
            with torch.no_grad():
                correct = (logp.argmax(-1) == targets).float()  # (S, B, P)
                p_correct = logp_correct.exp()
                for s, (stream, b) in enumerate(zip(streams, batch, strict=True)):
                    correct_by_pos[s] += correct[s].mean(0)
                    p_by_pos[s] += p_correct[s].mean(0)
                    if with_transition:
                        # the transition's column among the scored positions, per sequence
                        col = (stream.transition_positions(b).to(device) - scored[0]).unsqueeze(1)
                        correct_transition[s] += correct[s].gather(1, col).mean()
                        p_transition[s] += p_correct[s].gather(1, col).mean()
            eval_batches.append(batch)
        for ctx in ctxs:
            ctx.tick(epoch + 1, train.epochs)

    results: list[RunOutput | BaseException] = []
    for s in range(S):
        if s in stack.failed:
            results.append(stack.failed[s])
            continue
        seed_eval = [b[s] for b in eval_batches]
        results.append(
            _output(
                spec, streams[s], stack.gates[s], seed_eval, losses[:, s], correct_by_pos[s],
                p_by_pos[s], correct_transition[s], p_transition[s], stack.reason,
            )
        )  # fmt: skip
    return results


def _output(
    spec: TransitionSpec,
    stream: RoutingStream,
    gate: RouterGate,
    eval_batches: list[RoutingBatch],
    losses: torch.Tensor,
    correct_by_pos: torch.Tensor,
    p_by_pos: torch.Tensor,
    correct_transition: torch.Tensor,
    p_transition: torch.Tensor,
    fallback: str,
) -> RunOutput:
    """One seed's metrics, curves and record fields from its sums over the evaluation window."""
    data, train = spec.data, spec.train
    first_eval = train.epochs - train.eval_window
    W = train.eval_window
    metrics = {
        "acc_all": (correct_by_pos / W).mean().item(),
        "p_correct_all": (p_by_pos / W).mean().item(),
    }
    arrays = {}
    marks = {}
    if data.has_scored_transition:
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
        positions = {"position t": stream.scored.tolist()}
        arrays["p_correct_by_position"] = ArrayResult(p_by_pos / W, positions, marks)
        arrays["acc_by_position"] = ArrayResult(correct_by_pos / W, positions, marks)
    steps, values = thin(losses)
    arrays["train_loss"] = ArrayResult(values, {"epoch": steps})
    wanted = {k: v for k, v in metrics.items() if k in spec.metrics}
    columns = eval_columns(stream, eval_batches, first_eval)
    notes = [f"seeds ran one after another: {fallback}"] if fallback else []
    return RunOutput(
        metrics=wanted,
        arrays=arrays,
        diagnostics=diagnostics_summary(gate.diagnostics()),
        notes=notes,
        data_fingerprint=fingerprint(columns),
    )

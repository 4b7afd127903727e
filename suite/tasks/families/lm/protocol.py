"""Training the character LM with a gate, and its metrics (Wong 2026, §5 and Table 6).

Every epoch draws a fresh batch. The loss is the cross-entropy of the next character with the
transition step weighted ``transition_weight``× (mean over steps of weight × CE), plus the gate's
auxiliary loss. Metrics are taken on the last ``eval_window`` epochs' batches before their
optimiser steps (unseen samples, as in the transition family). Each domain's expert is the one
whose mean gate weight is highest on that domain's characters *relative to the other domains'*
(with a plain argmax of the mean weight, one expert that dominates everywhere would count as
every domain's expert, and "p_correct" would only measure that dominance); p_correct at the
transition is the weight on the *next* domain's expert there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from suite.contract import Side, TaskInfo, selected_layer
from suite.seeding import derive_seed, seeded_global_rng
from suite.tasks.columns import fingerprint, to_dataset
from suite.tasks.coverage import k_for_coverage
from suite.tasks.families.lm.corpus import corpus_dataset
from suite.tasks.families.lm.data import CharBatch, draw_batch
from suite.tasks.families.lm.model import CharLM
from suite.tasks.families.lm.requests import OFFERED, request_losses
from suite.tasks.families.lm.spec import ROUTING_METRICS, LMSpec, RealLanguages
from suite.tasks.family import ArrayResult, RunContext, RunOutput, only_result
from suite.tasks.seed_stack import GateStack, ModuleStack, stack_gates
from suite.tasks.training import diagnostics_summary, thin

LN2 = math.log(2.0)
LIFT_STEPS = 3  # anticipation_lift compares the transition step with this many steps before it
LAYER_ENTRIES = ("dsc", "dense")  # layers a layer entry may select (suite.contract) on an MoE task


def task_info(spec: LMSpec) -> TaskInfo:
    d, m = spec.data, spec.model
    return TaskInfo(
        d_model=m.d_model,
        n_experts=m.n_experts,
        seq_len=d.seq_len - 1,
        kind="router",
        inputs=("x", "token_ids"),
        extras={
            "vocab_size": d.vocab,
            "top_k": m.top_k,
            "family": "lm",
            "requests": OFFERED if m.layer == "moe" else (),
            "layers": LAYER_ENTRIES if m.layer == "moe" else (),
        },
    )


def transition_marks(data: Any) -> dict[str, float]:
    """The transition steps to mark on per-step curves (none where the switch moves)."""
    if data.random_switch is not None:
        return {}
    steps = [data.switch_at, *getattr(data, "more_switches", [])]
    return {
        ("transition" if i == 0 else f"transition {i + 1}"): float(s - 1)
        for i, s in enumerate(steps)
    }


def epoch_seed(data_seed: int, epoch: int) -> int:
    return derive_seed(data_seed, "epoch", epoch)


def _columns(batches: list[CharBatch], first_epoch: int) -> dict[str, np.ndarray]:
    n = batches[0].chars.shape[0]
    return {
        "epoch": np.repeat(np.arange(first_epoch, first_epoch + len(batches)), n).astype(np.int32),
        "chars": torch.cat([b.chars for b in batches]).numpy().astype(np.int8),
        "domains": torch.cat([b.domains for b in batches]).numpy().astype(np.int8),
        "switches": torch.cat([b.switches for b in batches]).numpy().astype(np.int16),
    }


def metric_seed(data_seed: int, epoch: int) -> int:
    """The batch the metrics read at a window epoch: the training batch itself for synthetic
    streams (a fresh draw, unseen), a held-out batch for real text."""
    return derive_seed(data_seed, "held-out", epoch)


def window_batches(spec: LMSpec, data_seed: int) -> tuple[list[CharBatch], int]:
    t, d = spec.train, spec.data
    first = max(0, t.epochs - t.eval_window)
    batches = [
        draw_batch(d, t.batch_size, metric_seed(data_seed, e), "held-out")
        if d.held_out
        else draw_batch(d, t.batch_size, epoch_seed(data_seed, e))
        for e in range(first, t.epochs)
    ]
    return batches, first


def eval_dataset(spec: LMSpec, data_seed: int):
    if isinstance(spec.data, RealLanguages):
        return corpus_dataset(tuple(spec.data.languages), spec.data.train_share)
    batches, first = window_batches(spec, data_seed)
    return to_dataset(_columns(batches, first))


class Window:
    """What the metrics need from the last epochs: per-step CE and gate weights."""

    def __init__(self) -> None:
        self.ce: list[Tensor] = []  # (B, T) nats
        self.weights: list[Tensor] = []  # (B, T, E)
        self.batches: list[CharBatch] = []

    def add(self, ce: Tensor, weights: Tensor, batch: CharBatch) -> None:
        self.ce.append(ce.detach().cpu())
        self.weights.append(weights.detach().cpu())
        self.batches.append(batch)

    def metrics(self, spec: LMSpec) -> tuple[dict[str, float], dict[str, ArrayResult]]:
        d = spec.data
        ce, w = torch.cat(self.ce), torch.cat(self.weights).double()
        input_domain = torch.cat([b.domains[:, :-1] for b in self.batches])
        target_domain = torch.cat([b.target_domains for b in self.batches])
        switches = torch.cat([b.switches for b in self.batches])  # (B, S)
        switch = switches[:, 0]
        n_domains, E = d.n_domains, w.shape[-1]
        mean_by_domain = torch.stack(
            [w[input_domain == dom].mean(0) for dom in range(n_domains)]
        )  # (domains, E)
        others = (mean_by_domain.sum(0, keepdim=True) - mean_by_domain) / max(n_domains - 1, 1)
        expert_of = (mean_by_domain - others).argmax(-1)  # the expert each domain favours most
        rows = torch.arange(ce.shape[0])[:, None]
        t_trans = switches - 1  # (B, S): every transition step
        nxt = expert_of[target_domain[rows, t_trans]]  # the next domain's expert at each
        p_trans = w[rows, t_trans, nxt].mean().item()
        before = (t_trans[..., None] - torch.arange(1, LIFT_STEPS + 1)).clamp(min=0)  # (B, S, 3)
        p_before = w[rows[..., None], before, nxt[..., None]].mean().item()
        lo, hi = (m - d.switch_at for m in d.mid)
        mid_steps = (switch[:, None] + torch.arange(lo, hi + 1)[None, :]).clamp(max=ce.shape[1] - 1)
        mid_w = w[rows, mid_steps]  # (B, steps, E)
        mid_expert = expert_of[input_domain[rows, mid_steps]]
        p_mid = mid_w.gather(-1, mid_expert[..., None]).mean().item()
        load = w.reshape(-1, E).mean(0)
        entropy = float(-(load * torch.log2(load.clamp(min=1e-12))).sum())
        metrics = {
            "bpc_all": ce.mean().item() / LN2,
            "bpc_transition": ce[rows, t_trans].mean().item() / LN2,
            "p_correct_transition": p_trans,
            "p_correct_mid": p_mid,
            "anticipation_lift": p_trans - p_before,
            "k_coverage": k_for_coverage(p_trans),
            "load_entropy": entropy,
            "max_load": load.max().item(),
        }
        arrays = {
            "bpc_by_position": ArrayResult(
                ce.mean(0) / LN2,
                {"step": list(range(ce.shape[1]))},
                marks=transition_marks(d),
            )
        }
        return metrics, arrays


def _read(
    lm: ModuleStack, stack: GateStack, inputs: Tensor, targets: Tensor, spec: LMSpec
) -> tuple[Tensor, Tensor, Any, Tensor, Tensor]:
    """Per-step cross-entropy (S, B, T), the experts' mixing weights (S, B, T, E), the
    gates' outputs, the layer's own aux loss (S,: DSC's; 0 for the MoE and dense) and the
    embeddings the gates read (S, B, T, D), for inputs (S, B, T) of every seed."""
    m = spec.model
    x = lm.call("embed", inputs)
    out = stack(x, Side(token_ids=inputs))
    logits, weights, layer_aux = lm.call("finish", x, out.logits, dispatch=m.dispatch, k=m.top_k)
    ce = F.cross_entropy(logits.flatten(0, 2), targets.flatten(), reduction="none")
    return ce.view_as(inputs), weights, out, layer_aux, x


def run(spec: LMSpec, gate: Any, ctx: RunContext) -> RunOutput:
    return only_result(run_seeds(spec, [gate], [ctx]))


def run_seeds(
    spec: LMSpec, gates: list[Any], ctxs: list[RunContext], vectorise: bool = True
) -> list[RunOutput | BaseException]:
    """Train one gate's seeds together (``suite.tasks.seed_stack``): the seeds' character LMs
    are stacked like their gates; each seed keeps its own model, stream and result."""
    d, m, t = spec.data, spec.model, spec.train
    device = ctxs[0].device
    S = len(gates)
    layer = selected_layer(gates[0]) or m.layer  # a layer entry's layer, else the spec's
    models = []
    for ctx in ctxs:
        with seeded_global_rng(ctx.seeds.derive("model")):
            models.append(
                CharLM(d.vocab, m.d_model, m.n_experts, m.ff_mult, layer, m.active_experts).to(
                    device
                )
            )
    # Top-k dispatch sizes its buffers from the data (the busiest expert's load): never vmapped.
    lm = ModuleStack(models, vectorise=vectorise and m.dispatch == "soft")

    def draw(epoch: int, seed_of: Any = epoch_seed, split: str = "train") -> list[CharBatch]:
        return [draw_batch(d, t.batch_size, seed_of(ctx.seeds.data, epoch), split) for ctx in ctxs]

    def stacked(batches: list[CharBatch], field: str) -> Tensor:
        return torch.stack([getattr(b, field) for b in batches]).to(device)

    first = draw(0)
    inputs0 = stacked(first, "inputs")
    with torch.no_grad():
        x0 = lm.call("embed", inputs0)
    stack = stack_gates(
        gates, task_info(spec), x0, Side(token_ids=inputs0), vectorise=lm.vectorised
    )
    optimizer = stack.optimizer(t.lr, lm.parameters())
    windows, losses = [Window() for _ in range(S)], torch.zeros(t.epochs, S)
    first_window = max(0, t.epochs - t.eval_window)
    seed_axis = torch.arange(S, device=device)[:, None, None]
    rows = torch.arange(t.batch_size, device=device)[None, :, None]
    stack.train()
    lm.train()
    for epoch in range(t.epochs):
        batch = first if epoch == 0 else draw(epoch)
        targets = stacked(batch, "targets")
        ce, weights, out, layer_aux, x = _read(lm, stack, stacked(batch, "inputs"), targets, spec)
        scale = torch.ones_like(ce)
        scale[seed_axis, rows, stacked(batch, "switches") - 1] = t.transition_weight
        weighted = ce * scale
        # Per-seed reductions: a seed's numbers must not depend on the seeds beside it.
        per_seed = torch.stack([w.mean() for w in weighted]) + out.aux_loss + layer_aux
        per_seed = per_seed + request_losses(lm, out.outputs, x, targets, scale)
        loss = stack.total_loss(per_seed, epoch)
        losses[epoch] = per_seed.detach().cpu()
        if epoch >= first_window and not d.held_out:
            for s in range(S):
                windows[s].add(ce[s], weights[s], batch[s])
        elif epoch >= first_window:
            with torch.no_grad():
                held = draw(epoch, metric_seed, "held-out")
                inputs, targets = stacked(held, "inputs"), stacked(held, "targets")
                held_ce, held_weights, *_ = _read(lm, stack, inputs, targets, spec)
                for s in range(S):
                    windows[s].add(held_ce[s], held_weights[s], held[s])
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        for ctx in ctxs:
            ctx.tick(epoch + 1, t.epochs)
    notes = [f"seeds ran one after another: {stack.reason}"] if stack.reason else []
    if layer != m.layer:
        notes.append(
            f"layer entry: {layer} in place of the experts, at their active parameters; it routes "
            "nothing, so no routing metrics"
        )
    elif layer != "moe":
        notes.append(
            f"layer {layer}: the experts are replaced, the gate's logits mix nothing (only its "
            "aux loss trains it); no routing metrics"
        )
    wanted = [k for k in spec.metrics if layer == "moe" or k not in ROUTING_METRICS]
    results: list[RunOutput | BaseException] = []
    for s in range(S):
        if s in stack.failed:
            results.append(stack.failed[s])
            continue
        metrics, arrays = windows[s].metrics(spec)
        steps, values = thin(losses[:, s])
        arrays["train_loss"] = ArrayResult(values, {"epoch": steps})
        results.append(
            RunOutput(
                metrics={k: v for k, v in metrics.items() if k in wanted},
                arrays=arrays,
                diagnostics=diagnostics_summary(stack.gates[s].diagnostics()),
                notes=list(notes),
                data_fingerprint=fingerprint(_columns(windows[s].batches, first_window)),
            )
        )
    return results

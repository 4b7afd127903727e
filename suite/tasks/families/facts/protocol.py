"""Training updaters on the frozen base, several gates of one seed in lockstep over one data
pass, then evaluating each (``evaluation``: in context, persistent, capacity)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.gates.proxy import release, side_twin
from suite.tasks.families.facts.base import FrozenBase
from suite.tasks.families.facts.data import draw_episodes, episode_seed, scored_labels
from suite.tasks.families.facts.evaluation import Evaluator
from suite.tasks.families.facts.layouts import layout_of
from suite.tasks.families.facts.pretrain import load_base, vocab_of
from suite.tasks.families.facts.reading import SharedTrunk, Trunk, read, task_info
from suite.tasks.families.facts.spec import FactsSpec
from suite.tasks.family import ArrayResult, RunContext, RunOutput, only_result
from suite.tasks.training import check_finite, diagnostics_summary, make_optimizer, thin


def by_part(spec: FactsSpec, diagnostics: dict[str, Tensor]) -> dict[str, Tensor]:
    """A per-position ``write_strength`` over the training layout, as its mean on the support,
    gap and query tokens: does the updater learn *when* to write?"""
    found = dict(diagnostics)
    write = found.pop("write_strength", None)
    support, gap, end = spec.support_len, spec.data.gap, spec.seq_len
    if write is None or write.dim() != 1 or write.shape[0] != end:
        return diagnostics
    edges = {"support": (0, support), "gap": (support, support + gap),
             "queries": (support + gap, end)}  # fmt: skip
    for part, (start, end) in edges.items():
        if end > start:
            found[f"write_strength_{part}"] = write[start:end].float().mean()
    return found


def run(spec: FactsSpec, gate: Any, ctx: RunContext) -> RunOutput:
    return only_result(run_gates(spec, [gate], [ctx]))


class Training:
    """One gate's optimisation on the stream of training episodes that a job's gates share."""

    def __init__(self, spec: FactsSpec, gate: Any, ctx: RunContext) -> None:
        self.spec, self.gate, self.ctx = spec, gate, ctx
        self.info = task_info(spec)
        self.optimizer = make_optimizer(spec.train.lr, [gate])
        self.losses = torch.zeros(spec.train.steps)
        gate.train()

    def step(
        self,
        base: FrozenBase,
        step: int,
        tokens: Tensor,
        labels: Tensor,
        shared: tuple[Tensor, Tensor],
    ) -> None:
        """One optimiser step on a batch whose trunk outputs ``shared`` every gate reads."""
        logits, out = read(
            base, self.gate, tokens, self.info, labels=labels, trunk=lambda _: shared
        )
        loss = F.cross_entropy(logits.flatten(0, 1), scored_labels(labels).flatten())
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
        self.losses[step] = check_finite(loss, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.ctx.tick(step + 1, self.spec.train.steps)


def run_gates(
    spec: FactsSpec, gates: list[Any], ctxs: list[RunContext]
) -> list[RunOutput | BaseException]:
    """Train and evaluate several gates on one seed's frozen base, in lockstep: each training
    batch is drawn and read by the frozen trunk once for all of them, and each evaluation read
    once (``SharedTrunk``). A gate sees exactly what it would see alone, so its numbers equal
    its own run's; one gate's failure is its entry and the others go on."""
    ctx0 = ctxs[0]
    if any(c.artifact is None for c in ctxs):
        raise RuntimeError("the facts family needs its pre-trained base (prepared artefact)")
    if len({(c.seeds.data, c.device) for c in ctxs}) != 1:
        raise ValueError("run_gates: every gate of one job must share its seed and device")
    base, base_accuracy = load_base(spec, ctx0.artifact)
    base.to(ctx0.device)
    results: list[RunOutput | BaseException | None] = [None] * len(gates)
    training: dict[int, Training] = {}
    for i, (gate, ctx) in enumerate(zip(gates, ctxs, strict=True)):
        try:
            training[i] = Training(spec, gate, ctx)
        except Exception as exc:  # the gate's failure is its result
            results[i] = exc
    vocab, d, t = vocab_of(spec), spec.data, spec.train
    layout = layout_of(spec, "train")
    learners = [i for i, tr in training.items() if tr.optimizer is not None]
    for step in range(t.steps if learners else 0):
        live = [i for i in learners if results[i] is None]
        if not live:
            break
        ep = draw_episodes(
            vocab, t.batch_size, d.n_facts, d.gap, d.n_queries,
            episode_seed(ctx0.seeds.data, "train", step), d.overwrites, layout,
        )  # fmt: skip
        tokens, labels = (z.to(ctx0.device) for z in ep.in_context())
        with torch.no_grad():
            shared = base.trunk(tokens)
        for i in live:
            try:
                training[i].step(base, step, tokens, labels, shared)
            except Exception as exc:
                results[i] = exc
    trunk = SharedTrunk(base)
    for i, tr in training.items():
        if results[i] is None:
            try:
                results[i] = _evaluate(spec, tr, base, base_accuracy, trunk)
            except Exception as exc:
                results[i] = exc
    return [r if r is not None else RuntimeError("no result") for r in results]


def _evaluate(
    spec: FactsSpec, tr: Training, base: FrozenBase, base_accuracy: float, trunk: Trunk
) -> RunOutput:
    d, gate, ctx = spec.data, tr.gate, tr.ctx
    arrays: dict[str, ArrayResult] = {}
    if tr.optimizer is not None:
        steps, values = thin(tr.losses)
        arrays["train_loss"] = ArrayResult(values, {"step": steps})
    gate.eval()
    snapshot = side_twin(gate)  # the trained gate, before it reads any evaluation episode
    metrics: dict[str, float] = {}
    diagnostics: dict[str, Any] = {"base_in_context_accuracy": base_accuracy}
    try:
        evaluator = Evaluator(spec, base, snapshot, ctx, trunk)
        with torch.no_grad():
            fp = ""
            if "in_context" in spec.eval.modes:
                found = evaluator.in_context()
                fp = found.pop("fingerprint")
                arrays["acc_by_distance"] = found.pop("acc_by_distance")
                metrics.update(found)
            if "persistent" in spec.eval.modes:
                acc, shuffled = evaluator.persistent(d.n_facts, d.n_queries, "persistent")
                metrics["acc_persistent"] = acc
                diagnostics["persistent_other_state_accuracy"] = shuffled
            if spec.eval.capacity and "capacity" in spec.eval.modes:
                curve = [evaluator.persistent(n, n, f"capacity {n}")[0] for n in spec.eval.capacity]
                arrays["acc_capacity"] = ArrayResult(curve, {"facts": list(spec.eval.capacity)})
                metrics["acc_capacity_max"] = curve[-1]
    finally:
        release(snapshot)
    diagnostics.update(diagnostics_summary(by_part(spec, gate.diagnostics())))
    notes = []
    if base_accuracy < 0.9:
        notes.append(
            f"the frozen base retrieves only {base_accuracy:.1%} of in-window facts after "
            "pre-training; every accuracy here is bounded by it"
        )
    wanted = {k: v for k, v in metrics.items() if k in spec.metrics}
    return RunOutput(
        metrics=wanted, arrays=arrays, diagnostics=diagnostics, notes=notes, data_fingerprint=fp
    )

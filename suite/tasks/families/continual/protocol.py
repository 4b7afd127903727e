"""Learning a task sequence through routed sub-experts on the frozen base, and measuring it.

For each stage i the gate hears ``begin_task(i)``, a fresh Adam (the standard reset between
experiences, so no momentum from one task moves the next) trains the sub-experts and the router
on task i alone, then ``end_task(i)``. Before any training and after every task, every task's
fixed evaluation set is scored (the accuracy matrix R) and the router's top-k experts on it are
kept (the routing probes). Task identity is hidden at test time unless the spec is task-aware.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, grad, vmap

from suite.contract import GateOutput, Side, TaskInfo
from suite.gates.kinds import check_forward, kinds, takes_side
from suite.seeding import derive_seed, seeded_global_rng
from suite.tasks.columns import fingerprint, to_dataset
from suite.tasks.families.continual import metrics as cl
from suite.tasks.families.continual.data import Batch, TaskSequence, draw_sequence
from suite.tasks.families.continual.model import FrozenBase, SubExperts, top_k_weights
from suite.tasks.families.continual.pretrain import load_base
from suite.tasks.families.continual.regimes import Regime, regime_of
from suite.tasks.families.continual.spec import ContinualSpec
from suite.tasks.family import ArrayResult, RunContext, RunOutput
from suite.tasks.training import check_finite, diagnostics_summary, make_optimizer, thin


def task_info(spec: ContinualSpec) -> TaskInfo:
    m, d = spec.model, spec.data
    return TaskInfo(
        d_model=m.d_model,
        n_experts=m.n_experts,
        seq_len=d.seq_len,
        kind="router",
        inputs=("x", "task_id") if d.task_aware else ("x",),
        extras={"n_tasks": d.n_tasks, "top_k": m.top_k},
    )


VMAP_TOLERANCE = 1e-5
"""Relative: a sequence's task loss under ``vmap`` against the gate's own forward on the batch."""


def eval_batches(spec: ContinualSpec, sequence: TaskSequence, data_seed: int) -> list[Batch]:
    """Each task's fixed evaluation set (also its routing probe set), in learning order."""
    return [
        sequence.sample(stage, spec.eval.batch_size, derive_seed(data_seed, "eval", stage))
        for stage in range(spec.data.n_tasks)
    ]


def eval_dataset(spec: ContinualSpec, data_seed: int):
    sequence = draw_sequence(spec.data, data_seed)
    return to_dataset(_columns(eval_batches(spec, sequence, data_seed)))


def _columns(batches: list[Batch]) -> dict[str, np.ndarray]:
    inputs = torch.cat([b.inputs for b in batches])
    return {
        "task": torch.cat([b.task for b in batches]).numpy().astype(np.int16),
        "inputs": inputs.numpy().astype(np.float32 if inputs.is_floating_point() else np.int16),
        "labels": torch.cat([b.labels for b in batches]).numpy().astype(np.int16),
    }


class Learner:
    """The frozen base, the sub-experts and the gate, trained stage by stage."""

    def __init__(self, spec: ContinualSpec, gate: Any, ctx: RunContext) -> None:
        if ctx.artifact is None:
            raise RuntimeError("the continual family needs its pre-trained base (artefact)")
        self.spec, self.gate, self.ctx = spec, gate, ctx
        self.sequence = draw_sequence(spec.data, ctx.seeds.data)
        base, self.base_accuracy = load_base(spec, self.sequence, ctx.artifact)
        self.base: FrozenBase = base.to(ctx.device)
        m = spec.model
        with seeded_global_rng(ctx.seeds.derive("sub-experts")):
            self.experts = SubExperts(m.n_experts, m.d_model, m.rank).to(ctx.device)
        self.info = task_info(spec)
        self.kind = kinds.get("router")
        self.regime: Regime = regime_of(gate)
        self.losses: list[float] = []
        self.table: Tensor | None = None

    # -- one pass -------------------------------------------------------------------------------

    @torch.no_grad()
    def _features(self, inputs: Tensor) -> Tensor:
        """The frozen base's hidden states; for tokens a lookup in the table of every token's
        (the base is per position, so the table is exact and computed once)."""
        if self.sequence.input_kind != "tokens":
            return self.base.features(inputs)
        if self.table is None:
            every = torch.arange(self.sequence.n_inputs, device=inputs.device)
            self.table = self.base.features(every[None])[0]
        return self.table[inputs]

    def forward(self, batch: Batch) -> tuple[Tensor, GateOutput, Tensor]:
        """Output logits (N, T, C), the gate's output and the chosen experts (N, T, k)."""
        dev = self.ctx.device
        h = self._features(batch.inputs.to(dev))
        side = Side(task_id=batch.task.to(dev)) if self.spec.data.task_aware else None
        out = self.kind.forward(self.gate, h, None, side)
        check_forward(self.gate, out, self.info, h.shape[0], h.shape[1])
        weights, chosen = top_k_weights(out.logits, self.spec.model.top_k)
        return self.base.logits(self.experts(h, weights)), out, chosen

    def loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Task loss and the total (plus the gate's aux loss and the regime's penalty)."""
        logits, out, _ = self.forward(batch)
        task = F.cross_entropy(logits.flatten(0, 1), batch.labels.to(logits.device).flatten())
        total = task
        for extra in (out.aux_loss, self.regime.penalty()):
            if extra is not None:
                total = total + extra
        return task, total

    # -- training -------------------------------------------------------------------------------

    def params(self) -> list[torch.nn.Parameter]:
        """What the regime's penalty covers: the sub-experts and the router where it is here."""
        own = [p for p in self.gate.parameters() if p.requires_grad]
        return [*self.experts.parameters(), *own]

    def batch(self, stages: list[int], step: int, size: int) -> Batch:
        """A training batch: of one task, or split evenly over several (the joint ceiling)."""
        seed = derive_seed(self.ctx.seeds.data, "train", *stages, step)
        if len(stages) == 1:
            return self.sequence.sample(stages[0], size, seed)
        sizes = [len(c) for c in torch.arange(size).tensor_split(len(stages))]
        parts = [
            self.sequence.sample(s, n, derive_seed(seed, s))
            for s, n in zip(stages, sizes, strict=True)
            if n
        ]
        return Batch(*(torch.cat(z) for z in zip(*((p.inputs, p.labels, p.task) for p in parts))))

    def train_stage(self, stages: list[int], steps: int) -> None:
        t = self.spec.train
        optimizer = make_optimizer(t.lr, [self.experts, self.gate])
        self.gate.train()
        for step in range(steps):
            _, total = self.loss(self.batch(stages, step, t.batch_size))
            self.losses.append(check_finite(total, len(self.losses)))
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            self.ctx.tick(len(self.losses), self.total_steps)
        self.gate.eval()

    @property
    def total_steps(self) -> int:
        return self.spec.train.steps * self.spec.data.n_tasks

    # -- EWC's empirical Fisher -----------------------------------------------------------------

    def fisher_batch(self, stage: int) -> Batch:
        n = self.spec.train.fisher_samples
        return self.sequence.sample(stage, n, derive_seed(self.ctx.seeds.data, "fisher", stage))

    def fisher_grads(self, stage: int) -> list[Tensor]:
        """One gradient of the task loss per sequence of the task, stacked (n, *shape) for each of
        ``params()`` (zeros where a parameter is unused): the empirical Fisher is a mean of squared
        per-example gradients; squared batch means would shrink it by the batch size. Called once
        per task, for the ``ewc`` regime only. One vectorised pass where the gate allows it, else
        the per-sequence loop."""
        batch = self.fisher_batch(stage)
        stacked = self.vectorised_grads(batch)
        if stacked is not None:
            return stacked
        rows = list(self.per_sequence_grads(batch))
        return [
            torch.stack([torch.zeros_like(p) if r[j] is None else r[j] for r in rows])
            for j, p in enumerate(self.params())
        ]

    def per_sequence_grads(self, batch: Batch) -> Iterator[list[Tensor | None]]:
        """The per-example gradients one sequence at a time (None where a parameter is unused):
        the path of every gate ``vectorised_grads`` cannot run."""
        params = self.params()
        for i in range(batch.task.shape[0]):
            one = Batch(batch.inputs[i : i + 1], batch.labels[i : i + 1], batch.task[i : i + 1])
            task, _ = self.loss(one)
            yield list(torch.autograd.grad(task, params, allow_unused=True))

    def vectorised_grads(self, batch: Batch) -> list[Tensor] | None:
        """The per-example gradients of ``params()`` in one ``vmap(grad)`` over the sequences
        (``torch.func``), or None where that cannot run or would change them: a gate in its own
        process (its parameters are not here), one whose forward ``vmap`` refuses (randomness,
        data-dependent control flow, ``.item()``), or one whose per-sequence losses under ``vmap``
        differ from its own forward's on the whole batch (which also checks and audits the call)."""
        gate = getattr(self.gate, "inner", self.gate)
        if any(hasattr(m, "remote_optimizer") for m in gate.modules()):
            return None
        experts = {name: p.detach() for name, p in self.experts.named_parameters()}
        own = {name: p for name, p in gate.named_parameters() if p.requires_grad}
        mine = [*self.experts.parameters(), *own.values()]
        params = self.params()
        if len(mine) != len(params) or any(a is not b for a, b in zip(mine, params, strict=True)):
            return None
        dev, top_k = self.ctx.device, self.spec.model.top_k
        aware = self.spec.data.task_aware and takes_side(gate)
        h, labels, tasks = (
            t.to(dev) for t in (self._features(batch.inputs.to(dev)), batch.labels, batch.task)
        )

        def loss(p_experts: dict, p_gate: dict, h: Tensor, labels: Tensor, task: Tensor):
            x = h.unsqueeze(0)
            args = (x, None, Side(task_id=task.unsqueeze(0))) if aware else (x,)
            weights, _ = top_k_weights(functional_call(gate, p_gate, args).logits, top_k)
            mixed = functional_call(self.experts, p_experts, (x, weights))
            value = F.cross_entropy(self.base.logits(mixed)[0], labels)
            return value, value.detach()

        per_example = vmap(grad(loss, argnums=(0, 1), has_aux=True), in_dims=(None, None, 0, 0, 0))
        try:
            (g_experts, g_gate), losses = per_example(
                experts, {name: p.detach() for name, p in own.items()}, h, labels, tasks
            )
        except Exception:  # any vmap failure means: one sequence at a time
            return None
        with torch.no_grad():
            logits, _, _ = self.forward(batch)
            whole = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(1)
        if not torch.allclose(losses, whole, rtol=VMAP_TOLERANCE, atol=VMAP_TOLERANCE):
            return None
        return [*g_experts.values(), *g_gate.values()]

    # -- evaluation -----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, batches: list[Batch]) -> tuple[list[float], list[np.ndarray]]:
        accuracy, chosen = [], []
        for batch in batches:
            logits, _, experts = self.forward(batch)
            hits = logits.argmax(-1).cpu() == batch.labels
            accuracy.append(hits.float().mean().item())
            chosen.append(experts.cpu().numpy())
        return accuracy, chosen


def _changed(before: list[Tensor], after: list[Tensor]) -> int:
    return int(sum((a != b).sum().item() for a, b in zip(before, after, strict=True)))


def run(spec: ContinualSpec, gate: Any, ctx: RunContext) -> RunOutput:
    learner = Learner(spec, gate, ctx)
    sequence, n = learner.sequence, spec.data.n_tasks
    probes = eval_batches(spec, sequence, ctx.seeds.data)
    gate.eval()
    first, _ = learner.evaluate(probes)
    rows, chosen, changed = [first], [], []
    continual = learner.regime.continual
    stages = [[i] for i in range(n)] if continual else [list(range(n))]
    for index, stage in enumerate(stages):
        before = [p.detach().clone() for p in learner.experts.parameters()]
        gate.begin_task(index)
        learner.train_stage(stage, spec.train.steps * len(stage))
        if continual:
            learner.regime.consolidate(learner.params(), lambda i=index: learner.fisher_grads(i))
        gate.end_task(index)
        changed.append(_changed(before, [p.detach() for p in learner.experts.parameters()]))
        accuracy, experts = learner.evaluate(probes)
        rows.append(accuracy)
        chosen.append(experts)
    if not continual:  # one phase learned every task: each row after it is the final one
        rows += [rows[-1]] * (n - 1)
    R = np.array(rows)
    tasks = [str(j + 1) for j in range(n)]
    metrics: dict[str, float] = {"acc": cl.acc(R), "params_per_task": float(np.mean(changed))}
    arrays = {
        "accuracy_matrix": ArrayResult(R, {"after": ["start", *tasks], "task": tasks}),
    }
    if continual:
        stability, drift = cl.routing_matrices(chosen, spec.model.n_experts)
        metrics.update(
            bwt=cl.bwt(R),
            fwt=cl.fwt(R),
            forgetting_max=cl.forgetting_max(R),
            forgetting_last=cl.forgetting_last(R),
            routing_stability=cl.below_diagonal_mean(stability),
            load_drift=cl.below_diagonal_mean(drift),
        )
        arrays["stability_matrix"] = ArrayResult(stability, {"after": tasks, "task": tasks})
        arrays["load_drift_matrix"] = ArrayResult(drift, {"after": tasks, "task": tasks})
    steps, values = thin(torch.tensor(learner.losses))
    arrays["train_loss"] = ArrayResult(values, {"step": steps})
    bayes = [sequence.bayes_accuracy(j, b) for j, b in enumerate(probes)]
    diagnostics: dict[str, Any] = {
        "base_generic_accuracy": learner.base_accuracy,
        "task_order": sequence.order,
        "regime": learner.regime.name,
        "adapter_params_changed": changed,
    }
    if all(b is not None for b in bayes):
        diagnostics["bayes_accuracy"] = bayes
    diagnostics.update(diagnostics_summary(gate.diagnostics()))
    notes = []
    if not continual:
        notes.append(
            f"regime '{learner.regime.name}' learns every task at once: a ceiling for ACC; "
            "transfer, forgetting and routing stability are undefined and not reported"
        )
    wanted = {k: v for k, v in metrics.items() if k in spec.metrics}
    return RunOutput(
        metrics=wanted,
        arrays=arrays,
        diagnostics=diagnostics,
        notes=notes,
        data_fingerprint=fingerprint(_columns(probes)),
    )

"""Training an updater on the frozen base, and the three evaluation modes.

* ``in_context``: support, gap and queries in one sequence (the training layout).
* ``persistent``: read the support alone, keep the updater's state, then answer the queries in a
  fresh sequence from that state. Both sequences are read by *fresh copies* of the trained gate,
  so nothing the gate keeps outside its state survives the reset. A control answers each episode
  from another episode's state: an honest updater is at chance there, and one that answers
  correctly anyway has carried the facts some other way (``LeakError``).
* ``capacity``: several reads accumulate N facts into one state, then every fact is queried.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor

from suite.contract import State, TaskInfo, UpdaterOutput
from suite.gates.kinds import check_forward, kinds
from suite.gates.proxy import release, side_twin
from suite.gates.wire import map_tensors
from suite.tasks.columns import fingerprint, to_dataset
from suite.tasks.families.facts.base import BaseModel
from suite.tasks.families.facts.data import (
    Episodes,
    cat_episodes,
    draw_episodes,
    episode_seed,
    scored_labels,
    scored_positions,
)
from suite.tasks.families.facts.pretrain import answer_accuracy, load_base, vocab_of
from suite.tasks.families.facts.spec import FactsSpec
from suite.tasks.families.facts.templates import layout_of
from suite.tasks.family import ArrayResult, RunContext, RunOutput
from suite.tasks.training import check_finite, diagnostics_summary, make_optimizer, thin

LEAK_P_VALUE = 1e-6  # the control's binomial test against chance


class LeakError(RuntimeError):
    """The gate answered persistent queries from another episode's state: it leaks."""


def task_info(spec: FactsSpec) -> TaskInfo:
    m = spec.model
    return TaskInfo(
        d_model=m.d_model,
        n_experts=m.n_experts,
        seq_len=spec.seq_len,
        kind="updater",
        extras={
            "rank": m.rank,
            "adapted": [[m.d_model, m.d_ff], [m.d_ff, m.d_model]],
            "vocab_size": vocab_of(spec).size,
        },
    )


def read(
    base: BaseModel,
    gate: Any,
    tokens: Tensor,
    info: TaskInfo,
    state: State = None,
    labels: Tensor | None = None,
) -> tuple[Tensor | None, UpdaterOutput]:
    """The gate's output over ``tokens`` and, where ``labels`` are given, the adapted base's
    logits at the scored positions only (B, K, V), in order: the rest of the sequence only feeds
    the updater, so the experts and the head run on K positions instead of T."""
    with torch.no_grad():
        x, u = base.trunk(tokens)
    out = kinds.get("updater").forward(gate, u, state)
    check_forward(gate, out, info, tokens.shape[0], tokens.shape[1])
    if labels is None:
        return None, out
    at = scored_positions(labels)  # (B, K)

    def pick(t: Tensor) -> Tensor:
        index = at.view(*at.shape, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:])
        return t.gather(1, index)

    return base.finish(pick(x), pick(u), tuple(pick(f) for f in out.factors)), out


def eval_episodes(spec: FactsSpec, data_seed: int, index: int, n_facts: int, n_queries: int):
    d = spec.data
    return draw_episodes(
        vocab_of(spec), spec.eval.batch_size, n_facts, d.gap, n_queries,
        episode_seed(data_seed, f"eval-{n_facts}", index), d.overwrites, layout_of(spec, "test"),
    )  # fmt: skip


def all_eval_episodes(spec: FactsSpec, data_seed: int, n_facts: int, n_queries: int) -> Episodes:
    """Every evaluation batch of a mode as one batch, read at once: an updater is checked for
    batch isolation, so each episode's answers are those of its own batch, and one read costs
    what one small batch's read costs in a loop's overhead."""
    return cat_episodes(
        [eval_episodes(spec, data_seed, i, n_facts, n_queries) for i in range(spec.eval.batches)]
    )


def eval_dataset(spec: FactsSpec, data_seed: int):
    """The in-context evaluation episodes as a Dataset."""
    d = spec.data
    tokens, labels = all_eval_episodes(spec, data_seed, d.n_facts, d.n_queries).in_context()
    return to_dataset(_columns([tokens], [labels]))


def _columns(tokens: list[Tensor], labels: list[Tensor]) -> dict[str, np.ndarray]:
    return {
        "tokens": torch.cat(tokens).numpy().astype(np.int16),
        "labels": torch.cat(labels).numpy().astype(np.int16),
    }


def another_episode(t: Tensor, batch: int) -> Tensor:
    """A state tensor with each episode's entry replaced by the previous episode's: rolled along
    its first axis of the batch's size (states need not be batch-first)."""
    axes = [i for i, n in enumerate(t.shape) if n == batch]
    return t.roll(1, dims=axes[0]) if axes else t


class Evaluator:
    """The evaluation modes of one trained gate; every episode is read by fresh copies of it."""

    def __init__(self, spec: FactsSpec, base: BaseModel, snapshot: Any, ctx: RunContext):
        self.spec, self.base, self.snapshot, self.ctx = spec, base, snapshot, ctx
        self.info = task_info(spec)
        self.vocab = vocab_of(spec)
        self.device = ctx.device

    def _fresh_read(
        self, tokens: Tensor, state: State = None, labels: Tensor | None = None
    ) -> tuple[Tensor | None, UpdaterOutput]:
        gate = side_twin(self.snapshot)
        try:
            dev = self.device
            lab = None if labels is None else labels.to(dev)
            return read(self.base, gate, tokens.to(dev), self.info, state, lab)
        finally:
            release(gate)

    def in_context(self) -> dict[str, Any]:
        spec, d = self.spec, self.spec.data
        ep = all_eval_episodes(spec, self.ctx.seeds.data, d.n_facts, d.n_queries)
        seq, lab = ep.in_context()
        logits, _ = self._fresh_read(seq, labels=lab)
        hits = answer_accuracy(logits.cpu(), scored_labels(lab), self.vocab).view(-1, d.n_queries)
        dist, overwritten = ep.distances(), ep.overwritten
        out: dict[str, Any] = {"acc_in_context": hits.mean().item()}
        if d.overwrites:
            out["acc_overwritten"] = hits[overwritten].mean().item()
        out["acc_by_distance"] = self._by_distance(hits, dist)
        out["fingerprint"] = fingerprint(_columns([seq], [lab]))
        return out

    def _by_distance(self, hits: Tensor, dist: Tensor) -> ArrayResult:
        """Accuracy at every distance the layout allows (NaN where no query fell)."""
        spec, d, layout = self.spec, self.spec.data, layout_of(self.spec, "test")
        start = spec.support_len + d.gap
        possible = sorted(
            {start + layout.query_len * q + a - (layout.fact_len * i + v)
             for q in range(d.n_queries) for i in range(d.n_facts + d.overwrites)
             for a in layout.answer_in_query.tolist() for v in layout.value_in_fact.tolist()}
        )  # fmt: skip
        index = torch.searchsorted(torch.tensor(possible), dist.flatten())
        n = torch.bincount(index, minlength=len(possible)).double()
        k = torch.bincount(index, weights=hits.flatten().double(), minlength=len(possible))
        acc = torch.where(n > 0, k / n.clamp(min=1), torch.nan)
        return ArrayResult(acc, {"distance": possible})

    def _answer(self, ep: Episodes, state: State, reads: list[Tensor] | None = None) -> Tensor:
        """Per-query correctness of answering ``ep``'s queries in fresh sequences from ``state``."""
        n = ep.query_len * self.spec.data.n_queries
        hits = []
        for part, lab in zip(
            ep.queries.split(n, dim=1), ep.labels.split(n, dim=1),
            strict=True,
        ):  # fmt: skip
            logits, _ = self._fresh_read(part, state, labels=lab)
            found = answer_accuracy(logits.cpu(), scored_labels(lab), self.vocab)
            hits.append(found.view(lab.shape[0], -1))
        return torch.cat(hits, dim=1)

    def _saved_state(self, ep: Episodes) -> State:
        """The state after reading the support, n_facts facts per fresh sequence (and a fresh
        copy of the gate per sequence: only the state goes from one read to the next)."""
        state = None
        for part in ep.support.split(ep.fact_len * self.spec.data.n_facts, dim=1):
            state = self._fresh_read(part, state)[1].state
        return state

    def persistent(self, n_facts: int, n_queries: int, purpose: str) -> tuple[float, float]:
        """Accuracy from the saved state, and from another episode's state (the leak control)."""
        ep = all_eval_episodes(self.spec, self.ctx.seeds.data, n_facts, n_queries)
        state = self._saved_state(ep)
        acc = self._answer(ep, state)
        other = map_tensors(state, partial(another_episode, batch=ep.queries.shape[0]))
        shuffled = self._answer(ep, other)
        self._check_leak(shuffled, purpose)
        return acc.mean().item(), shuffled.mean().item()

    def _check_leak(self, shuffled: Tensor, purpose: str) -> None:
        chance = 1.0 / self.spec.data.n_values
        k, n = int(shuffled.sum()), shuffled.numel()
        if n and stats.binomtest(k, n, chance, alternative="greater").pvalue < LEAK_P_VALUE:
            raise LeakError(
                f"{purpose}: answered from another episode's saved state, the gate is right on "
                f"{k} of {n} queries (chance {chance:.3f}): the facts reached the answers some "
                "way other than the state the updater returned (a module-level variable, a "
                "file, ...). Keep everything an episode writes in the returned state."
            )


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
    if ctx.artifact is None:
        raise RuntimeError("the facts family needs its pre-trained base (prepared artefact)")
    base, base_accuracy = load_base(spec, ctx.artifact)
    base.to(ctx.device)
    vocab, d, t = vocab_of(spec), spec.data, spec.train
    info, layout = task_info(spec), layout_of(spec, "train")
    optimizer = make_optimizer(t.lr, [gate])
    arrays: dict[str, ArrayResult] = {}
    gate.train()
    if optimizer is not None:
        losses = torch.zeros(t.steps)
        for step in range(t.steps):
            ep = draw_episodes(
                vocab, t.batch_size, d.n_facts, d.gap, d.n_queries,
                episode_seed(ctx.seeds.data, "train", step), d.overwrites, layout,
            )  # fmt: skip
            tokens, labels = (z.to(ctx.device) for z in ep.in_context())
            logits, out = read(base, gate, tokens, info, labels=labels)
            loss = F.cross_entropy(logits.flatten(0, 1), scored_labels(labels).flatten())
            if out.aux_loss is not None:
                loss = loss + out.aux_loss
            losses[step] = check_finite(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ctx.tick(step + 1, t.steps)
        steps, values = thin(losses)
        arrays["train_loss"] = ArrayResult(values, {"step": steps})
    gate.eval()
    snapshot = side_twin(gate)  # the trained gate, before it reads any evaluation episode
    metrics: dict[str, float] = {}
    diagnostics: dict[str, Any] = {"base_in_context_accuracy": base_accuracy}
    try:
        evaluator = Evaluator(spec, base, snapshot, ctx)
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

"""Leaderboards, one per task family: normalised scores per task, aggregated by IQM with a
stratified bootstrap over seeds (after rliable, Agarwal et al. 2021). Families are never pooled:
an IQM over unrelated task sets would not be comparable.

Per task and seed, a gate's score on the primary metric is normalised so that 0 is the task's
reference gate (the stateless affinity gate) and 1 the task's ceiling gate where one exists (the
Bayes-optimal causal router, which knows the generator), else the metric's ideal value (accuracy
1, loss 0). Seeds are paired: the same seed's
reference and ceiling runs set that seed's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suite.results.aggregate import ABOVE_LIMIT, PUBLIC_SEEDS, Aggregate, TaskResult
from suite.results.stats import Ratio, shared_ranks, stratified_bootstrap_iqm
from suite.runs.records import GateRef
from suite.seeding import derive_seed

MIN_SCALE = 1e-9
UNRANKED_WHY = {  # a gate with such a status on any task of the family is not ranked
    "failed": "a run failed",
    "partial": "some seeds failed",
    "rejected": "a check or an audit rejected it",
    PUBLIC_SEEDS: "a submission on public seeds, which any gate can regenerate",
    ABOVE_LIMIT: "above the Bayes-optimal limit, which no causal gate can reach",
}


@dataclass
class TaskScale:
    task_id: str
    metric: str
    ceiling: str  # "gate <id>" or "ideal <value>"
    scores: dict[str, dict[int, float]]  # gate -> seed -> normalised score


@dataclass
class LeaderboardRow:
    gate: GateRef
    iqm: float
    ci_low: float
    ci_high: float
    per_task: dict[str, float] = field(default_factory=dict)  # mean normalised score per task
    rank: int | None = None  # None: not ranked, ``unranked`` says why
    unranked: str = ""  # why it is not ranked: per task, the status that keeps it off the ranks
    marks: list[str] = field(default_factory=list)  # the statuses shown beside its name

    @property
    def n_tasks(self) -> int:
        return len(self.per_task)


def task_scale(tres: TaskResult) -> TaskScale | None:
    """Normalised primary-metric scores of the task's ranked gates, or None without a scale."""
    task = tres.task
    metric = task.primary_metric
    reference = tres.gates.get(task.reference_gate) if task.reference_gate else None
    if reference is None or metric not in reference.cells:
        return None
    ref = reference.cells[metric].values
    ceiling_gate = tres.gates.get(task.ceiling_gate) if task.ceiling_gate else None
    if ceiling_gate is not None and ceiling_gate.cells.get(metric) and ceiling_gate.n_ok:
        top, label = ceiling_gate.cells[metric].values, f"gate {task.ceiling_gate}"
    elif task.metrics[metric].ideal is not None:
        ideal = task.metrics[metric].ideal
        top, label = {seed: ideal for seed in ref}, f"ideal {ideal:g}"
    else:
        return None
    scores: dict[str, dict[int, float]] = {}
    for gate_id, gres in tres.gates.items():
        if not gres.scored or metric not in gres.cells:
            continue
        per_seed = {}
        for seed, value in gres.cells[metric].values.items():
            if seed in ref and seed in top and abs(top[seed] - ref[seed]) > MIN_SCALE:
                per_seed[seed] = (value - ref[seed]) / (top[seed] - ref[seed])
        if per_seed:
            scores[gate_id] = per_seed
    return TaskScale(task.id, metric, label, scores)


@dataclass
class VariantColumn:
    """A leaderboard column: each gate's primary-metric score on a held-out variant divided by
    its score on the base task, paired over seeds (a gate that wins by counting positions keeps
    little of it)."""

    variant: str
    base: str
    metric: str
    ratios: dict[str, Ratio]


@dataclass
class Leaderboard:
    family: str
    rows: list[LeaderboardRow]
    scales: list[TaskScale]
    variants: list[VariantColumn] = field(default_factory=list)
    seed_modes: list[str] = field(default_factory=list)  # e.g. ["secret seeds (salt 1a2b3c4d)"]


def variant_columns(tasks: list[TaskResult]) -> list[VariantColumn]:
    return [
        VariantColumn(
            t.task.id,
            t.task.variant_of or "",
            t.task.primary_metric,
            {r.gate: r.score_ratio for r in t.robustness if r.score_ratio is not None},
        )
        for t in tasks
        if t.robustness
    ]


def leaderboards(agg: Aggregate) -> list[Leaderboard]:
    """One leaderboard per family with results, in family-name order."""
    families = sorted({t.task.family for t in agg.tasks})
    boards = []
    for f in families:
        tasks = [t for t in agg.tasks if t.task.family == f]
        modes = sorted({t.seed_label for t in tasks}, key=lambda m: (m == "public seeds", m))
        boards.append(Leaderboard(f, *leaderboard(tasks), variant_columns(tasks), modes))
    return boards


def leaderboard(tasks: list[TaskResult]) -> tuple[list[LeaderboardRow], list[TaskScale]]:
    """The leaderboard over ``tasks`` (the tasks of one family)."""
    scales = [s for s in (task_scale(t) for t in tasks) if s is not None]
    gates: dict[str, GateRef] = {}
    for tres in tasks:
        for gate_id, gres in tres.gates.items():
            gates.setdefault(gate_id, gres.gate)
    rows = []
    for gate_id, ref in sorted(gates.items()):
        groups = {
            s.task_id: list(s.scores[gate_id].values()) for s in scales if gate_id in s.scores
        }
        if not groups:
            continue
        point, low, high = stratified_bootstrap_iqm(
            list(groups.values()), derive_seed("leaderboard", gate_id, *sorted(groups))
        )
        per_task = {task: sum(v) / len(v) for task, v in groups.items()}
        rows.append(LeaderboardRow(ref, point, low, high, per_task))
    # Ranked only with every planned run scored: an IQM over the tasks and seeds a gate did not
    # fail (or break a rule) on would let it fail where it does badly and rank on the rest.
    # Tasks it declines (supports) are skipped for every gate alike and shown as its coverage.
    for row in rows:
        statuses = {t.task.id: t.gates[row.gate.id].status for t in tasks if row.gate.id in t.gates}
        off = {task: status for task, status in statuses.items() if status in UNRANKED_WHY}
        row.unranked = "; ".join(f"{task} ({UNRANKED_WHY[st]})" for task, st in off.items())
        row.marks = sorted(
            {f for t in tasks if row.gate.id in t.gates for f in t.gates[row.gate.id].flags}
        )
    complete = [r for r in rows if not r.unranked]
    ranks = shared_ranks({r.gate.id: (r.ci_low, r.ci_high) for r in complete}, True)
    for row in complete:
        row.rank = ranks[row.gate.id]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, -r.iqm, r.gate.id))
    return rows, scales

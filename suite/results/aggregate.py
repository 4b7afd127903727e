"""Records -> per (task, gate, metric) statistics, paired deltas, shared ranks, ablations, claims.

Aggregation reads records only (they are self-describing), so it serves the report, the site and
any records a user brings; records of another version of a task's spec are set aside as stale."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from suite.results.arrays import ArrayCell, nan_to_none, stack
from suite.results.claims import CellLookup, ClaimVerdict, task_claims
from suite.results.stats import (
    Ratio,
    Summary,
    interaction,
    paired_delta,
    paired_ratio,
    shared_ranks,
    summarize,
)
from suite.runs.records import GateRef, RunRecord, TaskRef
from suite.runs.salt import salt_id, seed_label, seed_mode
from suite.tasks.spec import Claim

# Statuses of gates that are scored but never ranked: a submission on the public seeds (which it
# can regenerate from public code), and a gate whose interval lies above an exact Bayes-optimal
# ceiling (impossible for a causal gate that cannot know the stream).
PUBLIC_SEEDS, ABOVE_LIMIT = "public-seeds", "above-limit"
RANKED = ("ok", "partial")
SCORED = (*RANKED, PUBLIC_SEEDS, ABOVE_LIMIT)
LIMIT_TOLERANCE = 1e-6  # beyond floating-point noise in a mean of accuracies
PUBLIC_SEEDS_REASON = (
    "scored on the public seeds, whose data any gate can regenerate from the public specs and "
    "code: a submission is ranked only on the leaderboard's secret seeds (gatebench submit)"
)


@dataclass
class Cell:
    """One gate's numbers for one metric of one task."""

    gate: str
    metric: str
    values: dict[int, float]  # seed index -> value
    summary: Summary | None
    delta: Summary | None = None  # paired, against the task's reference gate
    rank: int | None = None


@dataclass
class GateResult:
    gate: GateRef
    status: str  # ok | partial | failed | rejected | ceiling
    records: dict[int, RunRecord]
    reasons: list[str] = field(default_factory=list)
    cells: dict[str, Cell] = field(default_factory=dict)  # scalar metrics
    arrays: dict[str, ArrayCell] = field(default_factory=dict)  # array metrics, over seeds
    flags: list[str] = field(default_factory=list)  # PUBLIC_SEEDS, ABOVE_LIMIT: why it is unranked

    @property
    def ranked(self) -> bool:
        return self.status in RANKED

    @property
    def scored(self) -> bool:
        """Has scores to show beside the ranked gates (ranked, or unranked only by a rule)."""
        return self.status in SCORED

    @property
    def n_ok(self) -> int:
        return sum(1 for r in self.records.values() if r.ok)


@dataclass
class InteractionResult:
    factors: tuple[str, str]
    metric: str
    summary: Summary | None
    gates: tuple[str, str, str, str]  # (both, first, second, neither)


@dataclass
class AblationResult:
    factors: list[str]
    metric: str
    baseline: str
    cells: dict[str, Cell]  # gate id -> cell of the ablation metric
    gains: dict[str, Summary | None]  # gate id -> paired gain over the baseline cell
    interactions: list[InteractionResult]

    @property
    def main_effects(self) -> dict[str, Summary | None]:
        """The gain of each factor switched on alone."""
        return {f: self.gains.get(f) for f in self.factors}


@dataclass
class RobustnessRow:
    """How much of a gate's gain over the reference on a base task survives its variant."""

    gate: str
    base_gain: Summary | None
    variant_gain: Summary | None
    retained: float | None  # variant gain / base gain; None without a base gain to keep
    score_ratio: Ratio | None = None  # variant score / base score, paired over seeds
    status: str = "ok"  # the gate's status on the variant (ok, ceiling, ...)


MIN_GAIN = 0.01  # below this the base task shows no gain whose survival could be measured


@dataclass
class TaskResult:
    task: TaskRef
    profile: str
    gates: dict[str, GateResult]
    ablation: AblationResult | None = None
    claims: list[ClaimVerdict] = field(default_factory=list)
    robustness: list[RobustnessRow] = field(default_factory=list)
    stale_records: int = 0
    salt: str = ""  # the seed salt of the records compared ("" = the specs' public seeds)

    @property
    def seed_mode(self) -> str:
        return seed_mode(self.salt)

    @property
    def salt_id(self) -> str:
        return salt_id(self.salt)

    @property
    def seed_label(self) -> str:
        return seed_label(self.salt)

    def metric_cells(self, metric: str) -> dict[str, Cell]:
        return {g: r.cells[metric] for g, r in self.gates.items() if metric in r.cells}

    def ordered_gates(self) -> list[GateResult]:
        """Ranked gates best first, then ceilings, then failures."""
        primary = self.task.primary_metric
        sign = 1.0 if self.task.metrics[primary].higher_is_better else -1.0

        def key(result: GateResult) -> tuple[int, float, str]:
            order = {"ok": 0, "partial": 0, PUBLIC_SEEDS: 1, ABOVE_LIMIT: 1, "ceiling": 2}
            cell = result.cells.get(primary)
            value = cell.summary.mean if cell and cell.summary else 0.0
            return (order.get(result.status, 3), -sign * value, result.gate.id)

        return sorted(self.gates.values(), key=key)


@dataclass
class Aggregate:
    tasks: list[TaskResult]
    unreadable: int = 0

    def task(self, task_id: str) -> TaskResult | None:
        return next((t for t in self.tasks if t.task.id == task_id), None)


def _select(records: list[RunRecord], current_hash: str | None) -> tuple[list[RunRecord], int]:
    """Records of the current spec version (or the newest one seen when it is unknown) made with
    one seed salt: gates compared on a task always share their data. The board of secret seeds
    (the newest secret salt's) is shown where one exists, else the public seeds' board."""
    if current_hash is None:
        newest = max(records, key=lambda r: r.provenance.created_at)
        current_hash = newest.task.spec_hash
    chosen = [r for r in records if r.task.spec_hash == current_hash]
    if chosen:
        secret = [r for r in chosen if r.provenance.salt]
        salt = max(secret, key=lambda r: r.provenance.created_at).provenance.salt if secret else ""
        chosen = [r for r in chosen if r.provenance.salt == salt]
    return chosen, len(records) - len(chosen)


def _gate_result(gate_records: dict[int, RunRecord], salt: str = "") -> GateResult:
    newest = max(gate_records.values(), key=lambda r: r.provenance.created_at)
    ok = [r for r in gate_records.values() if r.ok]
    reasons = sorted({r.reason for r in gate_records.values() if not r.ok and r.reason})
    if any(r.status == "rejected" for r in gate_records.values()):
        status = "rejected"  # broke the contract on some seed: none of its seeds is ranked
    elif not ok:
        status = "failed"
    elif not newest.gate.causal or newest.gate.ceiling:  # non-causal, or knows the generator
        status = "ceiling"
    elif not salt and newest.gate.origin == "submission":
        status, reasons = PUBLIC_SEEDS, [*reasons, PUBLIC_SEEDS_REASON]
    elif len(ok) < len(gate_records):
        status = "partial"
    else:
        status = "ok"
    flags = [PUBLIC_SEEDS] if status == PUBLIC_SEEDS else []
    return GateResult(newest.gate, status, dict(sorted(gate_records.items())), reasons, flags=flags)


def _interval(s: Summary) -> tuple[float, float]:
    low = s.ci_low if s.ci_low is not None else s.mean
    high = s.ci_high if s.ci_high is not None else s.mean
    return low, high


def _flag_above_limit(result: TaskResult) -> None:
    """Unrank every gate that beats an exact Bayes-optimal ceiling on the primary metric: the
    95% t-interval of its difference to the ceiling, paired over seeds (the same data), lies
    wholly beyond zero by more than numerical tolerance. No causal gate that cannot know the
    stream gets there in expectation, so the score is evidence of a leak; its records are kept
    for review. With fewer than two shared seeds there is no interval, and no verdict."""
    task = result.task
    ceiling = result.gates.get(task.ceiling_gate) if task.ceiling_gate else None
    metric = task.primary_metric
    if not task.ceiling_bound or ceiling is None or metric not in ceiling.cells:
        return
    bound = ceiling.cells[metric].values
    higher = task.metrics[metric].higher_is_better
    for gres in result.gates.values():
        cell = gres.cells.get(metric)
        if gres is ceiling or not gres.scored or cell is None or not cell.values:
            continue
        diff = paired_delta(cell.values, bound, f"limit/{task.id}/{gres.gate.id}/{metric}")
        if diff is None or diff.n < 2 or diff.ci_low is None or diff.ci_high is None:
            continue
        beyond = diff.ci_low > LIMIT_TOLERANCE if higher else diff.ci_high < -LIMIT_TOLERANCE
        if beyond:
            gres.status = ABOVE_LIMIT
            gres.flags.append(ABOVE_LIMIT)
            gres.reasons = [
                *gres.reasons,
                f"above the Bayes-optimal limit: on {metric} it beats {task.ceiling_gate}, the "
                "exact best any causal gate can reach without knowing the stream, by "
                f"{diff.mean:+.4f} [{diff.ci_low:+.4f}, {diff.ci_high:+.4f}] (paired over "
                f"{diff.n} seeds); its records are kept for review",
            ]


def _fill_cells(result: TaskResult) -> None:
    task = result.task
    for gres in result.gates.values():
        per_metric: dict[str, dict[int, float]] = defaultdict(dict)
        for seed, rec in gres.records.items():
            if rec.ok:
                for metric, value in rec.metrics.items():
                    per_metric[metric][seed] = value
        for metric in task.scalar_metrics():
            values = per_metric.get(metric, {})
            label = f"{task.id}/{task.spec_hash}/{gres.gate.id}/{metric}"
            summary = summarize(list(values.values()), label) if values else None
            gres.cells[metric] = Cell(gres.gate.id, metric, values, summary)
        for metric in task.array_metrics():
            per_seed = [r.arrays[metric] for _, r in sorted(gres.records.items())
                        if r.ok and metric in r.arrays]  # fmt: skip
            cell = stack(metric, per_seed)
            if cell is not None:
                gres.arrays[metric] = cell
    _flag_above_limit(result)
    reference = result.gates.get(task.reference_gate) if task.reference_gate else None
    for metric, info in task.scalar_metrics().items():
        cells = result.metric_cells(metric)
        if reference is not None and metric in reference.cells:
            ref_values = reference.cells[metric].values
            for gate_id, cell in cells.items():
                if gate_id != task.reference_gate and cell.values and ref_values:
                    cell.delta = paired_delta(
                        cell.values, ref_values, f"{task.id}/{gate_id}/{metric}"
                    )
        intervals = {}
        for gate_id, cell in cells.items():
            if result.gates[gate_id].ranked and cell.summary is not None:
                intervals[gate_id] = _interval(cell.summary)
        for gate_id, rank in shared_ranks(intervals, info.higher_is_better).items():
            cells[gate_id].rank = rank


def _ablation(result: TaskResult) -> AblationResult | None:
    design = result.task.ablation
    if design is None:
        return None
    factors, metric, baseline = design.factors, design.metric, design.baseline
    gate_for = design.cell_gate

    cells: dict[str, Cell] = {}
    for size in range(len(factors) + 1):
        for active in combinations(factors, size):
            gate_id = gate_for(active)
            gres = result.gates.get(gate_id)
            if gres is not None and metric in gres.cells:
                cells[gate_id] = gres.cells[metric]

    def values(gate_id: str) -> Mapping[int, float]:
        return cells[gate_id].values if gate_id in cells else {}

    gains = {
        gate_id: paired_delta(values(gate_id), values(baseline), f"gain/{result.task.id}/{gate_id}")
        for gate_id in cells
        if gate_id != baseline
    }
    interactions = []
    for a, b in combinations(factors, 2):
        ids = (gate_for([a, b]), gate_for([a]), gate_for([b]), baseline)
        summary = interaction(*(values(g) for g in ids), label=f"{result.task.id}/{a}x{b}/{metric}")
        interactions.append(InteractionResult((a, b), metric, summary, ids))
    return AblationResult(factors, metric, baseline, cells, gains, interactions)


def _cell_lookup(result: TaskResult) -> CellLookup:
    def cell(gate_id: str, metric: str) -> tuple[dict[int, float], Summary | None] | None:
        gres = result.gates.get(gate_id)
        found = gres.cells.get(metric) if gres else None
        return (found.values, found.summary) if found and found.values else None

    return cell


def _interaction_lookup(result: TaskResult) -> Callable[[Claim], Summary | None]:
    def interaction(claim: Claim) -> Summary | None:
        for inter in result.ablation.interactions if result.ablation else []:
            if inter.metric == claim.metric and set(inter.factors) == set(claim.interaction or ()):
                return inter.summary
        return None

    return interaction


def aggregate(
    records: Iterable[RunRecord],
    current: Mapping[str, TaskRef | None] | None = None,
    unreadable: int = 0,
) -> Aggregate:
    """Group records by task, keep the current spec version's, and compute every statistic.

    ``current`` maps task id -> the task as its spec now reads for the reported profile (its hash
    selects records; its claims and texts label them), or None to take the newest records' own.
    With ``current`` given, tasks not in it are left out.
    """
    by_task: dict[str, list[RunRecord]] = defaultdict(list)
    for rec in records:
        by_task[rec.task.id].append(rec)
    results = []
    for task_id in sorted(by_task):
        if current is not None and task_id not in current:
            continue
        now = (current or {}).get(task_id)
        chosen, stale = _select(by_task[task_id], now.spec_hash if now else None)
        if not chosen:
            continue
        salt = chosen[0].provenance.salt
        by_gate: dict[str, dict[int, RunRecord]] = defaultdict(dict)
        for rec in chosen:
            seen = by_gate[rec.gate.id].get(rec.seed_index)
            if seen is None or rec.provenance.created_at >= seen.provenance.created_at:
                by_gate[rec.gate.id][rec.seed_index] = rec
        task_ref = now or max(chosen, key=lambda r: r.provenance.created_at).task
        profiles = sorted({r.profile for r in chosen})
        result = TaskResult(
            task=task_ref,
            profile="+".join(profiles),
            gates={g: _gate_result(recs, salt) for g, recs in sorted(by_gate.items())},
            stale_records=stale,
            salt=salt,
        )
        _fill_cells(result)
        result.ablation = _ablation(result)
        result.claims = task_claims(
            result.task, result.profile, _cell_lookup(result), _interaction_lookup(result)
        )
        results.append(result)
    by_id = {r.task.id: r for r in results}
    for result in results:
        base = by_id.get(result.task.variant_of or "")
        if base is not None:
            result.robustness = _robustness(base, result)
    return Aggregate(results, unreadable)


def _robustness(base: TaskResult, variant: TaskResult) -> list[RobustnessRow]:
    """Per ranked gate on both tasks: the paired gain over the reference on the primary metric,
    and the fraction of the base task's gain that the variant keeps."""
    metric = variant.task.primary_metric
    rows = []
    for gate_id, vres in variant.gates.items():
        bres = base.gates.get(gate_id)
        if bres is None or metric not in bres.cells or metric not in vres.cells:
            continue
        ratio = paired_ratio(
            vres.cells[metric].values,
            bres.cells[metric].values,
            f"{variant.task.id}/{base.task.id}/{gate_id}",
        )
        b = v = retained = None
        if vres.ranked and bres.ranked and gate_id != base.task.reference_gate:
            b, v = bres.cells[metric].delta, vres.cells[metric].delta
            if b is not None and v is not None and abs(b.mean) >= MIN_GAIN:
                retained = v.mean / b.mean
        rows.append(RobustnessRow(gate_id, b, v, retained, ratio, vres.status))
    rows.sort(key=lambda r: -(r.base_gain.mean if r.base_gain else float("-inf")))
    return rows

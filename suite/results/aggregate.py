"""Records -> per (task, gate, metric) statistics, paired deltas, shared ranks, ablations, claims.

Aggregation reads records only (they are self-describing), so it serves the report, the site and
any records a user brings. Where the current specs are known, records made under another version
of a task's spec are set aside as stale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from suite.results.arrays import ArrayCell, nan_to_none, stack
from suite.results.claims import ClaimVerdict, judge
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

    @property
    def ranked(self) -> bool:
        return self.status in ("ok", "partial")

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

    def metric_cells(self, metric: str) -> dict[str, Cell]:
        return {g: r.cells[metric] for g, r in self.gates.items() if metric in r.cells}

    def ordered_gates(self) -> list[GateResult]:
        """Ranked gates best first, then ceilings, then failures."""
        primary = self.task.primary_metric
        sign = 1.0 if self.task.metrics[primary].higher_is_better else -1.0

        def key(result: GateResult) -> tuple[int, float, str]:
            order = {"ok": 0, "partial": 0, "ceiling": 1, "failed": 2, "rejected": 2}
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
    one seed salt, the newest's: gates compared on a task always share their data."""
    if current_hash is None:
        newest = max(records, key=lambda r: r.provenance.created_at)
        current_hash = newest.task.spec_hash
    chosen = [r for r in records if r.task.spec_hash == current_hash]
    if chosen:
        salt = max(chosen, key=lambda r: r.provenance.created_at).provenance.salt
        chosen = [r for r in chosen if r.provenance.salt == salt]
    return chosen, len(records) - len(chosen)


def _gate_result(gate_records: dict[int, RunRecord]) -> GateResult:
    newest = max(gate_records.values(), key=lambda r: r.provenance.created_at)
    ok = [r for r in gate_records.values() if r.ok]
    reasons = sorted({r.reason for r in gate_records.values() if not r.ok and r.reason})
    if any(r.status == "rejected" for r in gate_records.values()):
        status = "rejected"  # broke the contract on some seed: none of its seeds is ranked
    elif not ok:
        status = "failed"
    elif not newest.gate.causal or newest.gate.ceiling:  # non-causal, or knows the generator
        status = "ceiling"
    elif len(ok) < len(gate_records):
        status = "partial"
    else:
        status = "ok"
    return GateResult(newest.gate, status, dict(sorted(gate_records.items())), reasons)


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
                s = cell.summary
                low = s.ci_low if s.ci_low is not None else s.mean
                high = s.ci_high if s.ci_high is not None else s.mean
                intervals[gate_id] = (low, high)
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


def _cell(result: TaskResult, gate_id: str, metric: str) -> Cell | None:
    gres = result.gates.get(gate_id)
    return gres.cells.get(metric) if gres else None


def _claims(result: TaskResult) -> list[ClaimVerdict]:
    task = result.task
    if task.spec_hash != task.paper_spec_hash:
        detail = f"profile {result.profile} differs from the paper's settings; run --profile paper"
        return [ClaimVerdict(c, "not-comparable", None, detail=detail) for c in task.claims]
    verdicts = []
    for claim in task.claims:
        ours: Summary | None = None
        if claim.gate and claim.versus:
            found = [_cell(result, g, claim.metric) for g in (claim.gate, claim.versus)]
            if all(found):
                label = f"claim/{task.id}/{claim.subject}/{claim.metric}"
                ours = paired_delta(found[0].values, found[1].values, label)
        elif claim.gate:
            cell = _cell(result, claim.gate, claim.metric)
            ours = cell.summary if cell else None
        elif result.ablation is not None and claim.interaction is not None:
            for inter in result.ablation.interactions:
                if inter.metric == claim.metric and set(inter.factors) == set(claim.interaction):
                    ours = inter.summary
        verdicts.append(judge(claim, ours))
    return verdicts


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
            gates={g: _gate_result(recs) for g, recs in sorted(by_gate.items())},
            stale_records=stale,
        )
        _fill_cells(result)
        result.ablation = _ablation(result)
        result.claims = _claims(result)
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


def report_rows(agg: Aggregate) -> list[dict[str, Any]]:
    """The machine-readable report: one row per (task, gate, scalar metric)."""
    rows = []
    for tres in agg.tasks:
        for gres in tres.ordered_gates():
            for metric, info in tres.task.scalar_metrics().items():
                cell = gres.cells.get(metric)
                s = cell.summary if cell else None
                d = cell.delta if cell else None
                rows.append(
                    {
                        "task": tres.task.id,
                        "gate": gres.gate.id,
                        "metric": metric,
                        "mean": s.mean if s else None,
                        "sd": s.sd if s else None,
                        "ci_low": s.ci_low if s else None,
                        "ci_high": s.ci_high if s else None,
                        "boot_low": s.boot_low if s else None,
                        "boot_high": s.boot_high if s else None,
                        "n": s.n if s else 0,
                        "status": gres.status,
                        "reason": "; ".join(gres.reasons) or None,
                        "rank": cell.rank if cell else None,
                        "delta_vs": tres.task.reference_gate,
                        "delta_mean": d.mean if d else None,
                        "delta_ci_low": d.ci_low if d else None,
                        "delta_ci_high": d.ci_high if d else None,
                        "higher_is_better": info.higher_is_better,
                        "primary": metric == tres.task.primary_metric,
                        "profile": tres.profile,
                        "spec_hash": tres.task.spec_hash,
                        "causal": gres.gate.causal,
                    }
                )
    return rows


def array_rows(agg: Aggregate) -> list[dict[str, Any]]:
    """Array metrics (curves, matrices such as the continual family's R) for the JSON report: per
    (task, gate, metric) the element-wise mean, sd and 95% interval as nested lists (None where
    undefined, e.g. above a matrix's diagonal), with the axes and their coordinates."""
    rows = []
    for tres in agg.tasks:
        for gres in tres.ordered_gates():
            for metric, arr in gres.arrays.items():
                info = tres.task.metrics.get(metric)
                rows.append(
                    {
                        "task": tres.task.id,
                        "gate": gres.gate.id,
                        "metric": metric,
                        "kind": info.kind if info else "array",
                        "axes": list(info.axes) if info else list(arr.coords),
                        "coords": arr.coords,
                        "mean": nan_to_none(arr.mean),
                        "sd": None if arr.sd is None else nan_to_none(arr.sd),
                        "ci_low": nan_to_none(arr.low),
                        "ci_high": nan_to_none(arr.high),
                        "n": arr.n.tolist(),
                        "status": gres.status,
                        "profile": tres.profile,
                        "spec_hash": tres.task.spec_hash,
                    }
                )
    return rows

"""The machine-readable report of an aggregate: one row per (task, gate, metric), scalars and
arrays, each row naming its kind, seed mode and spec (``gatebench report --format json``, the
site's downloads)."""

from __future__ import annotations

from typing import Any

from suite.results.aggregate import Aggregate
from suite.results.arrays import nan_to_none


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
                        "row": "result",
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
                        "seed_mode": tres.seed_mode,
                        "salt_id": tres.salt_id or None,
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
                        "row": "array",
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
                        "seed_mode": tres.seed_mode,
                        "salt_id": tres.salt_id or None,
                    }
                )
    return rows

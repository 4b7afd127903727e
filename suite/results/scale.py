"""Scale trends: a claim's metric at each point of its task's scale axis, and the fitted
direction, so that "not reproduced at reduced scale" can be read as evidence either way; and
every gate's primary metric on the axis, with no paper's number to move towards.

At each point (its own profile, ``scale-<label>``), the claimed gate's metric over seeds, with
its 95% t-interval; then an ordinary least-squares line through every seed's value against
log2 of the point's size (``scipy.stats.linregress``), whose slope is the change per doubling,
with its 95% t-interval. The gap to the paper's number *shrinks* where the slope's interval lies
wholly on the side of the paper's number (seen from the smallest point), *grows* where it lies
wholly on the other side, and otherwise no trend is detectable at these seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from suite.results.aggregate import aggregate
from suite.results.stats import LEVEL, summarize
from suite.runs.plan import task_ref
from suite.runs.records import RunRecord
from suite.tasks.spec import SCALE_PREFIX, Claim, TaskSpec


@dataclass
class TrendPoint:
    label: str
    size: float
    n: int
    mean: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass
class Trend:
    task: str
    gate: str
    metric: str
    axis: str
    paper: float | None  # the claim's number; None for a gate's primary metric with no claim
    printed: str
    points: list[TrendPoint] = field(default_factory=list)
    slope: float | None = None  # change of the metric per doubling of the size
    slope_low: float | None = None
    slope_high: float | None = None
    direction: str = "no data"  # gap shrinks | grows (rises | falls without a claim) | no
    # detectable trend | no data

    @property
    def key(self) -> str:
        return f"{self.task}:{self.gate}:{self.metric}"

    def detail(self) -> str:
        if self.slope is None:
            return f"scale trend over {self.axis}: {self.direction}"
        interval = f"[{self.slope_low:+.3f}, {self.slope_high:+.3f}]"
        paper = f" (paper: {self.printed})" if self.paper is not None else ""
        return (
            f"scale trend over {self.axis} ({len(self.points)} sizes): {self.slope:+.3f} "
            f"{interval} per doubling; {self.direction}{paper}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task, "gate": self.gate, "metric": self.metric, "axis": self.axis,
            "paper": self.paper, "printed": self.printed, "direction": self.direction,
            "slope": self.slope, "slope_low": self.slope_low, "slope_high": self.slope_high,
            "points": [p.__dict__ for p in self.points],
        }  # fmt: skip


def trended(claim: Claim) -> bool:
    """A claim about one gate's own value (not a difference, ratio, share or interaction)."""
    derived = (claim.versus, claim.ratio_to, claim.gap, claim.coverage_of, claim.interaction)
    return bool(claim.gate) and not claim.not_comparable and not any(derived)


def fit(xs: Sequence[float], ys: Sequence[float], level: float = LEVEL) -> tuple[float, ...]:
    """(slope, low, high) of the least-squares line of ys on xs, with its t-interval."""
    line = sps.linregress(np.asarray(xs, float), np.asarray(ys, float))
    half = sps.t.ppf(0.5 + level / 2, len(xs) - 2) * line.stderr
    return float(line.slope), float(line.slope - half), float(line.slope + half)


def direction(paper: float | None, first: float, low: float, high: float) -> str:
    """How the slope's interval reads: towards the paper's number or away from it (without a
    paper's number: up or down)."""
    towards = 1.0 if paper is None or paper >= first else -1.0
    names = ("gap shrinks", "gap grows") if paper is not None else ("rises", "falls")
    if towards * low > 0 and towards * high > 0:
        return names[0]
    if towards * low < 0 and towards * high < 0:
        return names[1]
    return "no detectable trend"


def task_trends(spec: TaskSpec, records: Sequence[RunRecord]) -> list[Trend]:
    """Every trended claim of ``spec`` over its scale axis, then every other gate's primary
    metric there, from the records of its points."""
    if spec.scale is None:
        return []
    paper_hash = spec.for_profile("paper").spec_hash()
    seeds = spec.for_profile(spec.scale_profiles()[0]).seeds  # the axis's, at every point (a
    # point equal to its profile shares that profile's records, and perhaps more seeds)
    own = [r for r in records if r.task.id == spec.id]
    at_point: dict[str, dict[str, list[RunRecord]]] = {}  # label -> gate -> its seeds' records
    for name in spec.scale_profiles():  # the aggregate's own choice: newest run per seed, one salt
        shown = aggregate(own, {spec.id: task_ref(spec.for_profile(name), paper_hash)})
        tres = shown.task(spec.id)
        gates = tres.gates.items() if tres else []
        at_point[name.removeprefix(SCALE_PREFIX)] = {
            g: [r for s, r in gres.records.items() if s < seeds and r.ok] for g, gres in gates
        }
    wanted = [
        (c.gate or "", c.metric, c.mean, c.printed or f"{c.mean:g}")
        for c in spec.claims
        if trended(c)
    ]
    claimed = {(g, m) for g, m, _, _ in wanted}
    run = sorted({g for gates in at_point.values() for g in gates})
    wanted += [(g, spec.primary_metric, None, "—") for g in run
               if (g, spec.primary_metric) not in claimed]  # fmt: skip
    # every gate run on the axis: its primary metric, with no paper's number
    found = []
    for gate, metric, paper, printed in wanted:
        trend = Trend(spec.id, gate, metric, spec.scale.name, paper, printed)
        xs, ys = [], []
        for point in sorted(spec.scale.points, key=lambda p: p.size):
            values = [
                r.metrics[metric]
                for r in at_point[point.label].get(gate, [])
                if math.isfinite(r.metrics.get(metric, math.nan))
            ]
            at = TrendPoint(point.label, point.size, len(values))
            if values:
                s = summarize(values, f"scale {trend.key} {point.label}")
                at.mean, at.low, at.high = s.mean, s.ci_low, s.ci_high
                xs += [math.log2(point.size)] * len(values)
                ys += values
            trend.points.append(at)
        measured = [p for p in trend.points if p.mean is not None]
        if len(measured) >= 2 and len(ys) >= 3 and len(set(ys)) > 1:
            trend.slope, trend.slope_low, trend.slope_high = fit(xs, ys)
            trend.direction = direction(paper, measured[0].mean, trend.slope_low, trend.slope_high)
        elif len(measured) >= 2:
            trend.slope = trend.slope_low = trend.slope_high = 0.0
            trend.direction = "no detectable trend"
        found.append(trend)
    return found


def scale_trends(
    records: Sequence[RunRecord], specs: Sequence[TaskSpec] | None = None
) -> list[Trend]:
    """The trends of every task with a scale axis (``specs``: default every spec)."""
    if specs is None:
        from suite.tasks.loading import load_all_tasks

        specs = load_all_tasks()
    return [t for spec in specs if spec.scale for t in task_trends(spec, records)]

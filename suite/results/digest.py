"""The compact leaderboard and claims that a fresh clone shows before running anything.

Every run record of a full sweep is too much to commit; the aggregate of them is not. For each
task this keeps, per gate, its status, rank and each scalar metric's mean with its 95% interval,
and for each claim the paper's number, ours and the verdict with its setting. They travel in
``docs/data/summary.json`` and are rendered into ``docs/results.md`` (a guide page of the site),
so every number there comes from the records and a test catches a stale page. The numbers'
formatting, and what the other generated blocks derive from these rows (each task's best gate,
the verdicts counted), live here too, so every generated page prints a number the same way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from suite.results.aggregate import RANKED
from suite.results.stats import Summary

MAX_METRICS = 4  # columns per task table: the primary metric first, then the spec's order


RELATION = {
    "same": "the paper's own setting",
    "reduced-scale": "a reduced scale of it",
    "transfer": "a transfer of the method to another setting",
}
BOUND = {"at-least": "≥ ", "at-most": "≤ ", "equal": ""}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)  # beyond what is shown; keeps the file small


def _triple(s: Summary | None) -> list[float | None] | None:
    return [_round(s.mean), _round(s.ci_low), _round(s.ci_high)] if s else None


def leaderboard_rows(agg: Any) -> list[dict[str, Any]]:
    """Per task, its gates in leaderboard order with their scalar metrics (mean, 95% CI)."""
    rows = []
    for tres in agg.tasks:
        task = tres.task
        scalars = list(task.scalar_metrics())
        metrics = [task.primary_metric] + [m for m in scalars if m != task.primary_metric]
        metrics = metrics[:MAX_METRICS]
        gates = []
        for g in tres.ordered_gates():
            primary = g.cells.get(task.primary_metric)
            gates.append(
                {
                    "gate": g.gate.id,
                    "status": g.status,
                    "rank": primary.rank if primary and g.ranked else None,
                    "seeds": g.n_ok,
                    "values": {m: _triple(g.cells[m].summary) for m in metrics if m in g.cells},
                }
            )
        rows.append(
            {
                "task": task.id,
                "family": task.family,
                "profile": tres.profile,
                "seeds": tres.seed_label,
                "metrics": metrics,
                "lower_is_better": [m for m in metrics if not task.metrics[m].higher_is_better],
                "gates": gates,
            }
        )
    return rows


def claim_rows(agg: Any) -> list[dict[str, Any]]:
    """Every claim's verdict with the paper's number, ours and the setting it was judged in."""
    rows = []
    for tres in agg.tasks:
        for v in tres.claims:
            rows.append(
                {
                    "task": tres.task.id,
                    "subject": v.subject,
                    "metric": v.claim.metric,
                    "claimed": BOUND.get(v.claim.bound, "") + v.claim.shown,
                    "ours": _triple(v.ours),
                    "label": v.label,
                    "relation": v.relation,
                    "setting": " ".join(v.setting.split()),
                    "relation_note": " ".join(tres.task.relation_note.split()),
                }
            )
    return rows


def _esc(text: str) -> str:
    return text.replace("|", "\\|")


def number(value: float | None, signed: bool = True) -> str:
    """A mean, bound or difference as every generated page prints it."""
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def interval(mean: float | None, low: float | None, high: float | None, signed: bool) -> str:
    """``mean [low, high]``; the mean alone where there is no interval, a dash for no mean."""
    if mean is None:
        return "—"
    if low is None or high is None:
        return number(mean, signed)
    return f"{number(mean, signed)} [{number(low, signed)}, {number(high, signed)}]"


def _cell(triple: list[float | None] | None) -> str:
    return interval(*triple, signed=False) if triple else "—"


def profiles(summary: dict[str, Any]) -> list[str]:
    """The profiles of the summarised records."""
    return sorted({t["profile"] for t in summary.get("leaderboard", [])})


def best_gates(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each task's best ranked gate on its primary metric (its leaderboard's first ranked row)."""
    found = []
    for task in summary.get("leaderboard", []):
        metric = task["metrics"][0]
        best = next((g for g in task["gates"] if g["status"] in RANKED), None)
        value = best["values"].get(metric) if best else None
        found.append(
            {
                "task": task["task"], "metric": metric, "seeds": task["seeds"],
                "best": best["gate"] if best else None, "value": value,
            }
        )  # fmt: skip
    return found


def claim_counts(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per task (sorted), how many of its claims got each verdict label."""
    counts: dict[str, Counter[str]] = {}
    for c in summary.get("claim_verdicts", []):
        counts.setdefault(c["task"], Counter())[c["label"]] += 1
    return {task: dict(sorted(counts[task].items())) for task in sorted(counts)}


def render_results(summary: dict[str, Any]) -> list[str]:
    """The generated part of ``docs/results.md``: a table per task, then every claim."""
    lines: list[str] = []
    family = None
    for task in summary.get("leaderboard", []):
        if task["family"] != family:
            family = task["family"]
            lines += [f"### {family}", ""]
        lower = set(task["lower_is_better"])
        heads = [f"{m} {'↓' if m in lower else '↑'}" for m in task["metrics"]]
        lines += [
            f"#### `{task['task']}`",
            "",
            f"Profile {task['profile']}, {task['seeds']}; mean [95% CI] over seeds; "
            f"ranked on {task['metrics'][0]}.",
            "",
            "| shared rank | gate | status | seeds | " + " | ".join(heads) + " |",
            "|---|---|---|---|" + "---|" * len(heads),
        ]
        for g in task["gates"]:
            cells = " | ".join(_cell(g["values"].get(m)) for m in task["metrics"])
            rank = str(g["rank"]) if g["rank"] is not None else "—"
            lines.append(f"| {rank} | `{g['gate']}` | {g['status']} | {g['seeds']} | {cells} |")
        lines.append("")
    claims = summary.get("claim_verdicts", [])
    if claims:
        source = summary.get("claims_source", {})
        lines += [f"### The papers' claims ({source.get('profile')} profile)", ""]
    task = None
    for c in claims:
        if c["task"] != task:
            if task is not None:
                lines.append("")
            task = c["task"]
            ours = RELATION.get(c["relation"], c["relation"])
            if c.get("relation_note"):
                ours += f" ({c['relation_note']})"
            lines += [
                f"#### Claims of `{task}`",
                "",
                f"The paper's setting: {c['setting'] or 'not stated'}. Ours: {ours}.",
                "",
                "| claim | metric | paper | ours: mean [95% CI] | verdict |",
                "|---|---|---|---|---|",
            ]
        lines.append(
            f"| {_esc(c['subject'])} | {c['metric']} | {_esc(c['claimed'])} | "
            f"{_cell(c['ours'])} | **{c['label']}** |"
        )
    if claims:
        lines.append("")
    return lines

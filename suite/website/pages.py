"""The site's pages, one function per kind: the index (one leaderboard per task family), a page per
task and per gate, and the ablation, claims, provenance and download pages."""

from __future__ import annotations

import math
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.results.aggregate import Cell, GateResult, TaskResult
from suite.results.leaderboard import Leaderboard, TaskScale
from suite.results.scale import Trend, scale_trends
from suite.tasks.family import families
from suite.website.plots import CIRow, Series, ci_plot, line_plot
from suite.website.views import draw

if TYPE_CHECKING:  # the builder imports this module
    from suite.website.renderer import Renderer

PACKAGES = ("torch", "numpy", "pydantic", "datasets", "jinja2", "pyarrow")


def cell_view(cell: Cell | None) -> dict[str, Any]:
    """A scalar cell as the templates show it (None where there is nothing to show)."""
    s = cell.summary if cell else None
    d = cell.delta if cell else None
    return {
        "mean": s.mean if s else None,
        "low": s.ci_low if s else None,
        "high": s.ci_high if s else None,
        "n": s.n if s else 0,
        "delta": d.mean if d else None,
        "delta_low": d.ci_low if d else None,
        "delta_high": d.ci_high if d else None,
        "rank": cell.rank if cell else None,
    }


def ablation_view(tres: TaskResult) -> dict[str, Any]:
    ab, design = tres.ablation, tres.task.ablation
    if ab is None or design is None:
        raise ValueError(f"{tres.task.id} has no ablation")
    cells = [
        {
            "gate": gate_id,
            "factors": design.cell_factors(gate_id),
            "summary": cell.summary,
            "gain": ab.gains.get(gate_id),
        }
        for gate_id, cell in ab.cells.items()
    ]
    cells.sort(key=lambda c: (sum(c["factors"]), c["factors"][::-1]))
    return {
        "task": tres.task,
        "factors": ab.factors,
        "metric": ab.metric,
        "baseline": ab.baseline,
        "cells": cells,
        "main": ab.main_effects,
        "interactions": ab.interactions,
    }


def _family_description(name: str) -> str:
    """The registered family's description; records of a family not installed here have none."""
    return families.get(name).description if name in families else ""


def _task_row(tres: TaskResult, scale: TaskScale | None) -> dict[str, Any]:
    best = next((g for g in tres.ordered_gates() if g.ranked), None)
    cell = best.cells.get(tres.task.primary_metric) if best else None
    return {
        "task": tres.task,
        "n_gates": len(tres.gates),
        "best": best.gate if best else None,
        "best_mean": cell.summary.mean if cell and cell.summary else None,
        "claims": dict(sorted(Counter(v.label for v in tres.claims).items())),
        "scale": scale,
    }


def index_page(site: Renderer, boards: list[Leaderboard]) -> None:
    """The leaderboards, one per family (never pooled), each with its family's tasks."""
    by_family = {b.family: b for b in boards}
    names = sorted(set(families.names()) | set(by_family))
    sections = []
    for name in names:
        board = by_family.get(name)
        tasks = [t for t in site.agg.tasks if t.task.family == name]
        scales = {s.task_id: s for s in board.scales} if board else {}
        plot = None
        if board and board.rows:
            plot = ci_plot(
                f"Normalised score on the {name} family (IQM over its tasks and seeds, "
                "95% stratified bootstrap CI)",
                [CIRow(r.gate.id, r.iqm, r.ci_low, r.ci_high) for r in board.rows],
                "normalised score: 0 = reference gate, 1 = ceiling",
            )
        sections.append(
            {
                "name": name,
                "anchor": site.anchor("family", name),
                "description": _family_description(name),
                "rows": board.rows if board else [],
                "scales": board.scales if board else [],
                "variants": board.variants if board else [],
                "seed_modes": board.seed_modes if board else sorted({t.seed_label for t in tasks}),
                "plot": plot,
                "tasks": [_task_row(t, scales.get(t.task.id)) for t in tasks],
                "unranked": _unranked(tasks),
            }
        )
    site.render("index.html", "index.html", families=sections, n_records=len(site.records))


def _unranked(tasks: list[TaskResult]) -> list[dict[str, Any]]:
    """Every (gate, task) that is on no board, with its status and why: labelled ceilings
    (declared non-causal), rejected gates (a check or an audit failed) and failed runs."""
    rows = []
    for tres in tasks:
        for gres in tres.ordered_gates():
            if not gres.ranked:
                why = "; ".join(gres.reasons) or (
                    "declared non-causal: a labelled ceiling, shown but never ranked"
                    if gres.status == "ceiling"
                    else ""
                )
                rows.append(
                    {"gate": gres.gate.id, "task": tres.task.id, "status": gres.status, "why": why}
                )
    return sorted(rows, key=lambda r: (r["status"], r["gate"], r["task"]))


def task_page(site: Renderer, tres: TaskResult, scale: TaskScale | None) -> None:
    """Scalar results as a table and CI plots, then every array metric drawn by its view."""
    task = tres.task
    gates = tres.ordered_gates()
    primary = task.primary_metric
    scalars = [primary, *[m for m in task.scalar_metrics() if m != primary]]
    rows = [
        {
            "gate": gres.gate,
            "status": gres.status,
            "reasons": gres.reasons,
            "n_ok": gres.n_ok,
            "n": len(gres.records),
            "cells": {m: cell_view(gres.cells.get(m)) for m in scalars},
        }
        for gres in gates
    ]
    arrays = []
    for metric, info in task.array_metrics().items():
        figures = draw(tres, gates, metric)
        if figures:
            arrays.append({"metric": metric, "info": info, "figures": figures})
    site.render(
        "task.html",
        site.task_page(task.id),
        result=tres,
        metrics=scalars,
        rows=rows,
        scalar_figures=[f for m in scalars for f in draw(tres, gates, m)],
        arrays=arrays,
        ablation=ablation_view(tres) if tres.ablation else None,
        claims=[c for c in site.claims if c["task"] == task.id],
        findings=[f for f in site.findings if task.id in f.tasks],
        scale=scale,
        command=site.command(task.id),
    )


def gate_pages(site: Renderer) -> None:
    """One page per gate (its results on every task, its conformance checks), and their index."""
    by_gate: dict[str, list[tuple[TaskResult, GateResult]]] = {}
    for tres in site.agg.tasks:
        for gate_id, gres in tres.gates.items():
            by_gate.setdefault(gate_id, []).append((tres, gres))
    index = []
    for gate_id, entries in sorted(by_gate.items()):
        results = []
        for tres, gres in entries:
            newest = max(gres.records.values(), key=lambda r: r.provenance.created_at)
            results.append(
                {
                    "task": tres.task,
                    "status": gres.status,
                    "reasons": gres.reasons,
                    "metric": tres.task.primary_metric,
                    "cell": cell_view(gres.cells.get(tres.task.primary_metric)),
                    "conformance": newest.conformance,
                    "n_ok": gres.n_ok,
                    "n": len(gres.records),
                    "seeds": tres.seed_label,
                    "diagnostics": newest.diagnostics,
                }
            )
        gate = entries[0][1].gate
        index.append({"gate": gate, "tasks": len(entries)})
        site.render("gate.html", site.gate_page(gate_id), gate=gate, results=results)
    site.render("gates.html", "gates.html", gates=index)


def ablations_page(site: Renderer) -> None:
    ablations = [ablation_view(t) for t in site.agg.tasks if t.ablation]
    site.render("ablations.html", "ablations.html", ablations=ablations)


def finding_provenance(verdict: Any, records: list[Any]) -> dict[str, list[str]]:
    """Where a finding's numbers come from: the commands, profiles, seeds and commits of the
    records it compares (its gates on its evidence tasks)."""
    f = verdict.finding
    gates = {f.gate, f.versus} - {None}
    tasks = set(verdict.tasks) | ({f.variant} if f.variant else set())
    used = [r for r in records if r.task.id in tasks and r.gate.id in gates]
    dirty = {r.provenance.git_commit: r.provenance.git_dirty for r in used}
    return {
        "commands": sorted({r.provenance.command for r in used if r.provenance.command}),
        "profiles": sorted({r.profile for r in used}),
        "seeds": [str(i) for i in sorted({r.seed_index for r in used})],
        "seed_modes": sorted({"secret" if r.provenance.salt else "public" for r in used}),
        "commits": sorted(c[:12] + (" (dirty)" if d else "") for c, d in dirty.items()),
        "records": [str(len(used))],
    }


def findings_page(site: Renderer) -> None:
    provenance = {v.finding.id: finding_provenance(v, site.records) for v in site.findings}
    site.render("findings.html", "findings.html", findings=site.findings, provenance=provenance)


def trend_view(trend: Trend) -> dict[str, Any]:
    """A claim's scale trend: its detail and a plot of the metric (95% band) per size."""
    measured = [p for p in trend.points if p.mean is not None]
    series = Series(
        trend.gate,
        [math.log2(p.size) for p in measured],
        [p.mean for p in measured],
        [p.low for p in measured],
        [p.high for p in measured],
    )
    plot = line_plot(
        f"{trend.metric} of {trend.gate} on {trend.task} against {trend.axis}",
        [series],
        trend.axis,
        trend.metric,
        x_ticks=[(math.log2(p.size), f"{p.size:g}") for p in measured],
        levels={f"paper: {trend.printed}": trend.paper} if trend.paper is not None else None,
    ) if len(measured) >= 2 else None  # fmt: skip
    return {"trend": trend, "plot": plot, "points": trend.points}


def claims_page(site: Renderer) -> None:
    shown = {t.task.id for t in site.agg.tasks}
    trends = [trend_view(t) for t in scale_trends(site.records) if t.task in shown]
    site.render("claims.html", "claims.html", claims=site.claims, trends=trends)


def provenance_page(site: Renderer) -> None:
    records = site.records

    def distinct(attr: str) -> list[str]:
        return sorted({str(getattr(r.provenance, attr)) for r in records})

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = "not installed"
    site.render(
        "provenance.html",
        "provenance.html",
        commits=sorted({(r.provenance.git_commit, r.provenance.git_dirty) for r in records}),
        suite_versions=distinct("suite_version"),
        pythons=distinct("python"),
        torches=distinct("torch"),
        numpies=distinct("numpy"),
        platforms=distinct("platform"),
        devices=distinct("device"),
        commands=sorted({r.provenance.command for r in records if r.provenance.command}),
        packages=packages,
        n_records=len(records),
        spec_hashes=[(t.task.id, t.task.version, t.task.spec_hash) for t in site.agg.tasks],
    )


def downloads_page(site: Renderer, files: list[Path]) -> None:
    site.render(
        "downloads.html", "downloads.html", files=[(f.name, f.stat().st_size) for f in files]
    )

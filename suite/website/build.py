"""Render the static site: index with the cross-task leaderboard, one page per task and per gate,
ablations, claims, provenance and downloads. Links are relative, so the folder works from disk.

Everything a submitter controls (names, descriptions, URLs) is untrusted: templates autoescape,
and only http(s) URLs become links.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2
import numpy as np

import suite
from suite.errors import GateBenchError
from suite.results.aggregate import Aggregate, Cell, GateResult, TaskResult
from suite.results.leaderboard import LeaderboardRow, TaskScale, leaderboard
from suite.results.loading import load_results
from suite.results.report import fmt
from suite.runs.provenance import REPO_ROOT
from suite.runs.records import RunRecord
from suite.tasks.family import family_names, get_family
from suite.identity import slug
from suite.website.exports import claim_rows, write_downloads
from suite.website.plots import CIRow, Series, ci_plot, line_plot

SITE_DIR = REPO_ROOT / "site"


def safe_url(url: Any) -> str | None:
    """The URL if it is an absolute http(s) URL, else None (rendered as plain text)."""
    if not isinstance(url, str):
        return None
    parsed = urlparse(url.strip())
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return url.strip()
    return None


def interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"[{fmt(low)}, {fmt(high)}]"


class Pages:
    """Unique, file-system-safe page names for ids that may contain anything."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()

    def name(self, kind: str, ident: str) -> str:
        key = (kind, ident)
        if key not in self._names:
            base = slug(ident)[:80] or "page"
            candidate, n = base, 2
            while f"{kind}/{candidate}" in self._taken:
                candidate, n = f"{base}-{n}", n + 1
            self._taken.add(f"{kind}/{candidate}")
            self._names[key] = f"{kind}/{candidate}.html"
        return self._names[key]


@dataclass
class SiteSummary:
    out: Path
    pages: int
    seconds: float

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def _cell_view(cell: Cell | None) -> dict[str, Any]:
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


def _mean_trace(records: Sequence[RunRecord], name: str) -> tuple[list, list, dict] | None:
    """Element-wise mean of one trace over a gate's seeds (traces share their x)."""
    traces = [r.traces[name] for r in records if r.ok and name in r.traces]
    if not traces:
        return None
    xs = traces[0]["x"]
    stacked = np.array([t["y"] for t in traces if t["x"] == xs], dtype=np.float64)  # None -> nan
    finite = np.isfinite(stacked)
    counts = finite.sum(axis=0)
    means = np.where(finite, stacked, 0.0).sum(axis=0) / np.maximum(counts, 1)
    ys = np.where(counts > 0, means, np.nan).tolist()
    return xs, _nan_to_none(ys), traces[0]


def _nan_to_none(values: Any) -> Any:
    if isinstance(values, list):
        return [_nan_to_none(v) for v in values]
    return None if values != values else values


def _trace_plots(tres: TaskResult, gates: list[GateResult]) -> list[dict[str, Any]]:
    names: list[str] = []
    for gres in gates:
        for rec in gres.records.values():
            names += [n for n in rec.traces if n not in names]
    plots = []
    for name in names:
        scalar: list[Series] = []
        marks: dict[str, float] = {}
        meta: dict[str, Any] = {}
        for gres in gates:
            mean = _mean_trace(list(gres.records.values()), name)
            if mean is None:
                continue
            xs, ys, meta = mean
            marks.update(meta.get("marks", {}))
            if ys and isinstance(ys[0], list):  # a vector per step: one plot per gate
                components = [
                    Series(f"expert {j}", xs, [y[j] for y in ys]) for j in range(len(ys[0]))
                ]
                plots.append(
                    {
                        "title": f"{name} of {gres.gate.id}",
                        "svg": line_plot(
                            f"{name} of {gres.gate.id} on {tres.task.id}",
                            components,
                            meta.get("x_label", "x"),
                            meta.get("y_label", name),
                            meta.get("marks"),
                        ),
                    }
                )
            else:
                scalar.append(Series(gres.gate.id, xs, ys))
        if scalar:
            plots.append(
                {
                    "title": name.replace("_", " "),
                    "svg": line_plot(
                        f"{name} on {tres.task.id}, mean over seeds",
                        scalar,
                        meta.get("x_label", "x"),
                        meta.get("y_label", name),
                        marks,
                    ),
                }
            )
    return plots


def _ci_plots(tres: TaskResult, gates: list[GateResult]) -> list[dict[str, Any]]:
    plots = []
    for metric, info in tres.task.metrics.items():
        rows = []
        for gres in gates:
            cell = gres.cells.get(metric)
            if cell is None or cell.summary is None:
                continue
            s = cell.summary
            kind = (
                "ceiling"
                if gres.status == "ceiling"
                else "reference"
                if gres.gate.id == tres.task.reference_gate
                else "gate"
            )
            label = gres.gate.id + (" (ceiling)" if kind == "ceiling" else "")
            rows.append(CIRow(label, s.mean, s.ci_low, s.ci_high, kind))
        if rows:
            arrow = "higher is better" if info.higher_is_better else "lower is better"
            plots.append(
                {
                    "metric": metric,
                    "svg": ci_plot(f"{metric} on {tres.task.id} ({arrow})", rows, metric),
                }
            )
    return plots


class SiteBuilder:
    def __init__(self, agg: Aggregate, records: list[RunRecord], out: Path, templates: Path):
        if not (templates / "templates").is_dir():
            raise GateBenchError(
                f"Site templates not found under {templates}/templates. GateBench renders the "
                "site from its source checkout: install it with `pip install -e .`."
            )
        self.agg, self.records, self.out, self.templates = agg, records, out, templates
        self.pages = Pages()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(fmt=fmt, interval=interval, safe_url=safe_url)
        self.env.globals.update(
            task_page=lambda task_id: self.pages.name("tasks", task_id),
            gate_page=lambda gate_id: self.pages.name("gates", gate_id),
        )
        self.profiles = sorted({t.profile for t in agg.tasks}) or ["(none)"]
        self.claims = claim_rows(agg)
        self.generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.count = 0

    def command(self, task_id: str | None = None) -> str:
        profile = self.profiles[0] if len(self.profiles) == 1 else "default"
        task = f" --task {task_id}" if task_id else ""
        return f"gatebench run --profile {profile}{task} && gatebench site"

    def render(self, template: str, path: str, **context: Any) -> None:
        depth = path.count("/")
        html = self.env.get_template(template).render(
            root="../" * depth,
            suite_version=suite.__version__,
            profiles=self.profiles,
            generated=self.generated,
            page_path=path,
            **context,
        )
        target = self.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        self.count += 1

    # -- pages ---------------------------------------------------------------------------------

    def build(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        shutil.copytree(self.templates / "static", self.out / "static")
        rows, scales = leaderboard(self.agg)
        self.index(rows, scales)
        for tres in self.agg.tasks:
            self.task(tres, scales)
        self.gates()
        self.render(
            "ablations.html",
            "ablations.html",
            ablations=[self._ablation_view(t) for t in self.agg.tasks if t.ablation],
            command=self.command(),
        )
        self.render("claims.html", "claims.html", claims=self.claims, command=self.command())
        self.provenance()
        files = write_downloads(self.out / "downloads", self.agg, self.records)
        self.render(
            "downloads.html",
            "downloads.html",
            files=[(f.name, f.stat().st_size) for f in files],
            command=self.command(),
        )

    def index(self, rows: list[LeaderboardRow], scales: list[TaskScale]) -> None:
        families = [
            {
                "name": name,
                "description": get_family(name).description,
                "tasks": [t for t in self.agg.tasks if t.task.family == name],
            }
            for name in family_names()
        ]
        scale_by_task = {s.task_id: s for s in scales}
        board_plot = None
        if rows:
            board_plot = ci_plot(
                "Normalised score (IQM over tasks and seeds, 95% stratified bootstrap CI)",
                [CIRow(r.gate.id, r.iqm, r.ci_low, r.ci_high) for r in rows],
                "normalised score: 0 = affinity, 1 = ceiling",
            )
        tasks = []
        for tres in self.agg.tasks:
            best = next((g for g in tres.ordered_gates() if g.ranked), None)
            counts: dict[str, int] = {}
            for v in tres.claims:
                counts[v.verdict] = counts.get(v.verdict, 0) + 1
            tasks.append(
                {
                    "result": tres,
                    "best": best,
                    "claims": counts,
                    "scale": scale_by_task.get(tres.task.id),
                }
            )
        self.render(
            "index.html",
            "index.html",
            families=families,
            board=rows,
            board_plot=board_plot,
            scales=scales,
            tasks=tasks,
            n_records=len(self.records),
            command=self.command(),
        )

    def task(self, tres: TaskResult, scales: list[TaskScale]) -> None:
        gates = tres.ordered_gates()
        primary = tres.task.primary_metric
        metrics = [primary, *[m for m in tres.task.metrics if m != primary]]
        rows = []
        for gres in gates:
            rows.append(
                {
                    "gate": gres.gate,
                    "status": gres.status,
                    "reasons": gres.reasons,
                    "n_ok": gres.n_ok,
                    "n": len(gres.records),
                    "cells": {m: _cell_view(gres.cells.get(m)) for m in metrics},
                }
            )
        self.render(
            "task.html",
            self.pages.name("tasks", tres.task.id),
            result=tres,
            metrics=metrics,
            rows=rows,
            ci_plots=_ci_plots(tres, gates),
            trace_plots=_trace_plots(tres, gates),
            ablation=self._ablation_view(tres) if tres.ablation else None,
            claims=[c for c in self.claims if c["task"] == tres.task.id],
            scale=next((s for s in scales if s.task_id == tres.task.id), None),
            command=self.command(tres.task.id),
        )

    def _ablation_view(self, tres: TaskResult) -> dict[str, Any]:
        ab = tres.ablation
        if ab is None:
            raise ValueError(f"{tres.task.id} has no ablation")
        cells = []
        for gate_id, cell in ab.cells.items():
            active = set(gate_id.split("+")) if gate_id != ab.baseline else set()
            cells.append(
                {
                    "gate": gate_id,
                    "factors": [f in active for f in ab.factors],
                    "summary": cell.summary,
                    "gain": ab.gains.get(gate_id),
                }
            )
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

    def gates(self) -> None:
        by_gate: dict[str, list[tuple[TaskResult, GateResult]]] = {}
        for tres in self.agg.tasks:
            for gate_id, gres in tres.gates.items():
                by_gate.setdefault(gate_id, []).append((tres, gres))
        index = []
        for gate_id, entries in sorted(by_gate.items()):
            ref = entries[0][1].gate
            results = []
            for tres, gres in entries:
                newest = max(gres.records.values(), key=lambda r: r.provenance.created_at)
                results.append(
                    {
                        "task": tres.task,
                        "status": gres.status,
                        "reasons": gres.reasons,
                        "metric": tres.task.primary_metric,
                        "cell": _cell_view(gres.cells.get(tres.task.primary_metric)),
                        "conformance": newest.conformance,
                        "n_ok": gres.n_ok,
                        "n": len(gres.records),
                        "diagnostics": newest.diagnostics,
                    }
                )
            index.append({"gate": ref, "tasks": len(entries)})
            self.render(
                "gate.html",
                self.pages.name("gates", gate_id),
                gate=ref,
                results=results,
                command=self.command(),
            )
        self.render("gates.html", "gates.html", gates=index, command=self.command())

    def provenance(self) -> None:
        def distinct(attr: str) -> list[str]:
            return sorted({str(getattr(r.provenance, attr)) for r in self.records})

        commits = sorted({(r.provenance.git_commit, r.provenance.git_dirty) for r in self.records})
        packages = {}
        for name in ("torch", "numpy", "pydantic", "datasets", "jinja2", "pyarrow"):
            try:
                packages[name] = version(name)
            except PackageNotFoundError:
                packages[name] = "not installed"
        self.render(
            "provenance.html",
            "provenance.html",
            commits=commits,
            suite_versions=distinct("suite_version"),
            pythons=distinct("python"),
            torches=distinct("torch"),
            numpies=distinct("numpy"),
            platforms=distinct("platform"),
            devices=distinct("device"),
            commands=sorted({r.provenance.command for r in self.records if r.provenance.command}),
            packages=packages,
            n_records=len(self.records),
            spec_hashes=[(t.task.id, t.task.version, t.task.spec_hash) for t in self.agg.tasks],
            command=self.command(),
        )


def build_site(
    results: Path,
    out: Path | None = None,
    profile: str | None = None,
    templates: Path = SITE_DIR,
) -> SiteSummary:
    """Render the records under ``results`` (matched to the current specs) into ``out``."""
    started = time.perf_counter()
    agg, records = load_results(results, profile)
    return render_site(agg, records, out or results / "site", templates, started)


def render_site(
    agg: Aggregate,
    records: list[RunRecord],
    out: Path,
    templates: Path = SITE_DIR,
    started: float | None = None,
) -> SiteSummary:
    started = time.perf_counter() if started is None else started
    builder = SiteBuilder(agg, records, out, templates)
    builder.build()
    return SiteSummary(out, builder.count, time.perf_counter() - started)

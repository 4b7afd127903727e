"""Build the static site: the index with one leaderboard per task family, a page per task and per
gate, ablations, claims, provenance and downloads. Links are relative, so the folder works from
disk.

This module holds the builder; the modules beside it each do one job: ``renderer`` (templates,
page names, safe URLs), ``pages`` (one function per kind of page), ``views`` (how each kind of
metric is drawn), ``plots`` (SVG primitives) and ``exports`` (the downloads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.results.aggregate import Aggregate
from suite.results.leaderboard import leaderboards
from suite.results.loading import load_results
from suite.runs.records import RunRecord
from suite.website import pages
from suite.website.exports import write_downloads
from suite.website.guide import guide_pages
from suite.website.performance import load_bench, performance_page
from suite.website.renderer import Renderer

SITE_DIR = Path(__file__).resolve().parents[2] / "site"  # <checkout>/site


@dataclass
class SiteSummary:
    out: Path
    pages: int
    seconds: float

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def build_site(
    results: Path,
    out: Path | None = None,
    profile: str | None = None,
    templates: Path = SITE_DIR,
) -> SiteSummary:
    """Render the records under ``results`` (matched to the current specs) into ``out``."""
    started = time.perf_counter()
    agg, records = load_results(results, profile)
    bench = load_bench(results)
    return render_site(agg, records, out or results / "site", templates, started, bench)


def render_site(
    agg: Aggregate,
    records: list[RunRecord],
    out: Path,
    templates: Path = SITE_DIR,
    started: float | None = None,
    bench: tuple[dict[str, Any] | None, str] = (None, "no measurements: run `nox -s bench`"),
) -> SiteSummary:
    """Render an aggregate and its records into ``out`` (replacing what was there); ``bench``:
    the bench record for the performance page (``performance.load_bench``)."""
    started = time.perf_counter() if started is None else started
    site = Renderer(agg, records, out, templates)
    site.start()
    boards = leaderboards(agg)
    pages.index_page(site, boards)
    scales = {s.task_id: s for board in boards for s in board.scales}
    for tres in agg.tasks:
        pages.task_page(site, tres, scales.get(tres.task.id))
    pages.gate_pages(site)
    pages.ablations_page(site)
    pages.claims_page(site)
    pages.findings_page(site)
    pages.provenance_page(site)
    performance_page(site, *bench)
    pages.downloads_page(site, write_downloads(out / "downloads", agg, records))
    guide_pages(site)
    return SiteSummary(out, site.count, time.perf_counter() - started)

"""Build the static site: the index with one leaderboard per task family, a page per task and per
gate, ablations, claims, provenance and downloads. Links are relative, so the folder works from
disk.

The modules beside this one each do one job: ``render`` (templates, page names, safe URLs),
``pages`` (one function per kind of page), ``views`` (how each kind of metric is drawn),
``plots`` (SVG primitives) and ``exports`` (the downloads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from suite.results.aggregate import Aggregate
from suite.results.leaderboard import leaderboards
from suite.results.loading import load_results
from suite.runs.records import RunRecord
from suite.website import pages
from suite.website.exports import write_downloads
from suite.website.render import SITE_DIR, Renderer, safe_url

__all__ = ["SITE_DIR", "SiteSummary", "build_site", "render_site", "safe_url"]


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
    return render_site(agg, records, out or results / "site", templates, started)


def render_site(
    agg: Aggregate,
    records: list[RunRecord],
    out: Path,
    templates: Path = SITE_DIR,
    started: float | None = None,
) -> SiteSummary:
    """Render an aggregate and its records into ``out`` (replacing what was there)."""
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
    pages.provenance_page(site)
    pages.downloads_page(site, write_downloads(out / "downloads", agg, records))
    return SiteSummary(out, site.count, time.perf_counter() - started)

"""The site's renderer: templates, page names, safe URLs and what every page shares. The page
functions (``pages``, ``performance``) take it; the builder (``site``) drives them.

Everything a submitter controls (names, descriptions, URLs) is untrusted: templates autoescape,
and only http(s) URLs become links.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2

import suite
from suite.errors import GateBenchError
from suite.identity import slug
from suite.results.aggregate import Aggregate
from suite.results.findings import judge_findings
from suite.results.report import fmt
from suite.runs.records import RunRecord
from suite.website.exports import claim_rows


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


class PageNames:
    """Unique, file-system-safe names for ids that may contain anything."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()

    def key(self, kind: str, ident: str) -> str:
        """A slug of ``ident``, unique among the slugs of ``kind``."""
        if (kind, ident) not in self._keys:
            base = slug(ident)[:80] or "page"
            candidate, n = base, 2
            while f"{kind}/{candidate}" in self._taken:
                candidate, n = f"{base}-{n}", n + 1
            self._taken.add(f"{kind}/{candidate}")
            self._keys[(kind, ident)] = candidate
        return self._keys[(kind, ident)]

    def name(self, kind: str, ident: str) -> str:
        """The page's path from the site root, e.g. ``tasks/transition__anticipation.html``."""
        return f"{kind}/{self.key(kind, ident)}.html"


class Renderer:
    """Renders templates into the site folder; what every page shares lives here."""

    def __init__(self, agg: Aggregate, records: list[RunRecord], out: Path, templates: Path):
        if not (templates / "templates").is_dir():
            raise GateBenchError(
                f"Site templates not found under {templates}/templates. GateBench renders the "
                "site from its source checkout: install it with `pip install -e .`."
            )
        self.agg, self.records, self.out, self.templates = agg, records, out, templates
        self.names = PageNames()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(fmt=fmt, interval=interval, safe_url=safe_url)
        self.env.globals.update(task_page=self.task_page, gate_page=self.gate_page)
        self.profiles = sorted({t.profile for t in agg.tasks}) or ["(none)"]
        self.claims = claim_rows(agg)
        self.findings = judge_findings(agg)
        self.generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.count = 0

    def task_page(self, task_id: str) -> str:
        return self.names.name("tasks", task_id)

    def gate_page(self, gate_id: str) -> str:
        return self.names.name("gates", gate_id)

    def anchor(self, kind: str, ident: str) -> str:
        """An element id for ``ident`` (e.g. a family's section), unique within ``kind``."""
        return f"{kind}-{self.names.key(kind, ident)}"

    def command(self, task_id: str | None = None) -> str:
        profile = self.profiles[0] if len(self.profiles) == 1 else "default"
        task = f" --task {task_id}" if task_id else ""
        return f"gatebench run --profile {profile}{task} && gatebench site"

    def start(self) -> None:
        """An empty site folder with the static assets."""
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        shutil.copytree(self.templates / "static", self.out / "static")

    def render(self, template: str, path: str, **context: Any) -> None:
        depth = path.count("/")
        context.setdefault("command", self.command())
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

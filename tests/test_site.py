"""The static site: every link resolves, untrusted text stays text, downloads are complete, and a
real browser (Debian's chromium through Playwright) can use it from disk."""

from __future__ import annotations

import csv
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq
import pytest

from suite.results.aggregate import aggregate, report_rows
from suite.runs.records import iter_records
from suite.gates.entries import get_gate
from suite.runs.setup import SweepOptions
from suite.runs.sweep import Sweep
from suite.tasks.loading import load_all_tasks
from tests.synthetic import synthetic_records
from suite.website.build import build_site, render_site, safe_url

ANT_GATES = ["affinity", "beta", "pi", "ant", "beta+pi", "beta+ant", "pi+ant", "beta+pi+ant",
             "oracle", "test-peek-future", "test-raises"]  # fmt: skip
HOSTILE = "<script>alert(1)</script>"
ARTIFACTS = Path(
    os.environ.get("GATEBENCH_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("site-results")
    tasks = {t.id: t for t in load_all_tasks()}
    sweep = Sweep(SweepOptions(profile="smoke", results=results, workers=2), log=lambda m: None)
    sweep.run([tasks["transition/anticipation"]], [get_gate(g) for g in ANT_GATES])
    sweep.run([tasks["transition/precision-shift"]], [get_gate("affinity"), get_gate("pi")])
    return build_site(results).out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append(attrs[name])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_internal_link_resolves(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 15
    parsed = {p.resolve(): _parse(p) for p in pages}
    checked = 0
    for page, links in parsed.items():
        for link in links.links:
            url = urlparse(link)
            if url.scheme in ("http", "https") or link.startswith("data:"):
                continue
            assert not url.scheme, f"{page}: unexpected link {link}"
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            assert target.exists(), f"{page.relative_to(site.resolve())}: broken link {link}"
            if url.fragment and target.suffix == ".html":
                assert url.fragment in parsed[target].ids, f"{page}: missing anchor {link}"
            checked += 1
    assert checked > 100


def test_task_page_shows_ranks_deltas_ceilings_and_failures(site):
    html = (site / "tasks" / "transition__anticipation.html").read_text()
    assert "ceiling, non-causal" in html  # the oracle, labelled
    assert "reads the future" in html  # the rejected gate, with its conformance reason
    assert "deliberate failure in training" in html  # the failed gate, with its reason
    assert "Δ acc_transition vs affinity" in html
    assert html.count('class="whisker"') >= 8  # CI plots
    assert "transition</text>" in html  # the transition marked on the per-position plot
    assert "gain(beta+ant) − gain(beta) − gain(ant)" in html  # the ablation's interaction
    gate_page = (site / "gates" / "test-peek-future.html").read_text()
    assert "causality" in gate_page and "failed" in gate_page


def test_index_has_the_normalised_leaderboard(site):
    html = (site / "index.html").read_text()
    assert "Normalised score by gate" in html and "IQM" in html
    assert re.search(r"transition/anticipation", html)
    # non-causal and rejected gates are not on the leaderboard
    board = html.split("Normalised score by gate", 1)[1].split("</table>", 1)[0]
    assert "oracle" not in board and "test-peek-future" not in board and "beta+ant" in board


def test_downloads_hold_every_record_and_the_aggregate(site):
    downloads = site / "downloads"
    lines = (downloads / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2 * len(ANT_GATES) + 4
    with (downloads / "aggregate.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {"task", "gate", "metric", "mean", "ci_low", "ci_high", "n", "status"} <= rows[0].keys()
    assert pq.read_table(downloads / "aggregate.parquet").num_rows == len(rows)
    assert (downloads / "claims.csv").exists()


def test_untrusted_names_and_urls_render_as_text(tmp_path):
    records = synthetic_records(
        3, 2, 2, gate_names=[HOSTILE, "ok-gate"], gate_url="javascript:alert(1)"
    )
    out = render_site(aggregate(records), records, tmp_path / "site").out
    for page in out.rglob("*.html"):
        html = page.read_text()
        assert HOSTILE not in html, page
        assert 'href="javascript:' not in html, page
    gates = (out / "gates.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in gates
    assert all(p.name.isascii() and "<" not in p.name for p in out.rglob("*"))


def test_only_http_urls_become_links():
    assert safe_url("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("file:///etc/passwd") is None
    assert safe_url("//evil.example") is None


def test_site_matches_the_report(site):
    records = list(iter_records(site.parent))
    rows = report_rows(aggregate(records))
    with (site / "downloads" / "aggregate.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


# -- in a real browser ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed"
    if missing is None and not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if os.environ.get("GATEBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here, but {missing}")
        pytest.skip(missing)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser, problems: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    return page


@pytest.mark.browser
def test_site_in_a_real_browser(browser, site):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto((site / "index.html").as_uri())
    assert page.title() == "Leaderboard · GateBench"
    page.screenshot(path=str(ARTIFACTS / "site-index.png"), full_page=True)

    page.click("#tasks ~ table a[href$='transition__anticipation.html']")
    page.wait_for_load_state()
    assert page.url.endswith("tasks/transition__anticipation.html")
    assert page.locator("svg.ci-plot .whisker").count() >= 8  # CI whiskers in the plots

    table = page.locator("table.results")
    column = "acc_all"
    index = [h.strip() for h in table.locator("thead th").all_inner_texts()].index(
        next(h.strip() for h in table.locator("thead th").all_inner_texts() if h.startswith(column))
    )

    def values() -> list[str]:
        return [
            row.locator("td, th").nth(index).inner_text() for row in table.locator("tbody tr").all()
        ]

    before = values()
    table.locator("thead th").nth(index).locator("button").click()
    ascending = values()
    assert ascending != before, "sorting did not change the order"
    means = [float(v.split()[0]) for v in ascending if v.strip() not in ("—", "")]
    assert means == sorted(means)
    table.locator("thead th").nth(index).locator("button").click()
    descending = [float(v.split()[0]) for v in values() if v.strip() not in ("—", "")]
    assert descending == sorted(descending, reverse=True)
    page.screenshot(path=str(ARTIFACTS / "site-task.png"), full_page=True)
    assert problems == []


@pytest.mark.browser
def test_hostile_names_do_not_run_in_the_browser(browser, tmp_path):
    records = synthetic_records(3, 1, 2, gate_names=[HOSTILE], gate_url="javascript:alert(1)")
    out = render_site(aggregate(records), records, tmp_path / "site").out
    problems: list[str] = []
    page = _page(browser, problems)
    for name in ("index.html", "gates.html", "tasks/synthetic__task-00.html"):
        page.goto((out / name).as_uri())
        assert HOSTILE in page.inner_text("body")  # shown, as text
    assert problems == []

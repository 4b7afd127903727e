"""The static site: every link resolves, each family has its own leaderboard with the numbers the
leaderboard module computes, each metric is drawn by its declared kind, untrusted text stays text,
downloads are complete, and a real browser (Debian's chromium through Playwright) can use it from
disk."""

from __future__ import annotations

import csv
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import get_args
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq
import pytest
from markupsafe import escape

from suite.gates.entries import get_gate
from suite.identity import slug
from suite.results.aggregate import aggregate
from suite.results.leaderboard import leaderboard, leaderboards
from suite.results.loading import load_results
from suite.results.rows import report_rows
from suite.runs.setup import SweepOptions
from suite.runs.sweep import Sweep
from suite.tasks.loading import load_all_tasks
from suite.tasks.spec import MetricKind
from suite.website.renderer import safe_url
from suite.website.site import build_site, render_site
from suite.website.views import draw, views
from tests.synthetic import DOMAINS, EXPERTS, synthetic_records

ANT_GATES = ["affinity", "beta", "pi", "ant", "beta+pi", "beta+ant", "pi+ant", "beta+pi+ant",
             "oracle", "test-peek-future", "test-raises"]  # fmt: skip
UNRANKED = {"oracle": "ceiling", "test-peek-future": "rejected", "test-raises": "failed"}
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


@pytest.fixture(scope="module")
def two_families(tmp_path_factory) -> tuple[Path, list]:
    """A synthetic site with tasks in two families (and a matrix metric)."""
    records = synthetic_records(4, 4, 3, n_families=2)
    out = render_site(aggregate(records), records, tmp_path_factory.mktemp("two") / "site").out
    return out, records


class _Page(HTMLParser):
    """Links, element ids, and the tables with an id: their header cells and body rows, each cell
    as [text, data-value]."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.tables: dict[str, dict[str, list]] = {}
        self._table: dict[str, list] | None = None
        self._cell: list | None = None
        self._part = "rows"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids |= {attrs["id"]} if "id" in attrs else set()
        self.links += [attrs[n] for n in ("href", "src") if attrs.get(n)]
        if tag == "table" and attrs.get("id"):
            self._table = self.tables.setdefault(attrs["id"], {"header": [[]], "rows": []})
        elif self._table is not None and tag in ("thead", "tr", "td", "th"):
            self._part = "header" if tag == "thead" else self._part
            if tag == "tr" and self._part == "rows":
                self._table["rows"].append([])
            elif tag in ("td", "th"):
                self._cell = ["", attrs.get("data-value")]
                self._table[self._part][-1].append(self._cell)

    def handle_endtag(self, tag):
        self._table = None if tag == "table" else self._table
        self._part = "rows" if tag == "thead" else self._part
        if tag in ("td", "th") and self._cell is not None:
            self._cell[0], self._cell = self._cell[0].strip(), None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data


def _parse(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _svgs(html: str, kind: str) -> list[str]:
    """The inline SVGs of one kind (ci-plot, line-plot, heatmap), in page order."""
    return re.findall(rf'<svg class="plot {kind}".*?</svg>', html, flags=re.S)


def _board_id(family: str) -> str:
    return f"board-family-{slug(family)}"


def _check_board(table: dict[str, list], rows, scales) -> None:
    """The rendered board lists the computed rows, in rank order, with their numbers."""
    assert [h[0] for h in table["header"][0][4:]] == [s.task_id for s in scales]
    shown = table["rows"]
    assert [r[1][0] for r in shown] == [r.gate.id for r in rows]
    ranks = [int(r[0][1]) for r in shown]
    assert ranks == sorted(ranks) and ranks[0] == 1
    for cells, row in zip(shown, rows):
        assert int(cells[0][1]) == row.rank
        assert float(cells[2][1]) == pytest.approx(row.iqm, rel=1e-12)
        for cell, scale in zip(cells[4:], scales):
            want = row.per_task.get(scale.task_id)
            assert (cell[1] == "") if want is None else float(cell[1]) == pytest.approx(want)


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
    assert len(_svgs(html, "ci-plot")) == 5  # one per scalar metric
    assert "gain(beta+ant) − gain(beta) − gain(ant)" in html  # the ablation's interaction
    gate_page = (site / "gates" / "test-peek-future.html").read_text()
    assert "causality" in gate_page and "failed" in gate_page


def test_the_leaderboard_is_the_computed_one_in_rank_order(site):
    agg, _ = load_results(site.parent)
    (board,) = leaderboards(agg)  # the smoke sweep covers one family
    assert board.family == "transition"
    tables = _parse(site / "index.html").tables
    assert [t for t in tables if t.startswith("board-")] == [_board_id("transition")]
    _check_board(tables[_board_id("transition")], board.rows, board.scales)
    # the ceiling, the rejected and the failed gate have results but are not on the board
    anticipation = agg.task("transition/anticipation")
    assert {g: anticipation.gates[g].status for g in UNRANKED} == UNRANKED
    shown = {r[1][0] for r in tables[_board_id("transition")]["rows"]}
    assert shown.isdisjoint(UNRANKED) and {"beta+ant", "affinity", "pi"} <= shown
    # affinity and pi ran on both tasks of the family; the others on one
    counts = {r[1][0]: r[3][0] for r in tables[_board_id("transition")]["rows"]}
    assert counts["pi"] == "2 / 2" and counts["beta+ant"] == "1 / 2"
    # each gate off the board is listed with its status, its reason one click away
    index = (site / "index.html").read_text()
    unranked = index.split("<h3>Not ranked</h3>", 1)[1].split("</table>", 1)[0]
    for gate_id, status in UNRANKED.items():
        row = re.search(rf'<tr class="status-{status}">\s*<th scope="row"><a [^>]*>'
                        rf"{re.escape(gate_id)}</a>.*?</tr>", unranked, re.S)  # fmt: skip
        assert row, (gate_id, status)
        reason = anticipation.gates[gate_id].reasons
        assert "<details><summary>reason</summary>" in row.group(0)
        if reason:
            assert escape(reason[0]) in row.group(0)
    assert "beta+ant" not in unranked


def test_each_family_has_its_own_board(two_families):
    out, records = two_families
    agg = aggregate(records)
    tables = _parse(out / "index.html").tables
    assert sorted(t for t in tables if t.startswith("board-")) == sorted(
        [_board_id("synthetic-1"), _board_id("transition")]
    )
    for family in ("transition", "synthetic-1"):
        tasks = [t for t in agg.tasks if t.task.family == family]
        assert len(tasks) == 2
        rows, scales = leaderboard(tasks)  # over this family's tasks only
        _check_board(tables[_board_id(family)], rows, scales)
    pooled, _ = leaderboard(agg.tasks)
    by_family = {r[1][0]: float(r[2][1]) for r in tables[_board_id("transition")]["rows"]}
    assert any(by_family[r.gate.id] != pytest.approx(r.iqm) for r in pooled)  # not pooled


def test_a_curve_is_drawn_as_lines_with_bands_around_them(site):
    html = (site / "tasks" / "transition__anticipation.html").read_text()
    (plot,) = [s for s in _svgs(html, "line-plot") if "p_correct_by_position on" in s]
    groups = plot.split('<g class="series">')[1:]
    drawn = {re.match(r"<title>(.*?)</title>", g).group(1) for g in groups}
    # every gate with successful runs, none of those without; two seeds: every line has a band
    assert drawn == {g if g != "oracle" else "oracle (ceiling)" for g in ANT_GATES[:9]}
    for group in groups:
        line = re.search(r'<polyline[^>]* points="([^"]+)"', group).group(1).split()
        band = re.search(r'<polygon class="band"[^>]* points="([^"]+)"', group).group(1).split()
        upper, lower = band[: len(line)], band[len(line) :][::-1]
        for (x, y), (ux, uy), (lx, ly) in zip(
            *[[tuple(map(float, p.split(","))) for p in pts] for pts in (line, upper, lower)]
        ):
            assert x == ux == lx and uy <= y <= ly  # the band encloses the mean (y grows down)
    assert "<title>transition at 5</title>" in plot  # the switch, marked
    assert "position t</text>" in plot and "p(correct expert)</text>" in plot  # axis labels


def test_curves_are_drawn_one_plot_per_gate_one_line_per_index(site):
    html = (site / "tasks" / "transition__precision-shift.html").read_text()
    plots = [s for s in _svgs(html, "line-plot") if "pi of " in s]
    assert len(plots) == 1 and "pi of pi on transition/precision-shift" in plots[0]
    labels = re.findall(r'<g class="series"><title>(expert \d+)</title>', plots[0])
    assert labels and labels == [f"expert {j}" for j in range(len(labels))]


def test_a_matrix_is_drawn_as_a_heatmap_with_one_cell_per_element(two_families):
    out, records = two_families
    tres = aggregate(records).task("synthetic/task-00")
    html = (out / "tasks" / "synthetic__task-00.html").read_text()
    heatmaps = _svgs(html, "heatmap")
    assert len(heatmaps) == len(tres.gates)
    for gres, svg in zip(tres.ordered_gates(), heatmaps):
        assert f"routing of {gres.gate.id} on" in svg
        cells = re.findall(r'<rect class="cell"[^>]*><title>([^<]*)</title>', svg)
        assert len(cells) == DOMAINS * EXPERTS
        cell = gres.arrays["routing"]
        shown = re.match(r"domain d0, expert 1: ([\d.]+) \[([\d.-]+), ([\d.]+)\] \(n=3\)", cells[1])
        assert shown, cells[1]
        for text, want in zip(shown.groups(), (cell.mean, cell.low, cell.high)):
            assert float(text) == pytest.approx(want[0, 1], abs=5e-4)
        assert 'class="colour-bar"' in svg


def test_views_are_chosen_by_the_declared_kind_not_the_shape():
    assert set(views.names()) == set(get_args(MetricKind))
    records = synthetic_records(2, 1, 2)
    for kind, drawn in {"matrix": "heatmap", "curves": "line-plot"}.items():
        info = records[0].task.metrics["routing"].model_copy(update={"kind": kind})
        task = records[0].task.model_copy(
            update={"metrics": {**records[0].task.metrics, "routing": info}}
        )
        tres = aggregate([r.model_copy(update={"task": task}) for r in records]).tasks[0]
        figures = draw(tres, tres.ordered_gates(), "routing")  # the same 2-d data either way
        kinds = {re.match(r'<svg class="plot ([\w-]+)"', f.svg).group(1) for f in figures}
        assert len(figures) == 2 and kinds == {drawn}


def test_a_single_seed_draws_no_band():
    records = synthetic_records(2, 1, 1)
    tres = aggregate(records).tasks[0]
    (figure,) = draw(tres, tres.ordered_gates(), "p_correct_by_position")
    assert figure.svg.count("<polyline") == 2 and 'class="band"' not in figure.svg


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
    agg, _ = load_results(site.parent)
    with (downloads / "arrays.csv").open() as fh:
        arrays = list(csv.DictReader(fh))
    cell = agg.task("transition/anticipation").gates["pi"].arrays["acc_by_position"]
    mine = [
        r for r in arrays
        if r["gate"] == "pi" and r["metric"] == "acc_by_position"
        and r["task"] == "transition/anticipation"
    ]  # fmt: skip
    assert [int(r["coord_0"]) for r in mine] == cell.coords["position t"]
    assert [float(r["mean"]) for r in mine] == pytest.approx(cell.mean.tolist())
    assert len(arrays) == sum(
        c.mean.size for t in agg.tasks for g in t.gates.values() for c in g.arrays.values()
    )


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
    task = (out / "tasks" / "synthetic__task-00.html").read_text()
    for kind in ("ci-plot", "line-plot", "heatmap"):  # in the plots' labels and titles too
        assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in s for s in _svgs(task, kind))
    assert all(p.name.isascii() and "<" not in p.name for p in out.rglob("*"))


def test_only_http_urls_become_links():
    assert safe_url("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("file:///etc/passwd") is None
    assert safe_url("//evil.example") is None


def test_site_matches_the_report(site):
    agg, _ = load_results(site.parent)
    want = {(r["task"], r["gate"], r["metric"]): r for r in report_rows(agg)}
    with (site / "downloads" / "aggregate.csv").open() as fh:
        got = {(r["task"], r["gate"], r["metric"]): r for r in csv.DictReader(fh)}
    assert got.keys() == want.keys()
    for key, row in want.items():
        assert got[key]["status"] == row["status"]
        for column in ("mean", "ci_low", "ci_high", "delta_mean"):
            shown = got[key][column]
            assert (shown == "") if row[column] is None else float(shown) == row[column], key
    # and the task page shows the same means as the report
    results = _parse(site / "tasks" / "transition__anticipation.html").tables["results"]
    header = [h[0].split()[0] for h in results["header"][0]]
    column = header.index("acc_all")
    for cells in results["rows"]:
        row = want[("transition/anticipation", cells[1][1], "acc_all")]
        shown = cells[column][1]
        assert (shown == "") if row["mean"] is None else float(shown) == row["mean"]


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

    assert page.locator("table.board").count() == 1  # one family, one board
    page.click("table.tasks a[href$='transition__anticipation.html']")
    page.wait_for_load_state()
    assert page.url.endswith("tasks/transition__anticipation.html")
    assert page.locator("svg.ci-plot .whisker").count() >= 8  # CI whiskers in the plots
    assert page.locator("svg.line-plot polygon.band").count() >= 9  # CI bands of the curves

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


@pytest.mark.browser
def test_the_guide_renders_and_links_in_a_real_browser(browser, site):
    """The docs/ pages, the README and SUBMITTING.md are the site's guide: each renders from
    its Markdown, the navigation and the links between pages work, and the seed mode is named
    on the leaderboard the guide explains."""
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto((site / "index.html").as_uri())
    heading = page.locator("h3", has_text="Leaderboard on")
    assert heading.count() == 1 and heading.inner_text() == "Leaderboard on public seeds"
    page.click("header nav >> text=Guide")
    page.wait_for_load_state()
    assert page.url.endswith("guide/index.html")
    assert page.locator("article h1").inner_text() == "The GateBench guide"
    page.click("article a[href='trust.html']")
    page.wait_for_load_state()
    assert page.locator("article h1").inner_text() == "How runs are made trustworthy"
    assert page.locator("article table, article ul").count() >= 1
    page.click("nav.guide-nav >> text=Tasks")
    page.wait_for_load_state()
    assert page.locator("article table").count() >= 1  # the tasks table, from Markdown
    for guide_page in (site / "guide").glob("*.html"):
        html = guide_page.read_text()
        assert "&lt;!--" not in html, f"{guide_page.name} shows a Markdown comment as text"
        for href in re.findall(r'href="([^"#:]+\.html)', html):
            assert (guide_page.parent / href).resolve().exists(), (guide_page.name, href)
    page.screenshot(path=str(ARTIFACTS / "site-guide.png"), full_page=True)
    assert problems == []

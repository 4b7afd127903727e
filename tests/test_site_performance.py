"""The performance page: bench.json rendered as tables, robust to partial and newer records."""

from __future__ import annotations

import json
import math
import re

import pytest

from suite.results.aggregate import aggregate
from suite.website.performance import bench_sections, cell, load_bench
from suite.website.site import build_site, render_site
from tests.synthetic import synthetic_records
from tests.test_site import _page, browser  # noqa: F401  (the browser fixture)

REPORT = {
    "hardware": "Test CPU × 2",
    "python": "3.11.7",
    "torch": "2.13.0",
    "epoch_ms": {"affinity": {"forward": 3.14159, "step_loop": float("nan")}},
    "seed_ms": {"beta": {"one_seed": 4.6, "five_stacked": 15.8, "stacked_over_one": 3.4468}},
    "facts_step_ms": {"lerp": 9.0, "lerp-scan": 3.0, "lerp_over_lerp_scan": 3.0},
    "dask_s": {
        "gates": ["beta", "ant"],
        "one_worker": 10.0,
        "two_workers": 5.5,
        "rounds": [
            {"one_worker": 10.0, "two_workers": 5.5},
            {"one_worker": 9.5, "two_workers": 5.6},
        ],
    },
    "moe_latency_ms": {
        "E=5, k=2": {
            "top-k batched": {"ms": 47.55, "params_active": 66501},
            "dsc (iso-active)": {"ms": 62.67, "params_active": 66437},
        }
    },
    "table5_paper_profile_s": 84.2,
    "table5_workers": 2,
    "brand_new_item": {"speed_up": 1.93},
}


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_cells_format_numbers_and_say_n_a_for_missing_values():
    assert cell(float("nan")) == "n/a" and cell(None) == "n/a"
    assert cell(3.14159) == "3.14" and cell(66501) == "66,501" and cell(1234.5) == "1,234"
    assert cell(3.6512, "ratio") == "3.65×" and cell(1.5, "looped_over_stacked") == "1.50×"
    assert cell(float("nan"), "ratio") == "n/a" and cell(2.0, "ms") == "2"


def test_sections_cover_known_and_unknown_items_in_order():
    keys = [s.key for s in bench_sections(REPORT)]
    assert keys == [
        "epoch_ms",
        "seed_ms",
        "moe_latency_ms",
        "facts_step_ms",
        "dask_s",
        "table5_paper_profile_s",
        "brand_new_item",
    ]
    moe = next(s for s in bench_sections(REPORT) if s.key == "moe_latency_ms")
    assert moe.columns == ["", "ms", "params_active"]
    assert moe.rows[1] == ["E=5, k=2 · dsc (iso-active)", "62.7", "66,437"]


def test_the_site_shows_the_bench_record(tmp_path):
    records = synthetic_records(2, 2, 2)
    results = tmp_path / "results"
    results.mkdir()
    (results / "bench.json").write_text(json.dumps(REPORT))
    found = load_bench(results)
    assert found[0]["table5_workers"] == 2 and math.isnan(
        found[0]["epoch_ms"]["affinity"]["step_loop"]
    )
    out = render_site(aggregate(records), records, tmp_path / "site", bench=found).out
    page = text((out / "performance.html").read_text())
    assert "Test CPU × 2" in page and "torch 2.13.0" in page
    assert "3.14 n/a" in page  # the forward time, and the NaN loop time
    assert "E=5, k=2 · dsc (iso-active) 62.7 66,437" in page
    assert "seconds 84.2 workers 2" in page
    assert "beta 4.6 15.8 3.45×" in page  # a ratio
    assert "lerp_over_lerp_scan 3.00×" in page and "speed_up 1.82×" in page  # 10 / 5.5
    assert "rounds 10.0 / 5.5 s; 9.5 / 5.6 s" in page  # each round's pair in one cell
    assert "scan_ms" not in page and "Leaky-integrator" not in page  # not measured: no section
    assert "brand new item" in page and "1.93" in page
    assert 'href="performance.html"' in (out / "index.html").read_text()


def test_without_a_bench_record_the_page_says_how_to_make_one(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    out = build_site(results).out
    assert "run `nox -s bench`" in text((out / "performance.html").read_text())
    (results / "bench.json").write_text("{not json")
    out = build_site(results).out
    assert "could not be read" in text((out / "performance.html").read_text())


@pytest.mark.browser
def test_the_performance_page_in_a_real_browser(browser, tmp_path):  # noqa: F811
    records = synthetic_records(2, 1, 2)
    report = (REPORT, "")
    out = render_site(aggregate(records), records, tmp_path / "site", bench=report).out
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto((out / "index.html").as_uri())
    page.click("nav a[href='performance.html']")
    page.wait_for_load_state()
    assert page.title() == "Performance · GateBench"
    assert page.locator("section table").count() == len(bench_sections(REPORT))
    assert problems == []


def test_a_malformed_dask_item_is_shown_not_a_crash():
    odd = {"dask_s": {"one_worker": 10.0, "two_workers": "?", "rounds": [{"one_worker": "a"}, 3]}}
    (section,) = bench_sections(odd)
    assert section.key == "dask_s" and "speed_up" not in [row[0] for row in section.rows]
    assert ["rounds", ""] in [row[:2] for row in section.rows]  # nothing readable: an empty cell


def test_this_sessions_items_have_their_titles_and_a_row_per_run():
    report = {
        "roofline": {
            "lm/char-switch × softmax": {"seconds": 0.79, "gflop": 11.0, "matmul_share": 0.18},
            "facts/sliding-window × lerp": {"seconds": 2.19, "gflop": 36.2, "matmul_share": 0.21},
        },
        "moe_latency_ms_cuda": {"E=2, k=1": {"top-k batched": {"ms": 0.5}}},
        "table5_all_routers_s": 139.0,
    }
    sections = {s.key: s for s in bench_sections(report)}
    assert sections["roofline"].title == "Where a run's time goes"
    assert [row[0] for row in sections["roofline"].rows] == list(report["roofline"])
    assert sections["roofline"].columns == ["", "seconds", "gflop", "matmul_share"]
    assert "GPU" in sections["moe_latency_ms_cuda"].title
    assert sections["table5_all_routers_s"].rows == [["139"]]


def test_the_fusion_items_are_one_table_each_with_ratios_marked():
    report = {
        "compiled_step_ms": {
            "beta+ant": {"eager_ms": 5.47, "compiled_ms": 8.9, "compile_s": 4.3, "ratio": 1.63},
            "gru": {"eager_ms": 6.6, "error": "RuntimeError: no compiler"},
        },
        "softmax_ms": {"512×12×4": {"torch_ms": 0.49, "written_ms": 0.11}},
    }
    sections = {s.key: s for s in bench_sections(report)}
    compiled = sections["compiled_step_ms"]
    assert compiled.title == "A compiler fusing operators"
    assert compiled.columns == ["", "eager_ms", "compiled_ms", "compile_s", "ratio", "error"]
    assert compiled.rows[0][4] == "1.63×" and compiled.rows[1][2] == "n/a"
    assert sections["softmax_ms"].rows == [["512×12×4", "0.49", "0.11"]]

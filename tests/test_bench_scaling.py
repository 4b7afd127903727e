"""Bench item 10 (epoch cost against T and B) at tiny sizes: its shape, and its page section."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from suite.bench import run as bench
from suite.bench.scaling import TASK, print_scaling, scaled_spec, scaling_costs
from suite.results.aggregate import aggregate
from suite.tasks.loading import load_all_tasks, select_tasks
from suite.website.performance import bench_sections
from suite.website.site import render_site
from tests.synthetic import synthetic_records

ROW = {"ms", "peak_mb", "ms_over_smallest", "peak_over_smallest"}


@pytest.fixture(scope="module")
def tiny() -> dict:
    return scaling_costs(
        gates=("affinity",), lengths=(8, 4), batches=(8, 4), fixed_batch=4, fixed_T=8, epochs=2
    )


def test_scaled_specs_move_the_switch_with_the_length():
    base = select_tasks(load_all_tasks(), [TASK])[0].for_profile("paper")
    spec = scaled_spec(base, 64, 32, 3)
    assert (spec.data.seq_len, spec.data.switch_at) == (64, 32)
    assert (spec.train.batch_size, spec.train.epochs, spec.train.eval_window) == (32, 3, 1)
    assert spec.data.noise_std == base.data.noise_std and spec.train.lr == base.train.lr
    with pytest.raises(ValidationError):
        scaled_spec(base, 1, 32, 3)  # no room for a switch


def test_the_sweeps_have_one_positive_row_per_point_and_gate(tiny):
    assert list(tiny["T"]) == ["4", "8"] and list(tiny["B"]) == ["4", "8"]  # smallest first
    assert tiny["fixed"] == {"batch": 4, "T": 8, "epochs": 2}
    for sweep in ("T", "B"):
        for rows in tiny[sweep].values():
            assert set(rows) == {"affinity"}
            row = rows["affinity"]
            assert set(row) == ROW
            assert row["ms"] > 0 and row["peak_mb"] > 0
        first = tiny[sweep][next(iter(tiny[sweep]))]["affinity"]
        assert first["ms_over_smallest"] == 1.0 and first["peak_over_smallest"] == 1.0
    # the point at the fixed batch and the fixed T is shared by both sweeps, measured once
    assert tiny["T"]["8"]["affinity"]["ms"] == tiny["B"]["4"]["affinity"]["ms"]


def test_the_table_prints_each_point_and_the_growth(tiny, capsys):
    print_scaling(tiny)
    printed = capsys.readouterr().out
    assert "at batch 4" in printed and "at T = 8" in printed
    assert printed.count("growth") == 2 and "(T 4 -> 8)" in printed


def test_only_scaling_stores_the_item_beside_the_records_other_items(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "scaling_costs", lambda: tiny)
    monkeypatch.setattr(bench, "pin_threads", lambda n: None)  # leave the test process alone
    out = tmp_path / "bench.json"
    out.write_text('{"hardware": "cpu", "seed_ms": {"one": 1.0}}')
    assert bench.main(["--only-scaling", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["seed_ms"] == {"one": 1.0} and report["scaling_ms"] == tiny


def test_the_performance_page_shows_the_item(tiny, tmp_path):
    report = {"hardware": "Test CPU × 2", "scaling_ms": json.loads(json.dumps(tiny))}
    (section,) = bench_sections(report)
    assert section.columns == ["", "ms", "peak_mb", "ms_over_smallest", "peak_over_smallest"]
    assert [r[0] for r in section.rows] == [  # the fixed settings are said, not a row
        "T · 4 · affinity",
        "T · 8 · affinity",
        "B · 4 · affinity",
        "B · 8 · affinity",
    ]
    assert section.rows[0][3:] == ["1.00×", "1.00×"]
    assert "at batch 4, B at T = 8; 2 epochs timed" in section.about
    records = synthetic_records(2, 1, 2)
    out = render_site(aggregate(records), records, tmp_path / "site", bench=(report, "")).out
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (out / "performance.html").read_text()))
    assert "Epoch cost against sequence length and batch" in page
    assert "T · 8 · affinity" in page and "B · 8 · affinity" in page

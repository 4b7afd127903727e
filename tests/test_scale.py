"""Scale axes: each point is a profile of its own, validated at load; the trend of a claim's
metric over the points is a least-squares slope per doubling with its interval, read as the gap
to the paper's number shrinking, growing or not detectably moving."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from suite.errors import SpecError
from suite.results.scale import direction, fit, task_trends
from suite.runs.plan import task_ref
from suite.runs.records import GateRef, RunRecord
from suite.tasks.loading import load_task_file, profile_runs, tasks_for_profile
from tests.synthetic import _provenance


def test_a_scale_point_is_the_axis_profile_with_its_override(tasks):
    spec = tasks["facts/sliding-window"]
    assert spec.scale_profiles() == ["scale-w64", "scale-w128", "scale-w256"]
    wide = spec.for_profile("scale-w256")
    default = spec.for_profile("default")
    assert (wide.model.d_model, wide.model.d_ff, wide.seeds) == (256, 128, 3)
    assert wide.data == default.data and wide.train == default.train
    # a wider base starts smaller and pre-trains slower (μP-like), so it learns the in-window task
    assert wide.model.init_std < default.model.init_std
    assert wide.pretrain.lr < default.pretrain.lr
    assert wide.pretrain.steps == default.pretrain.steps
    assert spec.for_profile("scale-w64").spec_hash() == default.spec_hash()  # same runs
    assert spec.has_profile("scale") and not tasks["transition/anticipation"].has_profile("scale")
    with pytest.raises(SpecError, match="Unknown profile 'scale-w512'"):
        spec.for_profile("scale-w512")


def test_run_scale_sweeps_each_point_in_turn(tasks):
    runs = profile_runs(list(tasks.values()), "scale")
    assert [p for p, _ in runs] == ["scale-w64", "scale-w128", "scale-w256"]
    axes = ["facts/full-attention", "facts/sliding-window", "facts/templated"]
    assert all(sorted(t.id for t in chosen) == axes for _, chosen in runs)
    with pytest.raises(SpecError, match=r"the tasks that do: .*facts/sliding-window"):
        tasks_for_profile([tasks["transition/anticipation"]], "scale")


@pytest.mark.parametrize(
    ("points", "error"),
    [
        ("[{label: a, size: 1}, {label: b, size: 2}]", "at least 3 items"),
        ("[{label: a, size: 1}, {label: a, size: 2}, {label: c, size: 3}]", "label must be"),
        ("[{label: a, size: 1}, {label: b, size: 2}, {label: c, size: 4, "
         "override: {model: {d_model: -4}}}]", "scale point 'scale-c'"),
    ],
)  # fmt: skip
def test_a_malformed_scale_axis_names_the_file_and_the_point(tmp_path, tasks, points, error):
    from suite.tasks.family import get_family

    text = (get_family("facts").specs_dir() / "sliding-window.yaml").read_text()
    head, rest = text.split("scale:", 1)
    tail = rest.split("\nprofiles:", 1)[1]
    folder = tmp_path / "facts"
    folder.mkdir()
    path = folder / "sliding-window.yaml"
    path.write_text(f"{head}scale:\n  name: width\n  points: {points}\nprofiles:{tail}")
    with pytest.raises(SpecError, match=error) as info:
        load_task_file(path, tmp_path, "")
    assert "sliding-window.yaml" in str(info.value)


def test_the_fitted_slope_against_known_values():
    xs = [0, 0, 1, 1, 2, 2]
    ys = [0.10, 0.12, 0.15, 0.17, 0.20, 0.22]  # exactly +0.05 per doubling
    slope, low, high = fit(xs, ys)
    assert slope == pytest.approx(0.05)
    line = sps.linregress(xs, ys)
    half = sps.t.ppf(0.975, 4) * line.stderr
    assert (low, high) == pytest.approx((0.05 - half, 0.05 + half))
    assert direction(paper=0.8, first=0.11, low=low, high=high) == "gap shrinks"
    assert direction(paper=0.0, first=0.11, low=low, high=high) == "gap grows"
    assert direction(paper=0.8, first=0.11, low=-0.01, high=0.02) == "no detectable trend"
    assert direction(paper=None, first=0.11, low=low, high=high) == "rises"
    assert direction(paper=None, first=0.11, low=-high, high=-low) == "falls"


def _records(spec, gate: str, per_point: dict[str, list[float]]) -> list[RunRecord]:
    paper = spec.for_profile("paper").spec_hash()
    gate_ref = GateRef(id=gate, origin="baseline", causal=True, description=gate, source_hash="h")
    return [
        RunRecord(
            key=f"{name}-{seed}",
            status="ok",
            profile=name,
            seed_index=seed,
            task=task_ref(spec.for_profile(name), paper),
            gate=gate_ref,
            metrics={"acc_persistent": value},
            provenance=_provenance(),
        )
        for name, values in per_point.items()
        for seed, value in enumerate(values)
    ]


def test_a_claims_trend_is_read_from_its_points_records(tasks):
    spec = tasks["facts/sliding-window"]
    rng = np.random.default_rng(0)
    rising = {
        f"scale-w{w}": list(0.05 + 0.04 * math.log2(w / 64) + rng.normal(0, 0.005, 3))
        for w in (64, 128, 256)
    }
    trends = {t.key: t for t in task_trends(spec, _records(spec, "lerp", rising))}
    lerp = trends["facts/sliding-window:lerp:acc_persistent"]
    assert [p.n for p in lerp.points] == [3, 3, 3] and [p.size for p in lerp.points] == [
        64,
        128,
        256,
    ]
    assert lerp.slope == pytest.approx(0.04, abs=0.01) and lerp.direction == "gap shrinks"
    assert lerp.paper == pytest.approx(0.801) and "80.1%" in lerp.detail()
    assert lerp.points[0].low < lerp.points[0].mean < lerp.points[0].high
    flat = {name: [0.02, 0.021, 0.019] for name in rising}
    (same,) = [t for t in task_trends(spec, _records(spec, "lerp", flat)) if t.gate == "lerp"
               and t.metric == "acc_persistent"]  # fmt: skip
    assert same.direction == "no detectable trend"
    untouched = trends["facts/sliding-window:lerp-scan:acc_persistent"]
    assert untouched.direction == "no data" and all(p.n == 0 for p in untouched.points)
    other = _records(spec, "delta-rule", rising)  # a gate with no claim: its primary metric
    (delta,) = [t for t in task_trends(spec, other) if t.gate == "delta-rule"]
    assert delta.paper is None and delta.direction == "rises" and "paper" not in delta.detail()


def test_the_claims_page_and_the_report_show_each_trend(tasks, tmp_path, capsys):
    from suite.cli import main
    from suite.runs.records import runs_dir, write_record
    from suite.website.site import build_site

    spec = tasks["facts/sliding-window"]
    points = {f"scale-w{w}": [0.02 + 0.01 * i + 0.001 * s for s in range(3)]
              for i, w in enumerate((64, 128, 256))}  # fmt: skip
    results = tmp_path / "results"
    for record in _records(spec, "lerp", points):
        write_record(runs_dir(results) / f"{record.key}.json", record)
    page = (build_site(results, profile="scale-w256").out / "claims.html").read_text()
    section = page.split('id="scale-trends"')[1]
    assert "lerp, acc_persistent on" in section and "gap shrinks" in section
    assert "<svg" in section and "paper: 80.1%" in section
    assert main(["report", "--results", str(results), "--profile", "scale-w256"]) == 0
    out = capsys.readouterr().out
    assert "Scale trends" in out and "facts/sliding-window × lerp acc_persistent" in out


def test_a_point_counts_only_the_axis_seeds(tasks):
    """The w64 point shares the default profile's runs, which have more seeds than the axis."""
    spec = tasks["facts/sliding-window"]
    values = {"scale-w64": [0.1, 0.1, 0.1, 0.9, 0.9], "scale-w128": [0.1] * 3}
    (lerp,) = [t for t in task_trends(spec, _records(spec, "lerp", values))
               if t.metric == "acc_persistent" and t.gate == "lerp"]  # fmt: skip
    assert lerp.points[0].n == 3 and lerp.points[0].mean == pytest.approx(0.1)

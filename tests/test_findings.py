"""GateBench's own findings: declared as data, judged from records with the claims' statistics,
and the score a gate keeps on a held-out variant, with a paired bootstrap interval."""

from __future__ import annotations

import pytest

from suite.errors import SpecError
from suite.results.aggregate import aggregate
from suite.results.findings import Finding, judge_findings, load_findings
from suite.results.leaderboard import leaderboards
from suite.results.stats import paired_ratio
from tests.synthetic import synthetic_records


def test_a_paired_ratio_against_known_values():
    exact = paired_ratio({0: 2.0, 1: 4.0, 2: 6.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert (exact.value, exact.low, exact.high, exact.n) == (2.0, 2.0, 2.0, 3)
    noisy = paired_ratio({0: 0.5, 1: 0.7, 2: 0.6, 3: 0.4}, {0: 1.0, 1: 1.0, 2: 0.9, 3: 1.1})
    assert noisy.value == pytest.approx(2.2 / 4.0)
    assert noisy.low < noisy.value < noisy.high
    assert paired_ratio({0: 1.0}, {0: 0.0}) is None  # nothing to divide by
    assert paired_ratio({0: 1.0}, {1: 1.0}) is None  # no common seed


def _records_with_a_variant():
    records = synthetic_records(n_gates=3, n_tasks=2, n_seeds=4)
    variant = "synthetic/task-01"
    for rec in records:
        if rec.task.id == variant:
            rec.task = rec.task.model_copy(update={"variant_of": "synthetic/task-00"})
    return aggregate(records), variant


def test_findings_are_judged_from_the_results():
    agg, variant = _records_with_a_variant()
    declared = {
        "transition": [
            Finding(id="better", statement="01 beats 00", kind="matches-or-beats",
                    gate="gate-01", versus="gate-00"),
            Finding(id="worse", statement="00 beats 01", kind="matches-or-beats",
                    gate="gate-00", versus="gate-01"),
            Finding(id="keeps-little", statement="01 keeps half", kind="keeps-at-most",
                    gate="gate-01", variant=variant, at_most=0.5),
            Finding(id="keeps-all", statement="01 keeps at most 1.5x", kind="keeps-at-most",
                    gate="gate-01", variant=variant, at_most=1.5),
            Finding(id="nobody", statement="x", kind="matches-or-beats", gate="nope",
                    versus="gate-00"),
        ]
    }  # fmt: skip
    verdicts = {v.finding.id: v for v in judge_findings(agg, declared)}
    assert verdicts["better"].verdict == "holds" and len(verdicts["better"].evidence) == 2
    assert verdicts["worse"].verdict == "fails"
    assert verdicts["keeps-little"].verdict == "fails"
    assert verdicts["keeps-all"].verdict == "holds"
    assert verdicts["nobody"].verdict == "missing"


def test_the_leaderboard_shows_the_score_kept_on_each_variant():
    agg, variant = _records_with_a_variant()
    (board,) = leaderboards(agg)
    (column,) = board.variants
    assert (column.variant, column.base, column.metric) == (variant, "synthetic/task-00", "acc")
    kept = column.ratios["gate-01"]
    assert kept.low <= kept.value <= kept.high and 0.8 < kept.value < 1.2


def test_a_malformed_findings_file_names_the_file_the_entry_and_the_field(tmp_path):
    path = tmp_path / "findings.yaml"
    path.write_text("- id: x\n  statement: s\n  kind: keeps-at-most\n  gate: g\n")
    with pytest.raises(SpecError, match=r"findings.yaml: finding 1: .*needs variant, at_most"):
        load_findings(path)
    path.write_text("- id: x\n  statement: s\n  kind: sometimes\n  gate: g\n")
    with pytest.raises(SpecError, match=r"finding 1: .*kind"):
        load_findings(path)


def test_the_shipped_findings_load():
    from suite.results.findings import family_findings

    assert len(family_findings()["transition"]) >= 2


def test_each_finding_names_the_records_it_came_from(tmp_path):
    """The findings page gives, one click away, the command, profile, seeds and commit of the
    records a finding compares (and only those)."""
    from suite.website.pages import finding_provenance
    from suite.website.site import render_site

    records = synthetic_records(n_gates=3, n_tasks=2, n_seeds=4)
    for r in records:  # gate-00/01 on one commit, the reference gate on another
        r.provenance = r.provenance.model_copy(
            update={"command": f"gatebench run --task {r.task.id}",
                    "git_commit": "affff" if r.gate.id == "affinity" else "abc123def4567890"}
        )  # fmt: skip
    finding = Finding(id="better", statement="01 beats 00", kind="matches-or-beats",
                      gate="gate-01", versus="gate-00")  # fmt: skip
    verdict = judge_findings(aggregate(records), {"transition": [finding]})[0]
    prov = finding_provenance(verdict, records)
    assert verdict.tasks
    assert prov["commands"] == [f"gatebench run --task {t}" for t in sorted(verdict.tasks)]
    assert prov["commits"] == ["abc123def456"]  # the reference gate's records are not compared
    assert prov["seeds"] == ["0", "1", "2", "3"]
    assert prov["records"] == [str(2 * 4 * len(verdict.tasks))]
    assert prov["profiles"] == sorted({r.profile for r in records})
    html = (render_site(aggregate(records), records, tmp_path).out / "findings.html").read_text()
    assert "<summary>Provenance of" in html or "No findings yet" in html

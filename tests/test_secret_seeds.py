"""Secret seeds by default for submissions, boards that name their seeds, and scores beyond the
Bayes-optimal limit flagged: the leaderboard ranks only what no gate could have computed ahead."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from suite.cli import _parser
from suite.gates.entries import get_gate
from suite.results.aggregate import aggregate
from suite.results.leaderboard import leaderboards
from suite.results.report import render_text
from suite.results.rows import report_rows
from suite.runs.records import iter_records
from suite.runs.salt import leaderboard_salt, resolve_salt, salt_id, seed_label
from suite.runs.setup import SweepOptions
from suite.runs.submit import baseline_cost, load_submissions
from suite.runs.sweep import Sweep

ANT = "transition/anticipation"
HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"


def test_submit_defaults_to_the_leaderboard_salt_and_run_to_the_public_seeds(tmp_path):
    parser = _parser()
    assert parser.parse_args(["submit", "x"]).salt is None  # -> the leaderboard salt
    assert parser.parse_args(["run"]).salt is None  # -> public seeds
    assert resolve_salt(None, None, tmp_path) == ""
    salt = resolve_salt(None, None, tmp_path, default="leaderboard")
    assert (tmp_path / "salt").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert resolve_salt(None, None, tmp_path, default="leaderboard") == salt  # reused: paired
    assert leaderboard_salt(tmp_path) == salt
    assert resolve_salt("public", None, tmp_path, default="leaderboard") == ""
    assert len(salt_id(salt)) == 8 and salt_id(salt) not in salt
    assert seed_label(salt) == f"secret seeds (salt {salt_id(salt)})"
    assert seed_label("") == "public seeds"


def _submissions(tmp_path: Path) -> list[Path]:
    """The stream-regenerating submission and its honest twin (the same code, lookup off)."""
    cheat = HOSTILE / "regenerates-streams"
    twin = tmp_path / "subs" / "regenerates-streams-twin"
    twin.mkdir(parents=True)
    shutil.copy(cheat / "gate.py", twin / "gate.py")
    manifest = (cheat / "submission.yaml").read_text()
    manifest = manifest.replace("name: regenerates-streams", "name: regenerates-streams-twin")
    (twin / "submission.yaml").write_text(manifest.replace("cheat: true", "cheat: false"))
    return [cheat, twin]


def _sweep(tasks, folders, results: Path, salt: str, task_ids=(ANT,), seeds: int = 2):
    options = SweepOptions(profile="smoke", results=results, workers=2, seeds=seeds, salt=salt)
    specs = [tasks[t] for t in task_ids]
    loaded = load_submissions(folders, specs, options)
    assert loaded.errors == []
    baselines = [get_gate("affinity"), get_gate("bayes")]
    summary = Sweep(options, log=lambda m: None).run(specs, [*baselines, *loaded.entries])
    assert summary.failed == summary.rejected == 0, summary.failures
    records = list(iter_records(results))
    return aggregate(records), records


def test_a_stream_regenerating_submission_is_defeated_by_secret_seeds(tasks, tmp_path):
    folders = _submissions(tmp_path)
    # public seeds: the attack passes every check and audit and is shown, never ranked (at the
    # smoke profile the Bayes ceiling is too close to 1 for any score to beat it detectably)
    agg, _ = _sweep(tasks, folders, tmp_path / "public", "")
    public = agg.task(ANT)
    cheat = public.gates["regenerates-streams"]
    assert public.seed_mode == "public"
    assert cheat.cells["acc_transition"].summary.mean > 0.95
    assert cheat.cells["acc_transition"].rank is None and not cheat.ranked
    assert cheat.status == "public-seeds" and "secret seeds" in cheat.reasons[-1]
    assert public.gates["regenerates-streams-twin"].status == "public-seeds"
    assert public.gates["affinity"].ranked  # baselines stay ranked on public seeds
    (board,) = leaderboards(agg)
    row = next(r for r in board.rows if r.gate.id == "regenerates-streams")
    assert row.rank is None and row.marks == ["public-seeds"] and "regenerate" in row.unranked
    assert board.seed_modes == ["public seeds"]
    # the default of `gatebench submit`: the results folder's secret leaderboard salt
    secret_results = tmp_path / "secret"
    agg, records = _sweep(tasks, folders, secret_results, leaderboard_salt(secret_results))
    board = agg.tasks[0]
    assert board.seed_mode == "secret"
    by = {(r.gate.id, r.seed_index): r.metrics for r in records}
    for seed in (0, 1):  # its lookup finds nothing: it computes exactly what its twin does
        assert by[("regenerates-streams", seed)] == by[("regenerates-streams-twin", seed)]
    cheat, twin = board.gates["regenerates-streams"], board.gates["regenerates-streams-twin"]
    assert cheat.status == twin.status == "ok"
    assert cheat.cells["acc_transition"].rank == twin.cells["acc_transition"].rank
    assert cheat.cells["acc_transition"].summary.mean < 0.5


def _scored(records, gate_id: str, values: list[float]):
    """``records`` with ``gate_id``'s acc_transition set to ``values`` by seed (a known answer)."""
    out = []
    for r in records:
        if r.gate.id == gate_id:
            metrics = {**r.metrics, "acc_transition": values[r.seed_index]}
            r = r.model_copy(update={"metrics": metrics})
        out.append(r)
    return out


def test_a_score_above_the_bayes_limit_is_flagged_everywhere(sweep, tmp_path):
    """Any mechanism: beyond the exact Bayes-optimal ceiling's interval a gate is flagged, never
    ranked, and its records kept; within the ceiling's interval, or at one seed, it is not."""
    _, records = sweep([ANT], ["affinity", "bayes", "beta", "test-regenerates"], seeds=2)
    records = _scored(records, "bayes", [0.90, 0.92])
    # a score within numerical tolerance of the ceiling is no evidence, nor one whose paired
    # interval reaches zero
    within = aggregate(_scored(records, "test-regenerates", [0.9 + 1e-7, 0.92 + 1e-7]))
    assert within.tasks[0].gates["test-regenerates"].status == "ok"
    noisy = aggregate(_scored(records, "test-regenerates", [0.95, 0.91]))
    assert noisy.tasks[0].gates["test-regenerates"].status == "ok"
    one_seed = aggregate([r for r in _scored(records, "test-regenerates", [0.95, 0.95])
                          if r.seed_index == 0])  # fmt: skip
    assert one_seed.tasks[0].gates["test-regenerates"].status == "ok"  # no interval, no verdict
    records = _scored(records, "test-regenerates", [0.95, 0.97])
    result = aggregate(records).tasks[0]
    flagged = result.gates["test-regenerates"]
    assert flagged.status == "above-limit" and flagged.cells["acc_transition"].rank is None
    assert "above the Bayes-optimal limit" in flagged.reasons[-1]
    assert len(flagged.records) == 2  # kept for review
    assert result.gates["beta"].ranked and result.gates["beta"].status == "ok"
    (board,) = leaderboards(aggregate(records))
    row = next(r for r in board.rows if r.gate.id == "test-regenerates")
    assert row.rank is None and row.marks == ["above-limit"] and "Bayes-optimal" in row.unranked
    assert board.seed_modes == ["public seeds"]
    text = render_text(aggregate(records))
    assert "test-regenerates (ABOVE THE BAYES-OPTIMAL LIMIT: not ranked)" in text
    assert "public seeds" in text
    rows = [r for r in report_rows(aggregate(records)) if r["gate"] == "test-regenerates"]
    assert {r["status"] for r in rows} == {"above-limit"}
    assert {r["seed_mode"] for r in rows} == {"public"}


def test_the_secret_board_is_shown_where_one_exists(sweep, tmp_path):
    results = tmp_path / "results"
    sweep([ANT], ["affinity"], results=results, seeds=1)
    public = aggregate(list(iter_records(results))).tasks[0]
    assert (public.seed_mode, public.salt_id) == ("public", "")
    sweep([ANT], ["affinity"], results=results, seeds=1, salt="5eed5a17")
    sweep([ANT], ["beta"], results=results, seeds=1)  # newer, but public: not shown
    secret = aggregate(list(iter_records(results))).tasks[0]
    assert secret.seed_mode == "secret" and secret.salt_id == salt_id("5eed5a17")
    assert set(secret.gates) == {"affinity"}
    assert f"secret seeds (salt {salt_id('5eed5a17')})" in render_text(
        aggregate(list(iter_records(results)))
    )
    from suite.results.loading import load_results

    public, _ = load_results(results, salt="")  # what a --salt public submission is shown
    assert public.tasks[0].seed_mode == "public" and set(public.tasks[0].gates) == {
        "affinity",
        "beta",
    }


def test_the_first_secret_run_says_what_it_costs(sweep, tasks, tmp_path):
    results = tmp_path / "results"
    sweep([ANT], ["affinity", "beta"], results=results, seeds=2)  # public: gives the times
    options = SweepOptions(profile="smoke", results=results, seeds=2, salt="5eed5a17", workers=2)
    cost = baseline_cost([tasks[ANT]], [get_gate("affinity"), get_gate("beta")], options)
    assert (cost.planned, cost.missing, cost.untimed) == (4, 4, 0)
    assert cost.seconds is not None and cost.seconds > 0
    assert "4 of 4 baseline runs on secret seeds" in cost.describe("5eed5a17", 2)
    sweep([ANT], ["affinity", "beta"], results=results, seeds=2, salt="5eed5a17")
    done = baseline_cost([tasks[ANT]], [get_gate("affinity"), get_gate("beta")], options)
    assert done.missing == 0 and "All 4 baseline runs" in done.describe("5eed5a17", 2)


@pytest.mark.parametrize("salt", ["", "5eed5a17"])
def test_a_submission_summary_names_its_seeds(salt):
    from suite.runs.plan import Plan
    from suite.runs.submit import SubmitResult, render_summary
    from suite.runs.sweep import SweepSummary

    class _Entry:
        id, folder = "mine", Path("submissions/mine")

    text = render_summary(SubmitResult(_Entry(), SweepSummary(Plan("smoke")), [], salt))  # type: ignore[arg-type]
    assert seed_label(salt) in text.splitlines()[0]
    assert ("NOT A LEADERBOARD RESULT" in text) == (not salt)

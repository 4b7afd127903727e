"""Seed salts: a leaderboard's secret salt changes every run's data (no gate can regenerate it
from the public spec), is shared by the gates it compares, and is published in the records."""

from __future__ import annotations

import pytest

from suite.errors import GateBenchError
from suite.results.aggregate import aggregate
from suite.runs.salt import resolve_salt as _salt
from suite.seeding import RunSeeds

ANT = "transition/anticipation"


def test_the_public_seeds_are_unchanged_and_a_salt_changes_them():
    public = RunSeeds(0, ANT, 3)
    assert public.as_dict() == RunSeeds(0, ANT, 3, salt="").as_dict()
    salted = RunSeeds(0, ANT, 3, salt="a1b2c3d4")
    assert salted.data != public.data and salted.init != public.init
    assert salted.as_dict() == RunSeeds(0, ANT, 3, salt="a1b2c3d4").as_dict()


def test_a_salted_sweep_is_paired_published_and_kept_apart(sweep, tmp_path):
    results = tmp_path / "results"
    _, public = sweep([ANT], ["affinity", "beta"], results=results)
    _, salted = sweep([ANT], ["affinity", "beta"], results=results, salt="5eed5a17")
    salted = [r for r in salted if r.provenance.salt == "5eed5a17"]
    assert len(salted) == 4  # new keys: nothing served from the public runs
    by_seed: dict[int, set[str]] = {}
    for record in salted:
        by_seed.setdefault(record.seed_index, set()).add(record.provenance.data_fingerprint)
    assert all(len(prints) == 1 for prints in by_seed.values())  # gates share the salted data
    public_prints = {r.provenance.data_fingerprint for r in public}
    assert public_prints.isdisjoint(set().union(*by_seed.values()))
    # the aggregate compares the newest salt's runs only (the public ones are set aside)
    _, everything = sweep([ANT], ["affinity", "beta"], results=results, salt="5eed5a17")
    result = aggregate(everything).tasks[0]
    assert result.stale_records == 4
    assert {r.provenance.salt for g in result.gates.values() for r in g.records.values()} == {
        "5eed5a17"
    }


def test_salt_arguments(tmp_path, capsys):
    assert _salt("public") == ""
    assert _salt("00ff00ff") == "00ff00ff"
    assert "can be read by every process" in capsys.readouterr().err
    assert len(_salt("new")) == 32
    with pytest.raises(GateBenchError, match="is not a salt"):
        _salt("../etc")


def test_a_new_salt_is_saved_in_the_results_and_read_back_from_the_file(tmp_path):
    results = tmp_path / "results"
    salt = _salt("new", results=results)
    path = results / "salt"
    assert path.read_text().strip() == salt and path.stat().st_mode & 0o077 == 0
    assert _salt("public", path) == salt
    with pytest.raises(GateBenchError, match=r"holds the salt of an earlier --salt new"):
        _salt("new", results=results)  # never overwritten: it keys a leaderboard's records
    with pytest.raises(GateBenchError, match="not both"):
        _salt("new", path)
    bad = tmp_path / "bad"
    bad.write_text("not hex\n")
    with pytest.raises(GateBenchError, match=r"bad: not a salt"):
        _salt("public", bad)
    with pytest.raises(GateBenchError, match=r"--salt-file .*missing: cannot read it"):
        _salt("public", tmp_path / "missing")


def test_a_gate_that_regenerates_the_public_stream_is_defeated_by_a_salt(sweep, tmp_path):
    """The threat the salt closes: with the specs' public seeds, a gate that rebuilds the data
    stream from the spec and answers with its labels passes every check and audit with a
    near-perfect score; with a salt its lookup finds nothing and it is an affinity gate."""
    gates = ["affinity", "test-regenerates"]
    _, public = sweep([ANT], gates, results=tmp_path / "public")
    _, salted = sweep([ANT], gates, results=tmp_path / "salted", salt="0badc0de")
    assert all(r.ok for r in [*public, *salted])  # ranked both times: no check or audit fires

    def scores(records):
        return [r.metrics["acc_transition"] for r in records if r.gate.id == "test-regenerates"]

    assert len(scores(public)) == 2 and min(scores(public)) > 0.95  # public seeds are gameable
    assert max(scores(salted)) < 0.5  # the salted data is not

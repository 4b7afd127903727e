"""The distributed path: a real Dask LocalCluster gives the same records as local processes."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

TASK = "transition/anticipation"


def test_dask_local_cluster_matches_the_process_executor(sweep, tmp_path):
    gates = ["affinity", "beta+ant", "test-raises"]
    local, local_records = sweep([TASK], gates, results=tmp_path / "local")
    dask, dask_records = sweep([TASK], gates, results=tmp_path / "dask", executor="dask")
    assert (dask.ok, dask.failed) == (local.ok, local.failed) == (4, 2)
    by_key = {r.key: r for r in local_records}
    for rec in dask_records:
        assert rec.status == by_key[rec.key].status
        assert rec.metrics == by_key[rec.key].metrics
        assert rec.provenance.data_fingerprint == by_key[rec.key].provenance.data_fingerprint
    failed = next(r for r in dask_records if r.gate.id == "test-raises")
    assert "deliberate failure" in failed.reason

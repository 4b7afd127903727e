"""The CUDA path (run where a GPU exists: `nox -s tests -- -m gpu`)."""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_runs_agree_with_cpu_runs(sweep, tmp_path):
    gates = ["affinity", "beta+pi+ant", "oracle"]
    tasks = ["transition/anticipation", "transition/precision-shift"]
    _, cpu = sweep(tasks, gates, results=tmp_path / "cpu")
    _, gpu = sweep(tasks, gates, results=tmp_path / "gpu", device="cuda", workers=1)
    by_key = {r.key: r for r in cpu}
    assert len(gpu) == len(cpu) and all(r.ok for r in gpu)
    for rec in gpu:
        assert "cuda" in rec.provenance.device
        assert rec.provenance.data_fingerprint == by_key[rec.key].provenance.data_fingerprint
        for name, value in rec.metrics.items():
            assert value == pytest.approx(by_key[rec.key].metrics[name], abs=0.05), name

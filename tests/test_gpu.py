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


def test_a_cuda_run_repeats_bit_for_bit(sweep, tmp_path):
    gates = ["affinity", "beta+ant", "topk-lb"]
    tasks = ["transition/anticipation", "lm/char-switch"]
    _, first = sweep(tasks, gates, results=tmp_path / "a", device="cuda", workers=1)
    _, again = sweep(tasks, gates, results=tmp_path / "b", device="cuda", workers=1)
    assert first and all(r.ok for r in first)
    assert {r.key: r.metrics for r in first} == {r.key: r.metrics for r in again}

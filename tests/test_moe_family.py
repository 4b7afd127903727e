"""The moe family: gates routing a layer of a real transformers MoE model, run like any task."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("transformers")

from suite.results.aggregate import aggregate
from suite.tasks.families.moe import protocol
from suite.tasks.families.moe.text import VOCAB, domain_codes, windows

TASKS = ["moe/prose-to-code", "moe/english-to-italian"]
HONEST = Path(__file__).resolve().parent / "fixtures" / "hostile" / "honest-gru"


def test_a_sweep_runs_baselines_in_the_real_architecture_deterministically(sweep, tmp_path):
    gates = ["affinity", "beta+ant", "hash", "topk-lb"]
    summary, records = sweep(TASKS, gates, results=tmp_path / "a")
    assert summary.ok == len(records) == 2 * len(gates) * 2, summary.failures
    for r in records:
        assert r.provenance.artifact  # the pre-trained base, prepared once per seed
        assert all(math.isfinite(v) for v in r.metrics.values())
        assert 1 / 4 <= r.metrics["max_load"] <= 1 and 0 <= r.metrics["usage_entropy"] <= 2
    by_seed = {}
    for r in records:  # every gate of a (task, seed) reads the same frozen base
        by_seed.setdefault((r.task.id, r.seed_index), set()).add(r.metrics["base_bpc_all"])
    assert all(len(v) == 1 for v in by_seed.values())
    _, again = sweep(TASKS, gates, results=tmp_path / "b")
    key = lambda r: (r.task.id, r.gate.id, r.seed_index)  # noqa: E731
    first = {key(r): r.deterministic_results() for r in records}
    assert first == {key(r): r.deterministic_results() for r in again}
    result = aggregate(records).task("moe/prose-to-code")
    assert result.gates["affinity"].ranked and result.task.primary_metric == "bpc_switch"


def test_a_submission_routes_the_model_from_its_own_process(tasks, tmp_path):
    import shutil

    from suite.runs.records import iter_records
    from suite.runs.setup import SweepOptions
    from suite.runs.submit import load_submissions
    from suite.runs.sweep import Sweep

    folder = tmp_path / "subs" / "honest-gru"  # the hostile corpus's honest control, in moe
    shutil.copytree(HONEST, folder)
    manifest = (folder / "submission.yaml").read_text()
    (folder / "submission.yaml").write_text(manifest.replace("[transition]", "[moe]"))
    options = SweepOptions(profile="smoke", results=tmp_path / "r", workers=2, seeds=1)
    spec = tasks["moe/prose-to-code"]
    loaded = load_submissions([folder], [spec], options)
    assert loaded.errors == []
    summary = Sweep(options, log=lambda m: None).run([spec], loaded.entries)
    assert summary.ok == 1, summary.failures
    (record,) = list(iter_records(tmp_path / "r"))
    assert "own process" in record.provenance.sandbox and record.audits


def test_uniform_logits_score_log2_of_the_vocabulary_everywhere(tasks):
    spec = tasks["moe/prose-to-code"].for_profile("smoke")
    tokens = torch.randint(0, VOCAB, (6, spec.data.seq_len))

    def uniform(chunk):
        return SimpleNamespace(logits=torch.zeros(chunk.shape[0], chunk.shape[1], VOCAB))

    found = protocol._evaluate(uniform, spec, tokens)
    bits = math.log2(VOCAB)
    for name in ("bpc_all", "bpc_switch", "bpc_after_switch"):
        assert found[name] == pytest.approx(bits, rel=1e-6)


def test_windows_switch_domain_at_the_declared_position():
    g = torch.Generator().manual_seed(0)
    tokens, second = windows(("english", "python"), 0.9, 1, 8, 40, 20, g)
    assert tokens.shape == (8, 40) and set(second.tolist()) == {1}
    held_out = domain_codes("python", 0.9)[1]
    text = held_out.tobytes()
    for row in tokens[:, 20:]:  # the tail of each window is a run of held-out Python source
        assert row.numpy().tobytes() in text

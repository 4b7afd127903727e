"""The character-LM family: its streams follow the paper's generator, sparse top-k dispatch equals
the per-expert loop (values and gradients), and a smoke sweep runs, repeats bit for bit and
rejects a non-causal router."""

from __future__ import annotations

import pytest
import torch

from suite.tasks.families.lm.data import draw_batch
from suite.tasks.families.lm.model import CharLM, ExpertBank, looped_experts, route
from suite.tasks.families.lm.spec import CharData

TASK = "lm/char-switch"


def test_streams_follow_the_generator():
    data = CharData()
    batch = draw_batch(data, 512, seed=3)
    size = data.vocab // data.n_domains
    assert batch.chars.shape == (512, data.seq_len)
    first, second = batch.chars[:, : data.switch_at], batch.chars[:, data.switch_at :]
    assert (first < size).all() and (second >= size).all()  # a-m, then n-z
    rel = batch.chars % size
    step = (rel[:, 1:] - rel[:, :-1]) % size
    inside = torch.ones_like(step, dtype=torch.bool)
    inside[:, data.switch_at - 1] = False  # the switch restarts the walk
    share_next = (step[inside] == 1).float().mean().item()
    uniform = 1 - data.p_next - data.p_skip
    assert share_next == pytest.approx(data.p_next + uniform / size, abs=0.01)
    assert torch.equal(draw_batch(data, 512, seed=3).chars, batch.chars)
    moving = draw_batch(CharData(random_switch=(10, 50)), 256, seed=1)
    assert moving.switch_at.min() >= 10 and moving.switch_at.max() <= 50
    assert moving.switch_at.unique().numel() > 10


@pytest.mark.parametrize("k", [1, 2])
def test_sparse_dispatch_equals_the_expert_loop(k):
    torch.manual_seed(0)
    bank = ExpertBank(n_experts=4, d_model=8, d_hidden=16)
    x = torch.randn(50, 8, requires_grad=True)
    logits = torch.randn(50, 4)
    weights, chosen, w = route(logits, "top-k", k)
    fast = bank.sparse(x, chosen, w)
    slow = looped_experts(bank, x, weights)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(fast.square().sum(), [x, bank.W1, bank.W2])
    oracle = torch.autograd.grad(slow.square().sum(), [x, bank.W1, bank.W2])
    for a, b in zip(grads, oracle, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert (weights > 0).sum(-1).eq(k).all()


def test_soft_mixing_equals_the_expert_loop():
    torch.manual_seed(1)
    bank = ExpertBank(n_experts=3, d_model=8, d_hidden=16)
    x = torch.randn(20, 8)
    weights, _, _ = route(torch.randn(20, 3), "soft", 1)
    torch.testing.assert_close(bank.soft(x, weights), looped_experts(bank, x, weights))


def test_the_model_runs_both_dispatch_modes():
    model = CharLM(vocab=26, d_model=8, n_experts=2, ff_mult=2)
    x = model.embed(torch.randint(0, 26, (3, 5)))
    for dispatch in ("soft", "top-k"):
        logits, weights, aux = model.finish(x, torch.randn(3, 5, 2), dispatch, 1)
        assert logits.shape == (3, 5, 26) and torch.allclose(weights.sum(-1), torch.ones(3, 5))
        assert aux.item() == 0.0  # the MoE layer has no loss of its own


def test_a_smoke_sweep_repeats_and_labels_routers(sweep, tmp_path):
    gates = ["affinity", "beta", "beta+ant-additive"]
    first, records = sweep([TASK], gates, results=tmp_path / "a")
    _, repeat = sweep([TASK], gates, results=tmp_path / "b")
    assert first.failed == 0 and first.ok == 2 * len(gates)
    results = {(r.gate.id, r.seed_index): r.deterministic_results() for r in records}
    assert results == {(r.gate.id, r.seed_index): r.deterministic_results() for r in repeat}
    for r in records:
        assert {"bpc_all", "bpc_transition", "p_correct_transition", "k_coverage"} <= set(r.metrics)
        assert 0 <= r.metrics["p_correct_transition"] <= 1 and r.metrics["bpc_all"] > 0
        assert r.arrays["bpc_by_position"].marks == {"transition": 31.0}


def test_the_real_language_dataset_builds_offline_and_switches_language(tasks):
    from suite.tasks.families.lm.corpus import SYMBOLS, corpus_dataset, language_codes

    data = tasks["lm/real-languages"].data
    ds = corpus_dataset(tuple(data.languages), data.train_share)
    assert set(ds["language"]) == set(data.languages) and set(ds["part"]) == {"train", "held-out"}
    assert ds._fingerprint == corpus_dataset(tuple(data.languages), data.train_share)._fingerprint
    batch = draw_batch(data, 64, seed=2)
    assert (batch.domains[:, : data.switch_at] == 0).all()  # English first
    assert (batch.domains[:, data.switch_at :] >= 1).all() and batch.domains.max() == 3
    assert batch.chars.max() < len(SYMBOLS)
    train, held = language_codes("english", data.train_share)
    window = batch.chars[0, : data.switch_at].numpy()
    text = train.tobytes()
    assert window.tobytes() in text  # the window is a piece of the training text
    held_batch = draw_batch(data, 4, seed=2, split="held-out")
    assert held_batch.chars[0, : data.switch_at].numpy().tobytes() in held.tobytes()


def test_multi_switch_streams_change_domain_at_every_switch(tasks):
    data = tasks["lm/char-multi-switch"].data
    batch = draw_batch(data, 128, seed=4)
    bounds = [data.switch_at, *data.more_switches]
    assert batch.switches.tolist() == [bounds] * 128
    size = data.vocab // data.n_domains
    assert torch.equal(batch.chars // size, batch.domains)  # each letter in its domain's alphabet
    for s in bounds:  # a new domain, never the one before
        assert (batch.domains[:, s] != batch.domains[:, s - 1]).all()
    segments = batch.domains[:, [0, *bounds]]
    assert segments.unique().numel() == data.n_domains  # the order is drawn per sequence
    with pytest.raises(ValueError, match="more_switches"):
        CharData(switch_at=32, more_switches=[20])

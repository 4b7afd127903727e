"""facts/templated: facts and queries as word templates, disjoint between training and evaluation;
the plain facts tasks draw exactly the episodes they drew before templates existed."""

from __future__ import annotations

import hashlib
import importlib

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor

from suite.gates.entries import get_gate
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.columns import fingerprint
from suite.tasks.families.facts import evaluation, protocol, reading
from suite.tasks.families.facts.data import IGNORE, draw_episodes, episode_seed, scored_positions
from suite.tasks.families.facts.layouts import layout_of
from suite.tasks.families.facts.pretrain import vocab_of
from suite.tasks.families.facts.templates import ENTITY, VALUE, Templates
from suite.tasks.family import RunContext

TASK = "facts/templated"
PLAIN_TASKS = [
    "facts/sliding-window",
    "facts/overwrite",
    "facts/multi-query",
    "facts/full-attention",
]
# computed with the code before templates existed (smoke profile; seed index 0)
EPISODES_BEFORE = {
    "facts/sliding-window": "fc6dea51d7b628b8",
    "facts/overwrite": "6f63819670b9a980",
    "facts/multi-query": "9c0296688cb168c1",
    "facts/full-attention": "a52bb5df8f2ac4e3",
}
EVAL_FINGERPRINT_BEFORE = {
    "facts/sliding-window": "0a9e56da5f228bd7",
    "facts/overwrite": "56f6585791aef99c",
}
PAPER_HASH_BEFORE = {  # version 2: the base became a transformers Mixtral (templates changed none)
    "facts/sliding-window": "f963044c6ea6e964",
    "facts/overwrite": "7bd8afc515ab2bb8",
    "facts/multi-query": "de491a860dc36981",
    "facts/full-attention": "486ac59c15fa49a8",
}


def episodes_digest(spec) -> str:
    """Training, evaluation and capacity episodes of a smoke spec, every field, hashed."""
    d, t = spec.data, spec.train
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    vocab = vocab_of(spec)
    eps = [
        draw_episodes(
            vocab,
            t.batch_size,
            d.n_facts,
            d.gap,
            d.n_queries,
            episode_seed(seeds.data, "train", s),
            d.overwrites,
        )
        for s in range(3)
    ]
    eps += [
        evaluation.eval_episodes(spec, seeds.data, i, d.n_facts, d.n_queries)
        for i in range(spec.eval.batches)
    ]
    eps += [evaluation.eval_episodes(spec, seeds.data, 0, n, n) for n in spec.eval.capacity]
    digest = hashlib.sha256()
    for ep in eps:
        tokens, labels = ep.in_context()
        fields = (ep.support, ep.gap, ep.queries, ep.labels, ep.fact_at, ep.overwritten)
        for x in (*fields, ep.distances(), tokens, labels):
            digest.update(x.to(torch.int64).numpy().tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("task_id", PLAIN_TASKS)
def test_plain_tasks_keep_their_episodes_and_hashes(tasks, task_id):
    spec = tasks[task_id].for_profile("smoke")
    assert spec.templates is None
    assert episodes_digest(spec) == EPISODES_BEFORE[task_id]
    assert tasks[task_id].for_profile("paper").spec_hash() == PAPER_HASH_BEFORE[task_id]
    if task_id in EVAL_FINGERPRINT_BEFORE:  # what a run records as its data fingerprint
        d, data_seed = spec.data, RunSeeds(spec.master_seed, spec.id, 0).data
        pairs = [
            evaluation.eval_episodes(spec, data_seed, i, d.n_facts, d.n_queries).in_context()
            for i in range(spec.eval.batches)
        ]
        columns = evaluation._columns([p[0] for p in pairs], [p[1] for p in pairs])
        assert fingerprint(columns) == EVAL_FINGERPRINT_BEFORE[task_id]


@pytest.fixture(scope="module")
def smoke(tasks):
    return tasks[TASK].for_profile("smoke")


def templates_of(tokens: Tensor, rows: Tensor) -> Tensor:
    """(B, N): which template row wrote each chunk of ``tokens`` (every chunk matches one)."""
    B, L = tokens.shape[0], rows.shape[1]
    chunks = tokens.view(B, -1, 1, L)
    words = rows >= 0  # template words must match; slots hold entities and values
    match = ((chunks == rows) | ~words).all(dim=-1)  # (B, N, n_templates)
    assert match.sum(-1).eq(1).all(), "a chunk matches no template, or several"
    return match.int().argmax(-1)


def test_training_and_evaluation_use_disjoint_templates_and_every_one(smoke):
    t, vocab, d = smoke.templates, vocab_of(smoke), smoke.data
    assert (
        len(t.support.train) + len(t.support.test),
        len(t.queries.train) + len(t.queries.test),
    ) == (7, 5)
    for group in (t.support, t.queries):
        assert not {tuple(s.split()) for s in group.train} & {tuple(s.split()) for s in group.test}
        test_words = {w for s in group.test for w in s.split()}  # unseen phrases, known words
        assert test_words <= {w for s in t.support.train + t.queries.train for w in s.split()}
    train, test = layout_of(smoke, "train"), layout_of(smoke, "test")
    seed = RunSeeds(smoke.master_seed, smoke.id, 0).data
    ep = draw_episodes(
        vocab, 256, d.n_facts, d.gap, d.n_queries, episode_seed(seed, "train", 0), layout=train
    )
    assert set(templates_of(ep.support, train.support).flatten().tolist()) == set(range(4))
    assert set(templates_of(ep.queries, train.queries).flatten().tolist()) == set(range(3))
    evals = [evaluation.eval_episodes(smoke, seed, i, d.n_facts, d.n_queries) for i in range(64)]
    support, queries = torch.cat([e.support for e in evals]), torch.cat([e.queries for e in evals])
    assert set(templates_of(support, test.support).flatten().tolist()) == set(range(3))
    assert set(templates_of(queries, test.queries).flatten().tolist()) == set(range(2))
    for tokens, rows in ((support, train.support), (queries, train.queries)):  # no train phrase
        chunks = tokens.view(tokens.shape[0], -1, 1, rows.shape[1])
        assert not ((chunks == rows) | (rows < 0)).all(-1).any()
    gap = torch.cat([e.gap for e in evals])
    assert ((gap >= vocab.filler0) & (gap < vocab.template0)).all()


def test_answers_sit_where_the_layout_scores_them(smoke):
    vocab, d = vocab_of(smoke), smoke.data
    assert (smoke.fact_len, smoke.query_len, smoke.seq_len) == (5, 5, 20 + d.gap + 20)
    assert reading.task_info(smoke).seq_len == smoke.seq_len
    assert reading.task_info(smoke).extras["vocab_size"] == vocab.size == vocab.template0 + 14
    for split in ("train", "test"):
        layout = layout_of(smoke, split)
        ep = draw_episodes(vocab, 64, d.n_facts, d.gap, d.n_queries, seed=7, layout=layout)
        assert ep.support.shape[1] == 5 * d.n_facts and ep.queries.shape[1] == 5 * d.n_queries
        tokens, labels = ep.in_context()
        assert tokens.shape[1] == smoke.seq_len
        scored = scored_positions(labels)  # (B, Q), one per query, only inside the queries
        assert scored.shape == (64, d.n_queries)
        assert (scored >= smoke.support_len + d.gap).all()
        answers = labels.gather(1, scored)
        assert torch.equal(tokens.gather(1, scored + 1), answers)  # the next token is the value
        assert ((answers >= vocab.value0) & (answers < vocab.filler0)).all()
        queries = ep.queries.view(64, d.n_queries, -1)
        value_at = (queries >= vocab.value0) & (queries < vocab.filler0)
        assert value_at.sum(-1).eq(1).all()  # one value per query: its answer, scored before it
        in_query = (scored - smoke.support_len - d.gap) % 5
        assert torch.equal(value_at.int().argmax(-1), in_query + 1)
        assert torch.equal(ep.support.gather(1, ep.fact_at), answers)  # fact_at: its value
        assert torch.equal(ep.distances(), scored - ep.fact_at)
        is_entity = (queries >= vocab.entity0) & (queries < vocab.value0)
        asked = queries[is_entity].view(64, -1)
        facts = ep.support.view(64, d.n_facts, -1)
        fact_entity = facts[(facts >= vocab.entity0) & (facts < vocab.value0)].view(64, -1)
        fact_value = facts[(facts >= vocab.value0) & (facts < vocab.filler0)].view(64, -1)
        for b in range(16):  # each query asks a fact of its episode, and its label is that value
            table = dict(zip(fact_entity[b].tolist(), fact_value[b].tolist(), strict=True))
            assert [table[e] for e in asked[b].tolist()] == answers[b].tolist()
        assert (labels[:, : smoke.support_len + d.gap] == IGNORE).all()


def test_training_reads_only_training_templates_and_evaluation_only_test_ones(smoke, monkeypatch):
    """Spies on every episode the base's pre-training, the updater's training and the evaluation
    draw (2 pre-training and 2 training steps; the smoke profile's batch sizes tell them apart)."""
    pretrain = importlib.import_module("suite.tasks.families.facts.pretrain")  # not the function

    train, test = layout_of(smoke, "train"), layout_of(smoke, "test")
    drawn: list[tuple[str, int, str]] = []

    def spy(where):
        def draw(*args, **kwargs):
            layout = kwargs.get("layout", args[7] if len(args) > 7 else None)
            split = "train" if torch.equal(layout.support, train.support) else "test"
            assert split == "train" or torch.equal(layout.queries, test.queries)
            drawn.append((where, args[1], split))
            return draw_episodes(*args, **kwargs)

        return draw

    monkeypatch.setattr(pretrain, "draw_episodes", spy("pretrain"))
    monkeypatch.setattr(protocol, "draw_episodes", spy("protocol"))
    monkeypatch.setattr(evaluation, "draw_episodes", spy("protocol"))
    spec = smoke.model_copy(
        update={
            "pretrain": smoke.pretrain.model_copy(update={"steps": 2}),
            "train": smoke.train.model_copy(update={"steps": 2}),
            "eval": smoke.eval.model_copy(update={"batches": 1}),
        }
    )
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    artifact = pretrain.pretrain(spec, seeds)
    with seeded_global_rng(seeds.init):
        gate = get_gate("lerp").build(reading.task_info(spec))
    protocol.run(spec, gate, RunContext(seeds=seeds, artifact=artifact))
    batches = {"pretrain": spec.pretrain.batch_size, "train": spec.train.batch_size}
    assert {w for w, _, _ in drawn} == {"pretrain", "protocol"}
    for where, batch, split in drawn:
        training = where == "pretrain" or batch == batches["train"]
        assert split == ("train" if training else "test"), (where, batch)
    assert {split for _, _, split in drawn} == {"train", "test"}


def test_malformed_templates_are_rejected():
    good = {
        "words": ["the", "is", "what"],
        "support": {"train": ["the <e> is <v>"], "test": ["<e> is the <v>"]},
        "queries": {"train": ["what is <e> <v>"], "test": ["<e> is what <v>"]},
    }
    Templates.model_validate(good)
    bad = [
        {"support": {"train": ["the <e> is <v>"], "test": ["the <e> is <v>"]}},  # not disjoint
        {"support": {"train": ["the <e> is <v>"], "test": ["<e> is <v>"]}},  # two lengths
        {"queries": {"train": ["what is <v> <e>"], "test": ["<e> is what <v>"]}},  # <v> first
        {"queries": {"train": ["what is <e> <e>"], "test": ["<e> is what <v>"]}},  # no <v>
        {"support": {"train": ["the <e> was <v>"], "test": ["<e> is the <v>"]}},  # unknown word
        {"words": ["the", "is", "what", "unused"]},
    ]
    for change in bad:
        with pytest.raises(ValidationError):
            Templates.model_validate({**good, **change})


def test_the_pretraining_window_counts_template_lengths(tasks):
    raw = tasks[TASK].for_profile("paper").model_dump(mode="json")
    raw["pretrain"]["max_gap"] = 13  # 2 facts and 2 queries of 5 tokens + 13 > 32
    with pytest.raises(ValidationError, match=r"more than data\.window"):
        type(tasks[TASK]).model_validate(raw)


def test_paper_profile_is_the_reference_setting(tasks):
    spec = tasks[TASK].for_profile("paper")
    d = spec.data
    assert (d.window, d.n_facts, d.gap, d.n_queries, spec.model.rank) == (32, 4, 64, 4, 8)
    assert spec.support_len + d.gap > d.window  # no query sees its fact
    (claim,) = spec.claims
    assert (claim.gate, claim.metric, claim.mean, claim.n) == ("lerp", "acc_persistent", 0.54, 1)
    rows = layout_of(spec, "test").support
    assert torch.equal((rows == ENTITY).sum(1), (rows == VALUE).sum(1))


def test_lerp_runs_on_the_templated_task(sweep):
    summary, records = sweep([TASK], ["lerp"], seeds=1, executor="inline")
    assert summary.failed == 0 and summary.ok == 1
    (record,) = records
    assert set(record.metrics) == {"acc_in_context", "acc_persistent", "acc_capacity_max"}
    assert all(0.0 <= v <= 1.0 for v in record.metrics.values())
    assert record.provenance.artifact and record.provenance.data_fingerprint
    assert "acc_by_distance" in record.arrays

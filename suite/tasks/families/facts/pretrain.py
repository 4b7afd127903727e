"""The frozen base: built and pre-trained once per (spec, seed) on the in-context task.

Pre-training episodes keep every fact inside the attention window (gaps of 0..``max_gap``), so
the base learns to retrieve what it can see; what it cannot see is the updater's job. The state
dict is the family's prepared artefact; the base's final in-context accuracy travels with it.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from suite.integrations.hf_models import find_pretrained, load_pretrained, tiny_moe
from suite.seeding import RunSeeds, derive_seed, generator, seeded_global_rng
from suite.tasks.families.facts.base import BaseModel, FrozenBase
from suite.tasks.families.facts.data import (
    IGNORE,
    draw_episodes,
    episode_seed,
    scored_labels,
    scored_positions,
)
from suite.tasks.families.facts.hf_base import HFBase
from suite.tasks.families.facts.hf_base import dims as hf_dims
from suite.tasks.families.facts.layouts import layout_of, vocab_of
from suite.tasks.families.facts.spec import FactsSpec
from suite.tasks.families.facts.vocab import Vocab

ACCURACY_KEY = "pretrain_accuracy"  # a tensor beside the weights in the artefact
WARMUP_SHARE = 0.05  # of the one-cycle schedule's steps


def warmup_share(steps: int) -> float:
    """The one-cycle warm-up's share of ``steps``. Torch's schedule divides by
    ``share × steps − 1``, so at exactly one warm-up step (20 steps) it warms up for two."""
    return WARMUP_SHARE if WARMUP_SHARE * steps != 1 else 2 / steps


def build_base(spec: FactsSpec) -> FrozenBase:
    """The spec's base, its parameters drawn from the global RNG (or read from disk where it is
    pretrained)."""
    m, d, size = spec.model, spec.data, vocab_of(spec).size
    if spec.base is not None:
        model = load_pretrained(spec.base.pretrained)
        return HFBase(model, d.window, size, m.clamp, spec.base.token_offset)
    if m.arch == "home":
        return BaseModel(size, m.d_model, m.n_layers, m.n_heads, m.d_ff, m.n_experts, d.window,
                         m.clamp)  # fmt: skip
    model = tiny_moe(
        m.arch, vocab=size, hidden=m.d_model, expert_hidden=m.d_ff, layers=m.n_layers,
        heads=m.n_heads, experts=m.n_experts, top_k=m.top_k, max_positions=spec.seq_len,
        sliding_window=d.window if m.arch == "mixtral" else None, rope_theta=m.rope_theta,
        init_std=m.init_std, embed_std=m.embed_std,
    )  # fmt: skip
    return HFBase(model, d.window, size, m.clamp)


@functools.lru_cache(maxsize=8)
def _pretrained_dims(name: str) -> tuple[int, int, int]:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(find_pretrained(name), local_files_only=True)
    with torch.device("meta"):  # the shapes only: no weights read, no memory
        return hf_dims(AutoModelForCausalLM.from_config(config))


def base_dims(spec: FactsSpec) -> tuple[int, list[list[int]], int]:
    """(width, the adapted matrices' shapes, experts) of the base's last MoE block: what an
    updater is built for."""
    m = spec.model
    if spec.base is not None:
        D, F, E = _pretrained_dims(spec.base.pretrained)
    else:
        D, F, E = m.d_model, m.d_ff, m.n_experts
    up = F if spec.base is None and m.arch == "home" else 2 * F  # SwiGLU: gate and up
    return D, [[D, up], [F, D]], E


def answer_accuracy(logits: torch.Tensor, labels: torch.Tensor, vocab: Vocab) -> torch.Tensor:
    """Per scored position: 1 where the best *value* word is the answer (chance 1/n_values)."""
    mask = labels != IGNORE
    values = logits[mask][:, vocab.value0 : vocab.value0 + vocab.n_values]
    return (values.argmax(-1) + vocab.value0 == labels[mask]).float()


def pretrain(spec: FactsSpec, seeds: RunSeeds) -> dict[str, torch.Tensor]:
    """The base's weights after pre-training and its final in-context accuracy (only the
    accuracy for a pretrained base, whose weights stay where they are)."""
    if spec.base is not None:
        return {ACCURACY_KEY: measured_accuracy(spec, build_base(spec), seeds)}
    vocab = vocab_of(spec)
    p, d = spec.pretrain, spec.data
    with seeded_global_rng(seeds.derive("base-init")):
        base = build_base(spec)
    opt = torch.optim.AdamW(
        base.parameters(), lr=p.lr, betas=(0.9, 0.98), weight_decay=0.0, foreach=True
    )  # foreach: the same numbers as the single-tensor step, less Python (training.adam)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=p.lr, total_steps=p.steps, pct_start=warmup_share(p.steps)
    )
    data_seed = seeds.derive("base-data")
    gaps = torch.randint(0, p.max_gap + 1, (p.steps,), generator=generator(data_seed))
    recent: list[torch.Tensor] = []
    n_facts, n_queries = spec.pretrain_facts
    layout = layout_of(spec, "train")  # the in-context task, on the training templates
    for step in range(p.steps):
        episodes = draw_episodes(
            vocab, p.batch_size, n_facts, int(gaps[step]), n_queries,
            episode_seed(data_seed, "pretrain", step), d.overwrites, layout,
        )  # fmt: skip
        tokens, labels = episodes.in_context()
        x, u = base.trunk(tokens)
        index = scored_positions(labels)[..., None].expand(-1, -1, x.shape[-1])
        logits = base.finish(x.gather(1, index), u.gather(1, index))  # the last MoE on K only
        labels = scored_labels(labels)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step >= p.steps - 20:
            recent.append(answer_accuracy(logits.detach(), labels, vocab).mean())
    state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    state[ACCURACY_KEY] = torch.stack(recent).mean()
    return state


def measured_accuracy(spec: FactsSpec, base: FrozenBase, seeds: RunSeeds, batches: int = 8):
    """In-context accuracy of a frozen base on pre-training episodes (facts inside the window)."""
    vocab, p, d = vocab_of(spec), spec.pretrain, spec.data
    n_facts, n_queries = spec.pretrain_facts
    data_seed = seeds.derive("base-data")
    hits = []
    with torch.no_grad():
        for i in range(batches):
            episodes = draw_episodes(
                vocab, p.batch_size, n_facts, p.max_gap, n_queries,
                episode_seed(data_seed, "pretrain-check", i), d.overwrites,
                layout_of(spec, "train"),
            )  # fmt: skip
            tokens, labels = episodes.in_context()
            hits.append(answer_accuracy(base(tokens), labels, vocab))
    return torch.cat(hits).mean()


def load_base(spec: FactsSpec, artifact: dict[str, torch.Tensor]) -> tuple[FrozenBase, float]:
    """The frozen base from its artefact, and its pre-training accuracy."""
    weights = {k: v for k, v in artifact.items() if k != ACCURACY_KEY}
    with seeded_global_rng(derive_seed("facts", "base-shell")):  # overwritten by the weights
        base = build_base(spec)
    if spec.base is None:
        base.load_state_dict(weights)
    base.requires_grad_(False)
    base.eval()
    return base, float(artifact[ACCURACY_KEY])

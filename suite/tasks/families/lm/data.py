"""Character streams with domain switches, drawn vectorised over batch and time.

Within a domain the letter index follows ``next = prev + 1`` (p_next), ``prev + 2`` (p_skip) or
a uniform draw (the rest), modulo the domain's alphabet; a new domain starts with a uniform
letter. The walk is a cumulative sum of increments restarted at every uniform draw, so a whole
batch is drawn with a handful of tensor operations and no loop over positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from suite.seeding import generator
from suite.tasks.families.lm.corpus import language_codes
from suite.tasks.families.lm.spec import CharData, RealLanguages, StreamData


@dataclass(frozen=True)
class CharBatch:
    chars: Tensor  # (B, L) int64
    domains: Tensor  # (B, L) int64: the domain of each character
    switches: Tensor  # (B, S) int64: index of the first character of each new domain

    @property
    def switch_at(self) -> Tensor:
        """(B,) the first switch."""
        return self.switches[:, 0]

    @property
    def inputs(self) -> Tensor:
        return self.chars[:, :-1]

    @property
    def targets(self) -> Tensor:
        return self.chars[:, 1:]

    @property
    def target_domains(self) -> Tensor:
        """Domain of each target character (B, L - 1): the correct expert's domain."""
        return self.domains[:, 1:]


def draw_batch(data: StreamData, batch: int, seed: int, split: str = "train") -> CharBatch:
    """``batch`` sequences of the stream; ``split`` picks the text part of real-text streams
    ("train" or "held-out"; synthetic streams are fresh draws either way)."""
    return STREAMS[data.kind](data, batch, seed, split)


def _switches(data: StreamData, batch: int, g: torch.Generator) -> Tensor:
    if data.random_switch is None:
        return torch.full((batch,), data.switch_at, dtype=torch.long)
    lo, hi = data.random_switch
    return torch.randint(lo, hi + 1, (batch,), generator=g)


def synthetic_batch(data: CharData, batch: int, seed: int, split: str) -> CharBatch:
    g = generator(seed)
    L, size = data.seq_len, data.vocab // data.n_domains
    more = torch.tensor(data.more_switches, dtype=torch.long)
    switches = torch.cat([_switches(data, batch, g)[:, None], more.expand(batch, -1)], 1)
    pos = torch.arange(L)
    n_seg = switches.shape[1] + 1
    if data.random_order:  # each new domain differs from the one before it
        first = torch.randint(0, data.n_domains, (batch, 1), generator=g)
        shifts = torch.randint(1, data.n_domains, (batch, n_seg - 1), generator=g)
        order = (torch.cat([first, shifts], 1).cumsum(1)) % data.n_domains
    else:  # the paper's layout: domain 0 (a-m), then domain 1 (n-z), then 2, ...
        order = (torch.arange(n_seg) % data.n_domains).expand(batch, -1)
    u = torch.rand(batch, L, generator=g)
    step = torch.where(u < data.p_next, 1, torch.where(u < data.p_next + data.p_skip, 2, 0))
    uniform = torch.randint(0, size, (batch, L), generator=g)
    since = pos[None, None, :] - switches[:, :, None]  # (B, S, L): steps since each switch
    crossed = since >= 0
    if data.drift:  # inside a drift window, the new domain with a growing probability
        mix = torch.rand(batch, 1, L, generator=g)
        crossed = (since >= data.drift) | (crossed & (mix < (since + 1) / (data.drift + 1)))
    domains = order.gather(1, crossed.sum(1))  # (B, L): the segment each character is in
    changed = torch.cat(
        [torch.zeros(batch, 1, dtype=torch.bool), domains[:, 1:] != domains[:, :-1]], 1
    )
    reset = (step == 0) | (pos[None, :] == 0) | changed  # a new domain starts its own walk
    step = torch.where(reset, 0, step)
    climb = step.cumsum(1)
    last = torch.where(reset, pos[None, :].expand(batch, L), torch.zeros_like(step)).cummax(1)
    start = last.values
    rel = (uniform.gather(1, start) + climb - climb.gather(1, start)) % size
    return CharBatch(domains * size + rel, domains, switches)


def real_text_batch(data: RealLanguages, batch: int, seed: int, split: str) -> CharBatch:
    """A window of the first language up to the switch, then a window of another language drawn
    per sequence; windows start anywhere in the chosen part of each text."""
    g = generator(seed)
    L = data.seq_len
    part = 0 if split == "train" else 1
    texts = [
        torch.from_numpy(language_codes(lang, data.train_share)[part]) for lang in data.languages
    ]
    switch = _switches(data, batch, g)
    second = 1 + torch.randint(0, len(texts) - 1, (batch,), generator=g)
    pos = torch.arange(L)[None, :]
    domains = torch.where(pos >= switch[:, None], second[:, None], 0)
    lengths = torch.tensor([t.numel() for t in texts])
    if int(lengths.min()) <= L:
        raise ValueError(f"a text of {data.languages} is shorter than one sequence ({L})")
    offsets = torch.cumsum(lengths, 0) - lengths
    start = (
        torch.rand(batch, 2, generator=g)
        * (lengths[torch.stack([torch.zeros_like(second), second], 1)] - L)
    ).long()
    start = start + offsets[torch.stack([torch.zeros_like(second), second], 1)]
    index = torch.where(pos >= switch[:, None], start[:, 1:2] + pos, start[:, 0:1] + pos)
    return CharBatch(torch.cat(texts)[index], domains, switch[:, None])


STREAMS = {"synthetic": synthetic_batch, "real-languages": real_text_batch}

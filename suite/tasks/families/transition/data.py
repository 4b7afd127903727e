"""Data of the transition family, generated deterministically and vectorised over the batch.

Every epoch draws a fresh batch from its own generator, seeded from (data seed, epoch), so any
epoch can be regenerated alone and every gate sees exactly the same batches.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from suite.seeding import derive_seed, generator
from suite.tasks.families.transition.spec import ExpertMixtureData, RoutingStreamData


def _domain_signals(d_model: int, n_domains: int, amplitude: float) -> Tensor:
    """(n_domains, D): domain d is ``amplitude`` on the d-th block of dimensions."""
    block = d_model // n_domains
    eye = torch.eye(n_domains).repeat_interleave(block, dim=1)  # (n_domains, D)
    return eye * amplitude


class RoutingBatch(NamedTuple):
    x: Tensor  # (B, T, D) float32
    domains: Tensor  # (B, T) int64, the domain of each position
    targets: Tensor  # (B, T) int64, the correct expert of each position
    switch_at: Tensor  # (B,) int64, first position of the second domain (T: no switch)


class RoutingStream:
    """Sequences of domain signals in Gaussian noise, with an optional switch of domain."""

    def __init__(self, data: RoutingStreamData, seed: int) -> None:
        self.data = data
        self.seed = seed
        self.signals = _domain_signals(data.d_model, data.n_domains, data.signal)
        self.experts = torch.tensor(data.domain_experts, dtype=torch.long)
        T = data.seq_len
        if data.readout == "final":
            self.scored = torch.tensor([T - 1])
        elif data.target == "next-domain":
            self.scored = torch.arange(T - 1)  # the last position has no next token
        else:
            self.scored = torch.arange(T)

    def batch(self, epoch: int, batch_size: int) -> RoutingBatch:
        d = self.data
        B, T, D = batch_size, d.seq_len, d.d_model
        g = generator(derive_seed(self.seed, epoch))
        start = torch.randint(0, d.n_domains, (B,), generator=g)
        other = (start + torch.randint(1, d.n_domains, (B,), generator=g)) % d.n_domains
        if d.switch_range is None:
            switch = torch.full((B,), T)
        else:
            low, high = d.switch_range
            switch = torch.randint(low, high + 1, (B,), generator=g)
        noise = torch.randn(B, T, D, generator=g) * d.noise_std
        pos = torch.arange(T)
        domains = torch.where(pos[None, :] < switch[:, None], start[:, None], other[:, None])
        signal = self.signals[domains]  # (B, T, D)
        if d.signal_until is not None:
            signal = signal * (pos < d.signal_until).to(signal.dtype)[None, :, None]
        x = noise + signal
        if d.target == "next-domain":
            following = torch.cat([domains[:, 1:], domains[:, -1:]], dim=1)
            targets = self.experts[following]
        else:
            targets = self.experts[domains]
        return RoutingBatch(x, domains, targets, switch)

    def transition_positions(self, batch: RoutingBatch) -> Tensor:
        """(B,) the scored position where routing must change: the step before the switch
        when routing on the next domain, the switch itself when routing on the current one."""
        return batch.switch_at - 1 if self.data.target == "next-domain" else batch.switch_at


class MixtureBatch(NamedTuple):
    x: Tensor  # (B, 1, D)
    domains: Tensor  # (B,)
    y: Tensor  # (B,) regression target
    noise: Tensor  # (B, E) output noise added to each expert's prediction


class MixtureStream:
    """Regression whose target depends on a hidden domain; experts have fixed output noise."""

    def __init__(self, data: ExpertMixtureData, seed: int) -> None:
        self.data = data
        self.seed = seed
        self.noise_table = torch.tensor(data.expert_noise, dtype=torch.float32)  # (E, n_domains)
        self.block = data.d_model // data.n_domains

    def noise_at(self, step: int) -> Tensor:
        """(E, n_domains) noise stds in force at ``step`` (after a shift two rows are swapped)."""
        table = self.noise_table
        shift = self.data.shift
        if shift is not None and step >= shift.at:
            a, b = shift.swap
            table = table.clone()
            table[[a, b]] = table[[b, a]]
        return table

    def batch(self, step: int, batch_size: int) -> MixtureBatch:
        d = self.data
        g = generator(derive_seed(self.seed, step))
        x = torch.randn(batch_size, d.d_model, generator=g)
        domains = torch.randint(0, d.n_domains, (batch_size,), generator=g)
        blocks = x.view(batch_size, d.n_domains, self.block).mean(dim=2)  # (B, n_domains)
        y = blocks.gather(1, domains[:, None]).squeeze(1)
        std = self.noise_at(step)[:, domains].T  # (B, E)
        noise = torch.randn(std.shape, generator=g) * std
        return MixtureBatch(x[:, None, :], domains, y, noise)

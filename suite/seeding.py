"""Stable seed derivation: every random draw in GateBench is traceable to (master seed, parts).

Python's ``hash()`` is salted per process, so seeds come from sha256 of the parts instead. Seed 0 is
an ordinary seed, never "unset".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_SEP = "\x1f"  # a separator that cannot appear in ids typed by a user


def derive_seed(*parts: str | int) -> int:
    """A 63-bit seed from ``parts`` (e.g. master seed, task id, seed index, purpose)."""
    text = _SEP.join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def generator(seed: int) -> torch.Generator:
    """A local CPU generator; data is always drawn on the CPU so devices see identical inputs."""
    return torch.Generator(device="cpu").manual_seed(seed)


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Run a block (module construction) with the global torch RNG seeded, then restore it.

    ``nn.Linear`` and friends initialise from the global RNG; forking it keeps that draw
    reproducible without leaking state into anything else in the process.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class RunSeeds:
    """The seeds of one (task, seed index) run, shared by every gate so comparisons are paired.

    With a ``salt`` (a leaderboard's secret, published in the records after its runs) the seeds
    cannot be derived from the public spec, so no gate can regenerate its evaluation stream in
    advance; without one they are the spec's public seeds, for development and ``run-all``.
    """

    def __init__(self, master_seed: int, task_id: str, seed_index: int, salt: str = "") -> None:
        self.seed_index = seed_index
        parts: tuple[str | int, ...] = (master_seed, task_id, seed_index)
        self.base = derive_seed(*parts, "salt", salt) if salt else derive_seed(*parts)
        self.data = derive_seed(self.base, "data")
        self.init = derive_seed(self.base, "init")

    def derive(self, purpose: str) -> int:
        """A further seed of this run for one purpose (e.g. "prepare" for a family's artefact)."""
        return derive_seed(self.base, purpose)

    def as_dict(self) -> dict[str, int]:
        return {"base": self.base, "data": self.data, "init": self.init}

"""Sizing generic baselines fairly: as wide as fits in the parameter count of the paper's full
gate (beta+pi+ant) on the same task, so a generic memory never wins by being bigger."""

from __future__ import annotations

from collections.abc import Callable

import torch

from suite.contract import TaskInfo


def reference_budget(info: TaskInfo) -> int:
    """Trainable parameters of beta+pi+ant (its registered settings) on this task."""
    from baselines.composed import ComposedRouter

    with torch.random.fork_rng(devices=[]):  # sizing must not move the gate's own init draws
        reference = ComposedRouter(info, beta=True, pi=True, ant=True)
    return sum(p.numel() for p in reference.parameters() if p.requires_grad)


def widest(count: Callable[[int], int], budget: int, cap: int = 4096) -> int:
    """The largest width >= 1 whose parameter count fits in ``budget``."""
    width = 1
    while width < cap and count(width + 1) <= budget:
        width += 1
    return width


def needs_sequences(info: TaskInfo) -> tuple[bool, str]:
    if info.seq_len < 2:
        return False, "a sequence model needs sequences of two or more tokens"
    return True, ""

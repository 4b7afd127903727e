"""Shared plumbing of the updater baselines: the factors' layout and the write generator."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from suite.contract import TaskInfo, adapted_shapes

PREPRINT = "Parameter Updater Experts (2026 preprint), zenodo record 19661389"
PREPRINT_URL = "https://zenodo.org/records/19661389"


def needs_adapted(info: TaskInfo) -> tuple[bool, str]:
    if info.get("adapted") is None or info.get("rank") is None:
        return False, "an updater needs info.adapted and info.rank (the facts family's extras)"
    return True, ""


class FactorLayout:
    """Where each factor lives in a flat (..., P) fast-weight vector."""

    def __init__(self, info: TaskInfo) -> None:
        self.shapes = [s for pair in adapted_shapes(info) for s in pair]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.total = sum(self.sizes)

    def split(self, flat: Tensor) -> tuple[Tensor, ...]:
        """(..., P) -> the factors, each (..., d_in, r) or (..., r, d_out)."""
        lead = flat.shape[:-1]
        parts = torch.split(flat, self.sizes, dim=-1)
        return tuple(p.reshape(*lead, *s) for p, s in zip(parts, self.shapes, strict=True))


class WriteGenerator(nn.Module):
    """v_t: the fast weights a position proposes, a linear map of its hidden state. B factors
    start at zero (as LoRA's do), so a fresh updater changes nothing."""

    def __init__(self, d_model: int, layout: FactorLayout) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, layout.total)
        with torch.no_grad():
            start = 0
            for i, size in enumerate(layout.sizes):
                if i % 2 == 1:  # a B factor
                    self.proj.weight[start : start + size].zero_()
                    self.proj.bias[start : start + size].zero_()
                start += size

    def forward(self, h: Tensor) -> Tensor:
        return self.proj(h)


def zero_state(batch: int, layout: FactorLayout, like: Any) -> Tensor:
    return torch.zeros(batch, layout.total, dtype=like.dtype, device=like.device)

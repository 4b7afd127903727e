"""Array results over seeds: per-seed arrays (curves, matrices) stacked element-wise into a mean
with a 95% t-interval, for the site to draw by the metric's declared kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from suite.results.stats import t_half_widths
from suite.runs.records import ArrayValue


@dataclass
class ArrayCell:
    """One gate's array metric on one task, over its seeds."""

    metric: str
    coords: dict[str, list[Any]]  # axis name -> coordinates (the first seed's)
    mean: np.ndarray  # element-wise mean; NaN where no seed has a finite value
    low: np.ndarray  # 95% t-interval, element-wise; NaN where fewer than two seeds
    high: np.ndarray
    n: np.ndarray  # seeds with a finite value, element-wise
    marks: dict[str, float] = field(default_factory=dict)
    sd: np.ndarray | None = None  # element-wise sample sd over seeds

    @property
    def n_seeds(self) -> int:
        return int(self.n.max()) if self.n.size else 0


def _as_float(values: list[Any]) -> np.ndarray:
    """Nested lists with None (a non-finite value in the record) -> float array with NaN."""
    return np.array(values, dtype=np.float64)  # None -> nan


def stack(metric: str, arrays: Iterable[ArrayValue]) -> ArrayCell | None:
    """Mean and CI over the seeds whose array matches the first one's coordinates and shape."""
    arrays = list(arrays)
    if not arrays:
        return None
    first = arrays[0]
    ref = _as_float(first.values)
    same = [_as_float(a.values) for a in arrays if a.coords == first.coords]
    same = [a for a in same if a.shape == ref.shape]
    stacked = np.stack(same)  # (seeds, ...)
    finite = np.isfinite(stacked)
    n = finite.sum(axis=0)
    total = np.where(finite, stacked, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        dev = np.where(finite, stacked - mean, 0.0)
        sd = np.sqrt((dev**2).sum(axis=0) / np.maximum(n - 1, 1))
    half = t_half_widths(sd, n)
    marks: dict[str, float] = {}
    for a in arrays:
        marks.update(a.marks)
    return ArrayCell(metric, dict(first.coords), mean, mean - half, mean + half, n, marks, sd)


def nan_to_none(values: Any) -> Any:
    """An array (or nested lists) as nested lists with None for NaN, for JSON and templates."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if isinstance(values, list):
        return [nan_to_none(v) for v in values]
    return None if values != values else values

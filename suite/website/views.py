"""Result views: how a task page draws each metric, looked up by the kind the metric declares
(``MetricInfo.kind``), never guessed from the data's shape.

* ``scalar``: dots and whiskers, one row per gate (mean and 95% t-interval over seeds);
* ``curve``: one plot per metric, one line per gate with its shaded 95% band, marks dashed;
* ``curves``: one small plot per gate, one line per index of the second axis;
* ``matrix``: one heatmap per gate, on a colour scale shared by the metric's heatmaps.

A new kind of metric needs a view here: ``@register_view("kind")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup

from suite.registry import Registry
from suite.results.aggregate import GateResult, TaskResult
from suite.results.arrays import ArrayCell, nan_to_none
from suite.tasks.spec import ARRAY_DIMS, MetricInfo
from suite.website.heatmaps import Grid, heatmap
from suite.website.plots import CIRow, Series, ci_plot, line_plot


@dataclass
class Figure:
    svg: Markup
    caption: str
    small: bool = False  # one of a set of small multiples (laid out side by side)


View = Callable[[TaskResult, Sequence[GateResult], str, MetricInfo], list[Figure]]
"""(task result, its gates in page order, metric name, metric info) -> figures."""

views: Registry[View] = Registry(
    "result view", hint="Each metric kind needs a view: @register_view in suite.website.views."
)


def register_view(kind: str) -> Callable[[View], View]:
    def add(view: View) -> View:
        views.add(kind, view, origin=f"{view.__module__}.{view.__qualname__}")
        return view

    return add


def draw(tres: TaskResult, gates: Sequence[GateResult], metric: str) -> list[Figure]:
    """The figures of one metric of a task, by the view registered for the metric's kind."""
    info = tres.task.metrics[metric]
    return views.get(info.kind)(tres, gates, metric, info)


def gate_label(gres: GateResult) -> str:
    return gres.gate.id + (" (ceiling)" if gres.status == "ceiling" else "")


def value_label(metric: str, info: MetricInfo) -> str:
    label = info.label or metric
    return f"{label} ({info.unit})" if info.unit else label


def _arrow(info: MetricInfo) -> str:
    return "higher is better" if info.higher_is_better else "lower is better"


def _cells(gates: Sequence[GateResult], metric: str, kind: str) -> list[tuple[GateResult, Any]]:
    """The gates' array cells of ``metric`` with the dimensions its kind declares."""
    dims = ARRAY_DIMS[kind]
    return [
        (g, g.arrays[metric])
        for g in gates
        if metric in g.arrays and g.arrays[metric].mean.ndim == dims and g.arrays[metric].mean.size
    ]


def coordinates(cell: ArrayCell, name: str, size: int) -> list[Any]:
    """The cell's coordinates along an axis (its indices where the record gave none)."""
    coords = list(cell.coords.get(name) or range(size))[:size]
    return coords + list(range(len(coords), size))


def axis(cell: ArrayCell, name: str, size: int) -> tuple[list[float], list[tuple[float, str]]]:
    """Positions along an axis and, for coordinates that are not numbers, their tick labels."""
    coords = coordinates(cell, name, size)
    numeric = all(
        isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in coords
    )
    if numeric:
        return [float(c) for c in coords], []
    return [float(i) for i in range(size)], [(float(i), str(c)) for i, c in enumerate(coords)]


def _series(label: str, xs: list[float], mean: Any, low: Any, high: Any) -> Series:
    return Series(label, xs, nan_to_none(mean), nan_to_none(low), nan_to_none(high))


def _marks(cells: Sequence[tuple[GateResult, ArrayCell]]) -> dict[str, float]:
    marks: dict[str, float] = {}
    for _, cell in cells:
        marks.update(cell.marks)
    return marks


def _marks_text(marks: dict[str, float]) -> str:
    return f"; dashed lines mark {', '.join(marks)}" if marks else ""


def _levels(info: MetricInfo) -> dict[str, float]:
    return {"chance": info.chance} if info.chance is not None else {}


def _levels_text(info: MetricInfo) -> str:
    return f"; the dotted line is chance ({info.chance:.3g})" if info.chance is not None else ""


@register_view("scalar")
def scalar_view(
    tres: TaskResult, gates: Sequence[GateResult], metric: str, info: MetricInfo
) -> list[Figure]:
    rows = []
    for gres in gates:
        cell = gres.cells.get(metric)
        if cell is None or cell.summary is None:
            continue
        s = cell.summary
        if gres.status == "ceiling":
            kind = "ceiling"
        elif gres.gate.id == tres.task.reference_gate:
            kind = "reference"
        else:
            kind = "gate"
        rows.append(CIRow(gate_label(gres), s.mean, s.ci_low, s.ci_high, kind))
    if not rows:
        return []
    svg = ci_plot(
        f"{metric} on {tres.task.id} ({_arrow(info)})",
        rows,
        value_label(metric, info),
        levels=_levels(info),
    )
    caption = f"{metric}: dots are means, whiskers 95% t-intervals over seeds"
    return [Figure(svg, f"{caption}{_levels_text(info)}.")]


@register_view("curve")
def curve_view(
    tres: TaskResult, gates: Sequence[GateResult], metric: str, info: MetricInfo
) -> list[Figure]:
    cells = _cells(gates, metric, "curve")
    if not cells:
        return []
    (name,) = info.axes
    series, ticks = [], []
    for gres, cell in cells:
        xs, ticks = axis(cell, name, cell.mean.shape[0])
        series.append(_series(gate_label(gres), xs, cell.mean, cell.low, cell.high))
    marks = _marks(cells)
    svg = line_plot(
        f"{metric} on {tres.task.id}: mean over seeds with 95% band ({_arrow(info)})",
        series,
        name,
        value_label(metric, info),
        marks,
        x_ticks=ticks or None,
        levels=_levels(info),
    )
    caption = (
        f"{metric} by {name}: one line per gate, the mean over seeds; the shaded band is the "
        f"95% t-interval (none with a single seed){_marks_text(marks)}{_levels_text(info)}."
    )
    return [Figure(svg, caption)]


@register_view("curves")
def curves_view(
    tres: TaskResult, gates: Sequence[GateResult], metric: str, info: MetricInfo
) -> list[Figure]:
    x_name, line_name = info.axes
    figures = []
    for gres, cell in _cells(gates, metric, "curves"):
        n_x, n_lines = cell.mean.shape
        xs, ticks = axis(cell, x_name, n_x)
        coords = coordinates(cell, line_name, n_lines)
        series = [
            _series(
                f"{line_name} {coords[j]}", xs, cell.mean[:, j], cell.low[:, j], cell.high[:, j]
            )
            for j in range(n_lines)
        ]
        svg = line_plot(
            f"{metric} of {gres.gate.id} on {tres.task.id}, mean over seeds with 95% bands",
            series,
            x_name,
            value_label(metric, info),
            cell.marks,
            width=460,
            height=260,
            x_ticks=ticks or None,
            levels=_levels(info),
        )
        caption = (
            f"{gate_label(gres)}: {metric} by {x_name}, one line per {line_name} "
            f"(mean over {cell.n_seeds} seed{'s' if cell.n_seeds != 1 else ''}, 95% band)"
            f"{_marks_text(cell.marks)}."
        )
        figures.append(Figure(svg, caption, small=True))
    return figures


@register_view("matrix")
def matrix_view(
    tres: TaskResult, gates: Sequence[GateResult], metric: str, info: MetricInfo
) -> list[Figure]:
    cells = _cells(gates, metric, "matrix")
    means = np.concatenate([cell.mean.ravel() for _, cell in cells]) if cells else np.array([])
    finite = means[np.isfinite(means)]
    scale = (float(finite.min()), float(finite.max())) if finite.size else None
    row_name, col_name = info.axes
    figures = []
    for gres, cell in cells:
        n_rows, n_cols = cell.mean.shape
        grid = Grid(
            nan_to_none(cell.mean),
            nan_to_none(cell.low),
            nan_to_none(cell.high),
            cell.n.astype(int).tolist(),
            coordinates(cell, row_name, n_rows),
            coordinates(cell, col_name, n_cols),
        )
        svg = heatmap(
            f"{metric} of {gres.gate.id} on {tres.task.id}, mean over seeds",
            grid,
            row_name,
            col_name,
            value_label(metric, info),
            scale,
        )
        caption = (
            f"{gate_label(gres)}: {metric} by {row_name} and {col_name}, mean over seeds "
            "(hover a cell for its 95% interval); one colour scale for every gate."
        )
        figures.append(Figure(svg, caption, small=True))
    return figures

"""Inline SVG plots, with titles for accessibility: dot-and-whisker CIs, lines with shaded 95%
bands, and heatmaps with a colour bar.

Every label passes through ``escape``: gate names and descriptions come from submitters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

from markupsafe import Markup, escape

PALETTE = [
    "#1b6ca8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e",
    "#a6761d", "#e6ab02", "#666666", "#17becf", "#8c564b", "#bcbd22",
]  # fmt: skip
DASHES = ["", "6 3", "2 2"]  # after the palette is used up, lines are told apart by dashes
_ids = count()


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100 or abs(v) < 1e-3:
        return f"{v:.3g}"
    return f"{v:.3f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    v = first
    while v <= high + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _range(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    pad = 0.05 * (high - low)
    return low - pad, high + pad


def _svg_open(kind: str, width: int, height: int, title: str, desc: str) -> list[str]:
    """The opening of an accessible inline SVG: role, title and description."""
    uid = next(_ids)
    return [
        f'<svg class="plot {kind}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-labelledby="t{uid} d{uid}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="t{uid}">{escape(title)}</title>',
        f'<desc id="d{uid}">{escape(desc)}</desc>',
    ]


@dataclass
class CIRow:
    label: str
    mean: float
    low: float | None
    high: float | None
    kind: str = "gate"  # gate | reference | ceiling


def ci_plot(title: str, rows: Sequence[CIRow], x_label: str, width: int = 680) -> Markup:
    """Horizontal dots (means) and whiskers (95% CIs), one row per gate."""
    left, right, top, row_h = 190, 20, 28, 22
    height = top + row_h * len(rows) + 40
    low, high = _range([v for r in rows for v in (r.mean, r.low, r.high) if v is not None])
    span = width - left - right

    def x(v: float) -> float:
        return left + (v - low) / (high - low) * span

    parts = _svg_open(
        "ci-plot", width, height, title,
        f"Mean (dot) and 95% confidence interval (whiskers) of {x_label} for each gate.",
    )  # fmt: skip
    for tick in nice_ticks(low, high):
        tx = x(tick)
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top - 6}" '
            f'y2="{height - 34}"/><text class="tick" x="{tx:.1f}" y="{height - 20}" '
            f'text-anchor="middle">{_fmt(tick)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{left + span / 2:.1f}" y="{height - 4}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    for i, row in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        label = row.label if len(row.label) <= 28 else row.label[:27] + "…"
        ci_text = (
            f" [{_fmt(row.low)}, {_fmt(row.high)}]"
            if row.low is not None and row.high is not None
            else ""
        )
        parts.append(
            f'<g class="row {row.kind}"><title>{escape(row.label)}: '
            f"{_fmt(row.mean)}{ci_text}</title>"
        )
        parts.append(
            f'<text class="row-label" x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        if row.low is not None and row.high is not None:
            x1, x2 = x(row.low), x(row.high)
            y1, y2 = cy - 5, cy + 5
            parts.append(
                f'<line class="whisker" x1="{x1:.1f}" x2="{x2:.1f}" y1="{cy:.1f}" y2="{cy:.1f}"/>'
                f'<line class="cap" x1="{x1:.1f}" x2="{x1:.1f}" y1="{y1:.1f}" y2="{y2:.1f}"/>'
                f'<line class="cap" x1="{x2:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}"/>'
            )
        parts.append(f'<circle class="dot" cx="{x(row.mean):.1f}" cy="{cy:.1f}" r="4.5"/></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass
class Series:
    """One line; ``low`` and ``high`` (optional, element-wise) draw a shaded band around it."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _runs(mask: Sequence[bool]) -> list[list[int]]:
    """Maximal runs of consecutive indices where ``mask`` holds (lines break at missing values)."""
    runs: list[list[int]] = []
    for i, ok in enumerate(mask):
        if not ok:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def line_plot(
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    marks: dict[str, float] | None = None,
    width: int = 680,
    height: int = 300,
    x_ticks: Sequence[tuple[float, str]] | None = None,
) -> Markup:
    """One line per series with its band, a legend, and dashed vertical marks (e.g. the
    transition step). ``x_ticks`` replaces the numeric ticks (categorical coordinates)."""
    longest = max((len(s.label) for s in series), default=0)
    legend_w = min(180, 34 + 7 * min(longest, 24))
    left, right, top, bottom = 56, legend_w + 10, 16, 44
    height = max(height, top + 14 * len(series) + bottom)  # room for every legend entry
    span_x, span_y = width - left - right, height - top - bottom
    xs = [v for s in series for v in s.xs]
    every_y = [v for s in series for part in (s.ys, s.low or [], s.high or []) for v in part]
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high <= x_low:
        x_high = x_low + 1
    y_low, y_high = _range(every_y)

    def px(v: float) -> float:
        return left + (v - x_low) / (x_high - x_low) * span_x

    def py(v: float) -> float:
        return top + (1 - (v - y_low) / (y_high - y_low)) * span_y

    bands = any(s.low is not None for s in series)
    parts = _svg_open(
        "line-plot", width, height, title,
        f"{y_label} against {x_label}, one line per series"
        + (", shaded bands are 95% confidence intervals." if bands else "."),
    )  # fmt: skip
    for tick in nice_ticks(y_low, y_high):
        ty = py(tick)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + span_x}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    ticks = x_ticks or [(t, _fmt(t)) for t in nice_ticks(x_low, x_high, target=8)]
    for tick, text in _thin(ticks, max(2, span_x // 48)):
        parts.append(
            f'<text class="tick" x="{px(tick):.1f}" y="{top + span_y + 16}" '
            f'text-anchor="middle">{escape(text)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{left + span_x / 2:.1f}" y="{height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="axis-label" transform="translate(14 {top + span_y / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for name, where in (marks or {}).items():
        mx = px(where)
        parts.append(
            f'<g class="mark"><title>{escape(name)} at {_fmt(where)}</title>'
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + span_y}"/>'
            f'<text x="{mx + 4:.1f}" y="{top + 12}">{escape(name)}</text></g>'
        )
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        dash = DASHES[(i // len(PALETTE)) % len(DASHES)]
        style = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<g class="series"><title>{escape(s.label)}</title>')
        ys = _nan(s.ys)
        if s.low is not None and s.high is not None:
            low, high = _nan(s.low), _nan(s.high)
            for run in _runs([_finite(a) and _finite(b) for a, b in zip(low, high)]):
                edge = [(s.xs[j], high[j]) for j in run] + [(s.xs[j], low[j]) for j in run[::-1]]
                points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in edge)
                parts.append(f'<polygon class="band" fill="{color}" points="{points}"/>')
        for run in _runs([_finite(v) for v in ys]):
            if len(run) == 1:  # an isolated value: a dot, since a line needs two
                j = run[0]
                parts.append(
                    f'<circle cx="{px(s.xs[j]):.1f}" cy="{py(ys[j]):.1f}" r="2.5" fill="{color}"/>'
                )
                continue
            points = " ".join(f"{px(s.xs[j]):.1f},{py(ys[j]):.1f}" for j in run)
            parts.append(f'<polyline fill="none" stroke="{color}"{style} points="{points}"/>')
        parts.append("</g>")
        ly = top + 14 * i + 6
        label = s.label if len(s.label) <= 24 else s.label[:23] + "…"
        parts.append(
            f'<g class="legend"><line x1="{width - legend_w}" x2="{width - legend_w + 18}" '
            f'y1="{ly:.1f}" y2="{ly:.1f}" stroke="{color}"{style}/>'
            f'<text x="{width - legend_w + 24}" y="{ly + 4:.1f}">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _thin(ticks: Sequence[tuple[float, str]], most: int) -> Sequence[tuple[float, str]]:
    """Every k-th tick, so that at most ``most`` labels are drawn."""
    step = max(1, math.ceil(len(ticks) / max(1, most)))
    return ticks[::step]


# -- heatmaps ----------------------------------------------------------------------------------

SEQUENTIAL = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]  # viridis, dark to light
MISSING = "#e4e7ea"


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


def colour(t: float) -> str:
    """The sequential scale at ``t`` in [0, 1] (clipped)."""
    t = min(1.0, max(0.0, t)) * (len(SEQUENTIAL) - 1)
    i = min(int(t), len(SEQUENTIAL) - 2)
    a, b = _rgb(SEQUENTIAL[i]), _rgb(SEQUENTIAL[i + 1])
    f = t - i
    r, g, bl = (round(x + (y - x) * f) for x, y in zip(a, b))
    return f"#{r:02x}{g:02x}{bl:02x}"


@dataclass
class Grid:
    """A matrix to draw: means with their 95% interval and seed count, element-wise."""

    mean: Sequence[Sequence[float | None]]
    low: Sequence[Sequence[float | None]]
    high: Sequence[Sequence[float | None]]
    n: Sequence[Sequence[int]]
    rows: Sequence[Any]  # coordinates along the first axis
    cols: Sequence[Any]  # coordinates along the second axis


def heatmap(
    title: str,
    grid: Grid,
    row_label: str,
    col_label: str,
    value_label: str,
    scale: tuple[float, float] | None = None,
    size: int = 360,
) -> Markup:
    """Cells coloured on a sequential scale with a colour bar; each cell's tooltip gives its value
    and interval. ``scale`` fixes the colour range (shared by the heatmaps of one metric)."""
    n_rows, n_cols = len(grid.rows), len(grid.cols)
    cell = max(3.0, min(40.0, size / max(n_rows, n_cols, 1)))
    plot_w, plot_h = cell * n_cols, cell * n_rows
    row_chars = max((len(str(r)) for r in grid.rows), default=1)
    left = 36 + 7 * min(row_chars, 12)
    top, bar_gap, bar_w = 12, 18, 12
    bar_h = max(plot_h, 120.0)
    width = int(left + plot_w + bar_gap + bar_w + 64)
    height = int(top + max(plot_h, bar_h) + 44)
    finite = [v for row in grid.mean for v in row if _finite(v)]
    low, high = scale or ((min(finite), max(finite)) if finite else (0.0, 1.0))
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5

    def shade(v: float) -> str:
        return colour((v - low) / (high - low))

    parts = _svg_open(
        "heatmap", width, height, title,
        f"{value_label} by {row_label} (rows) and {col_label} (columns); colour from dark (low) "
        "to light (high), see the colour bar. Each cell's title gives its mean and 95% interval.",
    )  # fmt: skip
    show_values = cell >= 36 and n_rows * n_cols <= 64
    parts.append(f'<g class="cells{" dense" if cell < 8 else ""}">')  # dense: no cell borders
    for i, r in enumerate(grid.rows):
        for j, c in enumerate(grid.cols):
            v, lo, hi, n = grid.mean[i][j], grid.low[i][j], grid.high[i][j], grid.n[i][j]
            where = f"{row_label} {r}, {col_label} {c}"
            if _finite(v):
                ci = f" [{_fmt(lo)}, {_fmt(hi)}]" if _finite(lo) and _finite(hi) else ""
                tip, fill = f"{where}: {_fmt(v)}{ci} (n={n})", shade(v)
            else:
                tip, fill = f"{where}: no value", MISSING
            x, y = left + j * cell, top + i * cell
            parts.append(
                f'<rect class="cell" x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" '
                f'height="{cell:.1f}" fill="{fill}"><title>{escape(tip)}</title></rect>'
            )
            if show_values and _finite(v):
                red, green, blue = _rgb(fill)
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 140  # perceived brightness
                parts.append(
                    f'<text class="cell-value" x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                    f'text-anchor="middle" fill="{"#fff" if dark else "#111"}">{_fmt(v)}</text>'
                )
    parts.append("</g>")
    row_ticks = [(i, str(r)) for i, r in enumerate(grid.rows)]
    for i, text in _thin(row_ticks, max(1, int(plot_h // 14))):
        label = text if len(text) <= 12 else text[:11] + "…"
        parts.append(
            f'<text class="tick" x="{left - 4}" y="{top + (i + 0.5) * cell + 4:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
    col_ticks = [(j, str(c)) for j, c in enumerate(grid.cols)]
    for j, text in _thin(col_ticks, max(1, int(plot_w // 36))):
        label = text if len(text) <= 6 else text[:5] + "…"
        parts.append(
            f'<text class="tick" x="{left + (j + 0.5) * cell:.1f}" y="{top + plot_h + 14:.1f}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32:.1f}" '
        f'text-anchor="middle">{escape(col_label)}</text>'
        f'<text class="axis-label" transform="translate(12 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(row_label)}</text>'
    )
    # the colour bar: a gradient over the scale, light at the top
    gid = f"g{next(_ids)}"
    bx = left + plot_w + bar_gap
    stops = "".join(
        f'<stop offset="{k / (len(SEQUENTIAL) - 1):.2f}" stop-color="{c}"/>'
        for k, c in enumerate(SEQUENTIAL)
    )
    parts.append(
        f'<g class="colour-bar"><title>{escape(value_label)}: {_fmt(low)} to {_fmt(high)}</title>'
        f'<defs><linearGradient id="{gid}" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient>'
        f'</defs><rect x="{bx:.1f}" y="{top}" width="{bar_w}" height="{bar_h:.1f}" '
        f'fill="url(#{gid})"/>'
    )
    for tick in nice_ticks(low, high, target=4):
        ty = top + (1 - (tick - low) / (high - low)) * bar_h
        parts.append(
            f'<line class="bar-tick" x1="{bx + bar_w:.1f}" x2="{bx + bar_w + 3:.1f}" '
            f'y1="{ty:.1f}" y2="{ty:.1f}"/><text class="tick" x="{bx + bar_w + 5:.1f}" '
            f'y="{ty + 4:.1f}">{_fmt(tick)}</text>'
        )
    parts.append("</g></svg>")
    return Markup("".join(parts))

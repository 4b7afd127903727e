"""Inline SVG heatmaps (matrix metrics) with a colour bar; the helpers are ``plots``'s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from suite.website.plots import _finite, _fmt, _ids, _svg_open, _thin, nice_ticks

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

"""Inline SVG plots, with titles for accessibility: dot-and-whisker CIs, lines with shaded 95%
bands, and heatmaps with a colour bar.

Every label passes through ``escape``: gate names and descriptions come from submitters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

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


def ci_plot(
    title: str,
    rows: Sequence[CIRow],
    x_label: str,
    width: int = 680,
    levels: dict[str, float] | None = None,
) -> Markup:
    """Horizontal dots (means) and whiskers (95% CIs), one row per gate; ``levels`` are dotted
    reference values (e.g. chance)."""
    left, right, top, row_h = 190, 20, 28, 22
    height = top + row_h * len(rows) + 40
    levels = levels or {}
    low, high = _range(
        [v for r in rows for v in (r.mean, r.low, r.high) if v is not None] + list(levels.values())
    )
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
    for name, value in levels.items():
        lx = x(value)
        parts.append(
            f'<g class="level"><title>{escape(name)}: {_fmt(value)}</title>'
            f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{top - 6}" y2="{height - 34}"/>'
            f'<text x="{lx + 4:.1f}" y="{top - 10}">{escape(name)}</text></g>'
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
    levels: dict[str, float] | None = None,
) -> Markup:
    """One line per series with its band, a legend, dashed vertical marks (e.g. the
    transition step) and dotted horizontal levels (e.g. chance). ``x_ticks`` replaces the
    numeric ticks (categorical coordinates)."""
    levels = levels or {}
    longest = max((len(s.label) for s in series), default=0)
    legend_w = min(180, 34 + 7 * min(longest, 24))
    left, right, top, bottom = 56, legend_w + 10, 16, 44
    height = max(height, top + 14 * len(series) + bottom)  # room for every legend entry
    span_x, span_y = width - left - right, height - top - bottom
    xs = [v for s in series for v in s.xs]
    every_y = [v for s in series for part in (s.ys, s.low or [], s.high or []) for v in part]
    every_y += list(levels.values())
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
    for name, value in levels.items():
        ly = py(value)
        parts.append(
            f'<g class="level"><title>{escape(name)}: {_fmt(value)}</title>'
            f'<line x1="{left}" x2="{left + span_x}" y1="{ly:.1f}" y2="{ly:.1f}"/>'
            f'<text x="{left + 4}" y="{ly - 4:.1f}">{escape(name)}</text></g>'
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

"""Readable tables of an aggregate: per task, gates by rank with CIs, deltas, ablation, claims."""

from __future__ import annotations

from collections import Counter

from suite.results.aggregate import Aggregate, Cell, TaskResult
from suite.results.stats import Ratio, Summary


def fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    """Three decimals; whole numbers from 100; three significant digits from a million (a
    K(99%) of a gate that never weights the right expert runs to 1e12)."""
    if value is None:
        return "—"
    sign = "+" if signed else ""
    if abs(value) >= 1e6:
        return f"{value:{sign}.3g}"
    if abs(value) >= 100 and not signed:
        return f"{value:.0f}"
    return f"{value:{sign}.{digits}f}"


def fmt_ci(s: Summary | None, signed: bool = False) -> str:
    if s is None:
        return "—"
    mean = fmt(s.mean, signed=signed)
    if s.ci_low is None or s.ci_high is None:
        return f"{mean} (n={s.n})"
    return f"{mean} [{fmt(s.ci_low)}, {fmt(s.ci_high)}]"


def fmt_pm(cell: Cell | None) -> str:
    if cell is None or cell.summary is None:
        return "—"
    s = cell.summary
    if s.ci_high is None:
        return fmt(s.mean)
    return f"{fmt(s.mean)}±{fmt(s.ci_high - s.mean)}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]]


def task_table(tres: TaskResult) -> list[str]:
    task = tres.task
    primary = task.primary_metric
    arrow = lambda m: "↑" if task.metrics[m].higher_is_better else "↓"  # noqa: E731
    others = [m for m in task.scalar_metrics() if m != primary]
    n_seeds = max((g.n_ok for g in tres.gates.values()), default=0)
    out = [
        f"{task.id} (v{task.version}, spec {task.spec_hash}) — {task.title}",
        f"profile {tres.profile}, {tres.seed_label}, up to {n_seeds} seeds; mean [95% t-CI]; "
        f"Δ is paired against {task.reference_gate or 'no reference'}; "
        "rank is shared where CIs overlap",
    ]
    header = ["gate", "rank", f"{primary} {arrow(primary)}", f"Δ vs {task.reference_gate}"]
    header += [f"{m} {arrow(m)}" for m in others]
    rows = []
    for gres in tres.ordered_gates():
        cell = gres.cells.get(primary)
        name = gres.gate.id
        if gres.status == "ceiling":
            name += " (ceiling)" if gres.gate.causal else " (ceiling, non-causal)"
        elif gres.status == "partial":
            name += f" ({gres.n_ok}/{len(gres.records)} seeds ok)"
        elif gres.status == "public-seeds":
            name += " (public seeds: not ranked)"
        elif gres.status == "above-limit":
            name += " (ABOVE THE BAYES-OPTIMAL LIMIT: not ranked)"
        if gres.status in ("failed", "rejected"):
            reason = gres.reasons[0] if gres.reasons else ""
            rows.append([name, gres.status.upper(), reason[:90], "", *["" for _ in others]])
            continue
        rank = str(cell.rank) if cell and cell.rank is not None else "—"
        rows.append(
            [
                name,
                rank,
                fmt_ci(cell.summary if cell else None),
                fmt_ci(cell.delta if cell else None, signed=True),
                *[fmt_pm(gres.cells.get(m)) for m in others],
            ]
        )
    out += _table(header, rows)
    if tres.ablation is not None:
        ab = tres.ablation
        effects = ", ".join(f"{f} {fmt_ci(s, signed=True)}" for f, s in ab.main_effects.items())
        out.append(
            f"2^{len(ab.factors)} ablation on {ab.metric}: main effects (gain alone) {effects}"
        )
        for inter in ab.interactions:
            a, b = inter.factors
            out.append(
                f"  interaction {a}×{b} = gain({a}+{b}) - gain({a}) - gain({b}): "
                f"{fmt_ci(inter.summary, signed=True)}"
            )
    out += claim_lines(tres)
    if tres.robustness:
        out.append(
            f"robustness against {tres.task.variant_of} (gain over {task.reference_gate} on "
            f"{primary}, base → variant, share of the gain kept; score here ÷ score there):"
        )
        for r in tres.robustness:
            kept = f"{r.retained:.0%}" if r.retained is not None else "—"
            base = f"{r.base_gain.mean:+.3f}" if r.base_gain else "—"
            var = f"{r.variant_gain.mean:+.3f}" if r.variant_gain else "—"
            out.append(f"  {r.gate:<20} {base} → {var}   {kept:>5}   {fmt_ratio(r.score_ratio)}")
    if tres.stale_records:
        out.append(f"({tres.stale_records} records of other spec versions were left out)")
    return out


def claim_lines(tres: TaskResult) -> list[str]:
    """Every claim of the task with the paper's number as printed, ours, the margin and its
    basis, the smallest detectable difference, and the verdict before and after Holm."""
    if not tres.claims:
        return []
    if all(v.verdict == "not-comparable" for v in tres.claims) and tres.claims[0].ours is None:
        return [f"claims: {len(tres.claims)} not judged ({tres.claims[0].detail})"]
    counts = Counter(v.label for v in tres.claims)
    holm_kept = Counter(v.holm for v in tres.claims if v.holm and v.holm != v.verdict)
    summary = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    if holm_kept:
        summary += f"; after Holm's correction {sum(holm_kept.values())} become inconclusive"
    out = [f"claims: {summary} (one-sided tests at 5%, 90% interval of ours − claimed)"]
    if tres.task.relation != "same":
        what = f": {tres.task.relation_note}" if tres.task.relation_note else ""
        out.append(f"  our setting is a {tres.task.relation} of the paper's{what}")
    if tres.task.paper_setting:
        out.append(f"  the paper's setting: {tres.task.paper_setting}")
    rows = []
    for v in tres.claims:
        c = v.claim
        paper = c.shown + (f" ± {c.sd:g}" if c.sd is not None else "") + (f" (n={c.n})" if c.n else "")
        margin = f"±{fmt(v.tolerance)}" if v.tolerance is not None else "—"
        verdict = v.label if not v.holm or v.holm == v.verdict else f"{v.label} → {v.holm}"
        rows.append(
            [v.subject, c.metric, paper, fmt_ci(v.ours), margin,
             fmt(v.detectable), verdict, (v.tolerance_basis or v.detail)[:70]]
        )  # fmt: skip
    header = ["claim", "metric", "paper", "ours [95% CI]", "margin", "detectable", "verdict", "basis"]
    out += ["  " + line for line in _table(header, rows)]
    return out


def fmt_ratio(ratio: Ratio | None) -> str:
    if ratio is None:
        return "—"
    if ratio.low is None:
        return f"{ratio.value:.2f}"
    return f"{ratio.value:.2f} [{ratio.low:.2f}, {ratio.high:.2f}]"


def render_text(agg: Aggregate) -> str:
    if not agg.tasks:
        return "No results yet: run `gatebench run` (or `nox -s run-all`) first."
    blocks = ["\n".join(task_table(t)) for t in agg.tasks]
    if agg.unreadable:
        blocks.append(f"{agg.unreadable} record files could not be read and were skipped.")
    return "\n\n".join(blocks)

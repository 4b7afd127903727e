"""The generated summary: what the README shows of the results, rendered from committed data.

``python -m suite.results.summary --results results`` reads the run records, judges the findings
and the claims, and writes a compact summary (``docs/data/summary.json``: per finding its
verdict and interval, per task the claims' verdicts and its best ranked gate, with the profile,
seeds and commit the records came from). The README's block between the markers is rendered from
that file alone, so a test can check that the block is fresh against the committed data: a number
in it is never typed by hand. ``--check`` fails when the block is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "data" / "summary.json"
README = ROOT / "README.md"
BEGIN = "<!-- generated: results summary (python -m suite.results.summary); do not edit -->"
END = "<!-- end of generated summary -->"


def build_summary(
    results: Path,
    profile: str | None = None,
    claims_results: Path | None = None,
    claims_profile: str = "paper",
) -> dict[str, Any]:
    """The compact summary of a results folder (findings, best gates, provenance), with the
    claims' verdicts from ``claims_results`` at ``claims_profile`` where given (claims are
    judged only at the paper's settings, which ``run-all``'s default profile is not)."""
    from suite.results.findings import judge_findings
    from suite.results.loading import load_results

    agg, records = load_results(results, profile)
    verdicts = {t.task.id: t.claims for t in agg.tasks}
    claims_source = {"results": str(results), "profile": profile or "newest"}
    if claims_results is not None:
        paper, paper_records = load_results(claims_results, claims_profile)
        verdicts = {t.task.id: t.claims for t in paper.tasks}
        claims_source = {"profile": claims_profile, "records": len(paper_records)}
    commits = Counter(r.provenance.git_commit[:10] for r in records)
    findings = []
    for v in judge_findings(agg):
        evidence = []
        for e in v.evidence:
            s = e.delta or e.ratio
            if s is None:
                continue
            mean = e.delta.mean if e.delta else e.ratio.value
            low = e.delta.ci_low if e.delta else e.ratio.low
            high = e.delta.ci_high if e.delta else e.ratio.high
            evidence.append(
                {
                    "task": e.task,
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "ratio": e.ratio is not None,
                }
            )
        findings.append(
            {
                "id": v.finding.id,
                "family": v.family,
                "statement": " ".join(v.finding.statement.split()),
                "kind": v.finding.kind,
                "verdict": v.verdict,
                "evidence": evidence,
            }
        )
    tasks = []
    for tres in agg.tasks:
        best = next((g for g in tres.ordered_gates() if g.ranked), None)
        cell = best.cells.get(tres.task.primary_metric) if best else None
        s = cell.summary if cell else None
        tasks.append(
            {
                "task": tres.task.id,
                "profile": tres.profile,
                "seeds": tres.seed_label,
                "metric": tres.task.primary_metric,
                "best": best.gate.id if best else None,
                "mean": s.mean if s else None,
                "low": s.ci_low if s else None,
                "high": s.ci_high if s else None,
            }
        )
    claims = {
        task: dict(sorted(Counter(v.label for v in found).items()))
        for task, found in sorted(verdicts.items())
        if found
    }
    return {
        "records": len(records),
        "profiles": sorted({t["profile"] for t in tasks}),
        "commits": [c for c, _ in commits.most_common()],
        "findings": findings,
        "tasks": tasks,
        "claims": claims,
        "claims_source": claims_source,
    }


def _num(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def render_block(summary: dict[str, Any]) -> str:
    """The README's generated block, from the summary alone (deterministic)."""
    lines = [BEGIN, ""]
    profiles = ", ".join(summary["profiles"]) or "—"
    commits = ", ".join(summary["commits"][:2]) or "—"
    lines.append(
        f"GateBench's own findings, judged from {summary['records']} run records (profiles "
        f"{profiles}; commit {commits}). Each interval is the 95% interval of the comparison the "
        "finding states; a failing finding is a result too."
    )
    lines += ["", "| finding | verdict | evidence (task: estimate [95% CI]) |", "|---|---|---|"]
    for f in summary["findings"]:
        shown = "; ".join(
            f"`{e['task']}`: {_num(e['mean'], not e.get('ratio'))} "
            f"[{_num(e['low'], not e.get('ratio'))}, {_num(e['high'], not e.get('ratio'))}]"
            + (" of its score kept" if e.get("ratio") else "")
            for e in f["evidence"][:3]
        )
        more = f"; and {len(f['evidence']) - 3} more" if len(f["evidence"]) > 3 else ""
        lines.append(f"| {f['statement']} | **{f['verdict']}** | {shown or '—'}{more} |")
    claims: Counter[str] = Counter()
    for counts in summary.get("claims", {}).values():
        claims.update(counts)
    if claims:
        counted = ", ".join(f"{n} {label}" for label, n in sorted(claims.items()))
        source = summary.get("claims_source", {})
        where = f"{source.get('records', '?')} records at the {source.get('profile')} profile"
        lines += [
            "",
            f"The papers' claims, judged on {where} of the tasks that carry them: {counted} "
            "(a verdict names its setting: the paper's own, a reduced scale, or a transfer).",
        ]
    lines += ["", END]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"the README has no generated block ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def stale(readme: Path = README, data: Path = DATA) -> bool:
    """Whether the README's block differs from what the committed data renders."""
    summary = json.loads(data.read_text())
    text = readme.read_text()
    return replace_block(text, render_block(summary)) != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.results.summary", description=__doc__)
    parser.add_argument("--results", type=Path, help="build the data from these records first")
    parser.add_argument("--profile", help="the profile whose records are summarised")
    parser.add_argument("--claims-results", type=Path, help="judge the claims on these records")
    parser.add_argument("--claims-profile", default="paper", help="their profile (paper)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    args = parser.parse_args(argv)
    if args.check:
        if stale():
            print(f"{README} is stale against {DATA}: run python -m suite.results.summary")
            return 1
        return 0
    if args.results is not None:
        DATA.parent.mkdir(parents=True, exist_ok=True)
        summary = build_summary(
            args.results, args.profile, args.claims_results, args.claims_profile
        )
        DATA.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        print(f"wrote {DATA}")
    summary = json.loads(DATA.read_text())
    README.write_text(replace_block(README.read_text(), render_block(summary)))
    print(f"rendered the summary into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

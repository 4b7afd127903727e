"""The generated summary: what the README shows of the results, rendered from committed data.

``python -m suite.results.summary --results results`` reads the run records, judges the findings
and the claims, and writes a compact summary (``docs/data/summary.json``: per finding its
verdict and interval, per task the claims' verdicts and its best ranked gate, with the profile,
seeds and commit the records came from, and the compact aggregate of ``suite.results.digest``:
every task's leaderboard and every claim). The README's block, the reproduction notes' block
(``docs/reproduction.md``: every finding, every task's best gate) and the results page
(``docs/results.md``: every leaderboard and claim) are rendered from that file alone, so a test
can check that they are fresh against the committed data: a number in them is never typed by
hand. ``--check`` fails when a block is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from suite.results.digest import (
    best_gates,
    claim_counts,
    claim_rows,
    interval,
    leaderboard_rows,
    number,
    profiles,
    render_results,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "data" / "summary.json"
README = ROOT / "README.md"
BEGIN = "<!-- generated: results summary (python -m suite.results.summary); do not edit -->"
END = "<!-- end of generated summary -->"
NOTES = ROOT / "docs" / "reproduction.md"
NOTES_BEGIN = "<!-- generated: every finding and best gate (python -m suite.results.summary) -->"
NOTES_END = "<!-- end of generated findings -->"
RESULTS = ROOT / "docs" / "results.md"
RESULTS_BEGIN = "<!-- generated: leaderboards and claims (python -m suite.results.summary) -->"
RESULTS_END = "<!-- end of generated results -->"


def shown_records(agg: Any) -> list[Any]:
    """The records an aggregate shows (its tasks' current specs, the newest run per seed): a
    results folder also keeps those of earlier versions and of other profiles."""
    return [r for t in agg.tasks for g in t.gates.values() for r in g.records.values()]


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
    from suite.results.scale import scale_trends

    agg, every = load_results(results, profile)
    trends = [t.as_dict() for t in scale_trends(every) if t.direction != "no data"]
    records = shown_records(agg)
    judged = agg
    claims_source = {"results": str(results), "profile": profile or "newest"}
    if claims_results is not None:
        judged, _ = load_results(claims_results, claims_profile)
        claims_source = {"profile": claims_profile, "records": len(shown_records(judged))}
    commits = Counter(r.provenance.git_commit[:10] for r in records)
    commands = Counter(r.provenance.command for r in records if r.provenance.command)
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
    return {
        "records": len(records),
        "commits": [c for c, _ in commits.most_common()],
        "commands": [c for c, _ in commands.most_common(3)],
        "findings": findings,
        "claims_source": claims_source,
        "claim_verdicts": claim_rows(judged),
        "leaderboard": leaderboard_rows(agg),
        "trends": trends,
    }


def render_block(summary: dict[str, Any]) -> str:
    """The README's generated block, from the summary alone (deterministic)."""
    lines = [BEGIN, ""]
    shown = ", ".join(profiles(summary)) or "—"
    commits = ", ".join(summary["commits"][:2]) or "—"
    lines.append(
        f"GateBench's own findings, judged from {summary['records']} run records (profiles "
        f"{shown}; commit {commits}). Each interval is the 95% interval of the comparison the "
        "finding states; a failing finding is a result too."
    )
    lines += ["", "| finding | verdict | evidence (task: estimate [95% CI]) |", "|---|---|---|"]
    for f in summary["findings"]:
        shown = "; ".join(
            f"`{e['task']}`: {interval(e['mean'], e['low'], e['high'], not e.get('ratio'))}"
            + (" of its score kept" if e.get("ratio") else "")
            for e in f["evidence"][:3]
        )
        more = f"; and {len(f['evidence']) - 3} more" if len(f["evidence"]) > 3 else ""
        lines.append(f"| {f['statement']} | **{f['verdict']}** | {shown or '—'}{more} |")
    claims = Counter(c["label"] for c in summary.get("claim_verdicts", []))
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


def render_notes(summary: dict[str, Any]) -> str:
    """The reproduction notes' generated part: every finding with all its evidence, each task's
    best ranked gate and its claims' verdicts, and where the numbers came from."""
    commands = "; ".join(f"`{c}`" for c in summary.get("commands", [])) or "—"
    lines = [
        NOTES_BEGIN, "",
        f"From {summary['records']} run records (profiles {', '.join(profiles(summary))}; "
        f"commit {', '.join(summary['commits'][:2]) or '—'}; made by {commands}).", "",
        "### Every finding", "",
        "| finding | family | verdict | evidence (task: estimate [95% CI]) |", "|---|---|---|---|",
    ]  # fmt: skip
    for f in summary["findings"]:
        shown = "<br>".join(
            f"`{e['task']}`: {interval(e['mean'], e['low'], e['high'], not e.get('ratio'))}"
            + (" of its score kept" if e.get("ratio") else "")
            for e in f["evidence"]
        )
        lines.append(
            f"| {f['statement']} (`{f['id']}`) | {f['family']} | **{f['verdict']}** | "
            f"{shown or '—'} |"
        )
    lines += ["", "### Best ranked gate per task", "",
              "| task | metric | best gate | mean [95% CI] | seeds |", "|---|---|---|---|---|"]  # fmt: skip
    for t in best_gates(summary):
        value = interval(*t["value"], signed=False) if t["value"] else "—"
        lines.append(
            f"| `{t['task']}` | {t['metric']} | `{t['best'] or '—'}` | {value} | {t['seeds']} |"
        )
    if counts := claim_counts(summary):
        source = summary.get("claims_source", {})
        lines += ["", f"### Claims' verdicts ({source.get('profile')} profile)", "",
                  "| task | verdicts |", "|---|---|"]  # fmt: skip
        for task, found in counts.items():
            lines.append(f"| `{task}` | {', '.join(f'{n} {k}' for k, n in found.items())} |")
    if summary.get("trends"):
        lines += ["", "### Scale trends (`gatebench run --profile scale`)", "",
                  "| task | gate | metric | paper | per size: mean [95% CI] | slope per doubling "
                  "[95% CI] | trend |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for t in summary["trends"]:
            sizes = "<br>".join(
                f"{p['size']:g}: {interval(p['mean'], p['low'], p['high'], False)}"
                for p in t["points"]
                if p["mean"] is not None
            )
            slope = interval(t["slope"], t["slope_low"], t["slope_high"], True)
            lines.append(
                f"| `{t['task']}` | `{t['gate']}` | {t['metric']} | {t['printed']} | {sizes} | "
                f"{slope} | {t['direction']} |"
            )
    lines += ["", NOTES_END]
    return "\n".join(lines)


def render_results_page(summary: dict[str, Any]) -> str:
    """The results page's generated part: every task's leaderboard and every claim."""
    head = (
        f"From {summary['records']} run records (profiles {', '.join(profiles(summary))}; "
        f"commit {', '.join(summary['commits'][:2]) or '—'})."
    )
    return "\n".join([RESULTS_BEGIN, "", head, "", *render_results(summary), RESULTS_END])


GENERATED = {  # what -> (file, begin marker, end marker, renderer)
    "README": (README, BEGIN, END, render_block),
    "notes": (NOTES, NOTES_BEGIN, NOTES_END, render_notes),
    "results": (RESULTS, RESULTS_BEGIN, RESULTS_END, render_results_page),
}


NUMBERS = re.compile(r"\[\s+((?:-?[\d.eE+-]+|null)(?:,\s+(?:-?[\d.eE+-]+|null))*)\s+\]")


def dump(summary: dict[str, Any]) -> str:
    """The summary as committed: indented, with each list of numbers on one line (a leaderboard
    cell's mean and interval), so that a change reads as a changed line."""
    text = json.dumps(summary, indent=1, sort_keys=True)
    return NUMBERS.sub(lambda m: "[" + re.sub(r",\s+", ", ", m[1]) + "]", text) + "\n"


def replace_block(text: str, block: str, begin: str = BEGIN, end: str = END) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"no generated block ({begin!r} ... {end!r}) to replace")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + block + tail


def stale(data: Path = DATA) -> list[str]:
    """The generated files whose blocks differ from what ``data`` renders."""
    summary = json.loads(data.read_text())
    found = []
    for path, begin, end, render in GENERATED.values():
        text = path.read_text()
        if replace_block(text, render(summary), begin, end) != text:
            found.append(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.results.summary", description=__doc__)
    parser.add_argument("--results", type=Path, help="build the data from these records first")
    parser.add_argument("--profile", help="the profile whose records are summarised")
    parser.add_argument("--claims-results", type=Path, help="judge the claims on these records")
    parser.add_argument("--claims-profile", default="paper", help="their profile (paper)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated block is stale")
    args = parser.parse_args(argv)
    if args.check:
        if found := stale():
            print(f"{', '.join(found)} stale against {DATA}: run python -m suite.results.summary")
            return 1
        return 0
    if args.results is not None:
        DATA.parent.mkdir(parents=True, exist_ok=True)
        summary = build_summary(
            args.results, args.profile, args.claims_results, args.claims_profile
        )
        DATA.write_text(dump(summary))
        print(f"wrote {DATA}")
    summary = json.loads(DATA.read_text())
    for path, begin, end, render in GENERATED.values():
        path.write_text(replace_block(path.read_text(), render(summary), begin, end))
        print(f"rendered the summary into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GateBench's own findings, stated as data and judged by the same machinery as the papers' claims.

A family may keep a ``findings.yaml`` beside its ``specs/``: each entry is a statement and the
comparison that decides it, computed from the records every time results are aggregated, so a
finding's verdict changes by itself when a result does. Two kinds of comparison:

* ``matches-or-beats``: on every task of the family where both ran, ``gate`` minus ``versus`` on
  the primary metric, paired over seeds. *holds* when every task's 95% interval lies above
  ``-margin``; *fails* when some task's interval lies wholly below it; else *inconclusive*.
* ``keeps-at-most``: ``gate``'s primary-metric score on the held-out ``variant`` divided by its
  score on the variant's base task, paired over seeds. *holds* when the interval lies wholly at
  or below ``at_most``; *fails* when it lies wholly above; else *inconclusive*.

A finding whose gates have no results is *missing*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from suite.errors import SpecError
from suite.results.aggregate import Aggregate
from suite.results.stats import Ratio, Summary, paired_delta
from suite.tasks.family import families
from suite.tasks.loading import describe_validation_error
from suite.tasks.spec import StrictModel
from suite.tasks.yamlio import load_yaml

FINDINGS_FILE = "findings.yaml"


class Finding(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    statement: str = Field(min_length=1, description="The finding in one sentence.")
    kind: Literal["matches-or-beats", "keeps-at-most"]
    gate: str
    versus: str | None = Field(None, description="matches-or-beats: the gate compared with.")
    variant: str | None = Field(None, description="keeps-at-most: the held-out variant task.")
    at_most: float | None = Field(None, description="keeps-at-most: the largest share kept.")
    margin: float = Field(0.01, ge=0, description="matches-or-beats: how much worse still matches.")

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Finding:
        needed = {"matches-or-beats": ("versus",), "keeps-at-most": ("variant", "at_most")}
        missing = [f for f in needed[self.kind] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a '{self.kind}' finding needs {', '.join(missing)}")
        return self


@dataclass
class Evidence:
    task: str
    delta: Summary | None = None  # matches-or-beats: gate - versus
    ratio: Ratio | None = None  # keeps-at-most: variant score / base score


@dataclass
class FindingVerdict:
    finding: Finding
    family: str
    metric: str
    verdict: str  # holds | fails | inconclusive | missing
    evidence: list[Evidence] = field(default_factory=list)
    detail: str = ""

    @property
    def tasks(self) -> list[str]:
        return [e.task for e in self.evidence]


def load_findings(path: Path) -> list[Finding]:
    """A family's findings file; errors name the file, the entry and the field."""
    raw = load_yaml(path) or []
    if not isinstance(raw, list):
        raise SpecError(f"{path}: a findings file is a YAML list of findings.")
    found = []
    for index, item in enumerate(raw):
        try:
            found.append(Finding.model_validate(item))
        except ValidationError as exc:
            lines = [describe_validation_error(Finding, e) for e in exc.errors()]
            raise SpecError(f"{path}: finding {index + 1}: " + "; ".join(lines)) from None
    return found


def family_findings() -> dict[str, list[Finding]]:
    out = {}
    for name in families.names():
        path = families.get(name).folder() / FINDINGS_FILE
        if path.is_file():
            out[name] = load_findings(path)
    return out


def judge_findings(agg: Aggregate, declared: dict[str, list[Finding]] | None = None) -> list[FindingVerdict]:
    """Every declared finding of the families with results, judged on ``agg``."""
    declared = family_findings() if declared is None else declared
    verdicts = []
    for family, items in sorted(declared.items()):
        tasks = [t for t in agg.tasks if t.task.family == family]
        if not tasks:
            continue
        for finding in items:
            judge = _matches_or_beats if finding.kind == "matches-or-beats" else _keeps_at_most
            verdicts.append(judge(finding, family, tasks))
    return verdicts


def _matches_or_beats(finding: Finding, family: str, tasks: list) -> FindingVerdict:
    evidence, metrics = [], set()
    for tres in tasks:
        metric = tres.task.primary_metric
        mine, theirs = tres.gates.get(finding.gate), tres.gates.get(finding.versus or "")
        if mine is None or theirs is None or metric not in mine.cells or metric not in theirs.cells:
            continue
        sign = 1.0 if tres.task.metrics[metric].higher_is_better else -1.0
        a = {s: sign * v for s, v in mine.cells[metric].values.items()}
        b = {s: sign * v for s, v in theirs.cells[metric].values.items()}
        evidence.append(Evidence(tres.task.id, delta=paired_delta(a, b, f"finding/{finding.id}")))
        metrics.add(metric)
    metric = ", ".join(sorted(metrics)) or "primary metric"
    if not evidence:
        return FindingVerdict(finding, family, metric, "missing", [], "no task has both gates")
    lows = [e.delta.ci_low if e.delta and e.delta.ci_low is not None else None for e in evidence]
    highs = [e.delta.ci_high if e.delta and e.delta.ci_high is not None else None for e in evidence]
    if any(h is not None and h < -finding.margin for h in highs):
        verdict = "fails"
    elif all(low is not None and low >= -finding.margin for low in lows):
        verdict = "holds"
    else:
        verdict = "inconclusive"
    detail = (
        f"{finding.gate} − {finding.versus} on {len(evidence)} task(s), paired over seeds; "
        f"matching means no task's interval below −{finding.margin:g}"
    )
    return FindingVerdict(finding, family, metric, verdict, evidence, detail)


def _keeps_at_most(finding: Finding, family: str, tasks: list) -> FindingVerdict:
    variant = next((t for t in tasks if t.task.id == finding.variant), None)
    row = None
    if variant is not None:
        row = next((r for r in variant.robustness if r.gate == finding.gate), None)
    metric = variant.task.primary_metric if variant is not None else "primary metric"
    if row is None or row.score_ratio is None:
        return FindingVerdict(finding, family, metric, "missing", [], "no runs on both tasks")
    ratio, limit = row.score_ratio, float(finding.at_most or 0.0)
    if ratio.high is not None and ratio.high <= limit:
        verdict = "holds"
    elif ratio.low is not None and ratio.low > limit:
        verdict = "fails"
    else:
        verdict = "inconclusive"
    detail = (
        f"{finding.gate}'s {metric} on {finding.variant} ÷ on {variant.task.variant_of}, paired "
        f"over seeds; the statement holds at a share of at most {limit:g}"
    )
    return FindingVerdict(finding, family, metric, verdict, [Evidence(variant.task.id, ratio=ratio)], detail)


def finding_rows(verdicts: list[FindingVerdict]) -> list[dict]:
    """Every finding with its verdict and evidence, for the JSON report: a failing finding is a
    result too."""
    rows = []
    for v in verdicts:
        rows.append(
            {
                "row": "finding",
                "finding": v.finding.id,
                "family": v.family,
                "statement": v.finding.statement,
                "verdict": v.verdict,
                "metric": v.metric,
                "detail": v.detail,
                "evidence": [
                    {
                        "task": e.task,
                        "delta": e.delta.as_dict() if e.delta else None,
                        "ratio": None
                        if e.ratio is None
                        else {"value": e.ratio.value, "low": e.ratio.low, "high": e.ratio.high},
                    }
                    for e in v.evidence
                ],
            }
        )
    return rows


def finding_lines(verdicts: list[FindingVerdict]) -> list[str]:
    """The findings for the text report, each with its verdict and per-task evidence."""
    if not verdicts:
        return []
    from collections import Counter

    counts = Counter(v.verdict for v in verdicts)
    out = ["GateBench's own findings: " + ", ".join(f"{counts[k]} {k}" for k in sorted(counts))]
    for v in verdicts:
        out.append(f"  {v.verdict.upper():<12} {v.finding.id}: {v.finding.statement.strip()}")
        for e in v.evidence:
            if e.delta is not None:
                low, high = e.delta.ci_low, e.delta.ci_high
                ci = f" [{low:+.3f}, {high:+.3f}]" if low is not None and high is not None else ""
                out.append(f"      {e.task}: {e.delta.mean:+.3f}{ci}")
            elif e.ratio is not None:
                ci = f" [{e.ratio.low:.2f}, {e.ratio.high:.2f}]" if e.ratio.low is not None else ""
                out.append(f"      {e.task}: kept {e.ratio.value:.2f}{ci}")
    return out

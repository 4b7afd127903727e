"""From a submission folder to results on the leaderboard: inspect, check, run, summarise.

Used by ``gatebench submit PATH`` (one submission against every task of its families, next to the
baselines on the same seeds) and by ``gatebench run`` (every submission under ``submissions/``).
A broken submission is reported with its reason and skipped; it never stops the others.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.errors import SubmissionError
from suite.gates.entries import GateLike, all_gates
from suite.gates.submissions import SubmissionEntry, SubmissionManifest, load_manifest
from suite.results.aggregate import ABOVE_LIMIT, PUBLIC_SEEDS, TaskResult
from suite.results.loading import load_results
from suite.results.stats import Summary, paired_delta
from suite.runs.executors import Job, JobResult
from suite.runs.plan import make_plan
from suite.runs.progress import duration
from suite.runs.records import iter_records
from suite.runs.salt import seed_label
from suite.runs.setup import SweepOptions, make_executor
from suite.runs.sweep import CONFORMANCE_TIME_S, Sweep, SweepSummary
from suite.tasks.family import get_family
from suite.tasks.loading import load_all_tasks, tasks_for_profile
from suite.tasks.spec import TaskSpec

Log = Callable[[str], None]


@dataclass
class LoadedSubmissions:
    entries: list[SubmissionEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def load_submissions(
    folders: list[Path], tasks: list[TaskSpec], options: SweepOptions
) -> LoadedSubmissions:
    """Validate manifests here, import and inspect the code in confined worker processes."""
    loaded = LoadedSubmissions()
    manifests: dict[Path, SubmissionManifest] = {}
    for folder in folders:
        try:
            manifests[folder] = load_manifest(folder)
        except SubmissionError as exc:
            loaded.errors.append(str(exc))
    jobs = []
    inspect_limit = min(CONFORMANCE_TIME_S, options.time_limit_s or CONFORMANCE_TIME_S)
    for folder, manifest in manifests.items():
        targets = [t.for_profile(options.profile) for t in tasks if t.family in manifest.families]
        infos = {t.id: get_family(t.family).task_info(t) for t in targets}
        payload = {
            "submission_dir": str(folder.resolve()),
            "tasks": {
                t.id: {
                    "info": infos[t.id].as_dict(),
                    "overrides": t.gate_params.get(manifest.name),
                }
                for t in targets
            },
        }
        jobs.append(
            Job("inspect", payload, inspect_limit, 4096, f"inspect {folder}",
                tag=(folder, manifest, infos))
        )  # fmt: skip

    def done(result: JobResult) -> None:
        folder, manifest, infos = result.job.tag
        if not result.ok:
            loaded.errors.append(result.reason or f"{folder}: could not be imported")
            return
        value: dict[str, Any] = result.value or {}
        support = {}
        for task_id, info in infos.items():
            ok, reason = value["support"].get(task_id, [False, "not inspected"])
            support[info] = (bool(ok), str(reason))
        loaded.entries.append(
            SubmissionEntry(
                manifest=manifest,
                folder=folder.resolve(),
                causal=bool(value["causal"]),
                init_params=frozenset(value["init_params"]),
                support=support,
            )
        )

    if jobs:
        make_executor(dataclasses.replace(options, workers=max(1, options.workers))).run(jobs, done)
    taken = {g.id for g in all_gates()}
    for entry in list(loaded.entries):
        if entry.id in taken:
            loaded.entries.remove(entry)
            loaded.errors.append(
                f"{entry.folder}/submission.yaml: field 'name': '{entry.id}' is already taken by "
                "another gate; choose another name."
            )
        taken.add(entry.id)
    loaded.entries.sort(key=lambda e: e.id)
    return loaded


@dataclass
class TaskOutcome:
    task: str
    metric: str
    higher_is_better: bool
    status: str
    reason: str = ""
    score: Summary | None = None
    rank: int | None = None
    ranked_gates: int = 0
    strongest: str | None = None
    delta: Summary | None = None
    audits: int = 0  # audits on the real run that the gate passed, over its seeds


@dataclass
class SubmitResult:
    entry: SubmissionEntry
    sweep: SweepSummary
    outcomes: list[TaskOutcome]
    salt: str = ""  # "" = the specs' public seeds: a development result, never ranked

    @property
    def ok(self) -> bool:
        fine = ("ok", "ceiling", "unsupported", PUBLIC_SEEDS)
        return all(o.status in fine for o in self.outcomes)


@dataclass
class BaselineCost:
    """What comparing a submission on a salt costs before its own runs: the baseline runs under
    that salt not yet recorded (run once per salt, then cached for every later submission)."""

    planned: int
    missing: int
    seconds: float | None  # estimated from the same runs' times under other salts
    untimed: int  # missing runs with no earlier record to time them from

    def describe(self, salt: str, workers: int) -> str:
        where = seed_label(salt)
        if not self.missing:
            return f"All {self.planned} baseline runs on {where} are cached."
        est = ""
        if self.seconds is not None:
            est = (
                f"; about {duration(self.seconds / max(1, workers))} on {max(1, workers)} "
                "workers, timed from earlier records of the same runs"
            )
            if self.untimed:
                est += f" ({self.untimed} untimed)"
        return (
            f"{self.missing} of {self.planned} baseline runs on {where} are not recorded yet: "
            f"they run once per salt and are cached for every later submission{est}."
        )


def baseline_cost(
    tasks: list[TaskSpec], baselines: list[GateLike], options: SweepOptions
) -> BaselineCost:
    plan = make_plan(tasks, baselines, options.profile, options.results, options.seeds)
    hashes = {run.pair.spec.id: run.pair.spec.spec_hash() for run in plan.runs}
    done: set[tuple[str, str, int]] = set()
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for rec in iter_records(options.results):
        if rec.task.id not in hashes or rec.task.spec_hash != hashes[rec.task.id]:
            continue
        if rec.ok and rec.provenance.salt == options.salt:
            done.add((rec.task.id, rec.gate.id, rec.seed_index))
        if rec.ok and rec.wall_time_s is not None:
            times[(rec.task.id, rec.gate.id)].append(rec.wall_time_s)
    missing = [r for r in plan.runs if (r.pair.spec.id, r.pair.gate.id, r.seed_index) not in done]
    timed = [times.get((r.pair.spec.id, r.pair.gate.id)) for r in missing]
    seconds = sum(statistics.median(t) for t in timed if t) if any(timed) else None
    return BaselineCost(len(plan.runs), len(missing), seconds, sum(1 for t in timed if not t))


def _outcome(tres: TaskResult, gate_id: str) -> TaskOutcome:
    task = tres.task
    metric = task.primary_metric
    higher = task.metrics[metric].higher_is_better
    gres = tres.gates.get(gate_id)
    if gres is None:
        return TaskOutcome(task.id, metric, higher, "unsupported")
    cell = gres.cells.get(metric)
    ranked = [g for g in tres.gates.values() if g.ranked]
    baselines = [
        g for g in ranked
        if g.gate.origin == "baseline" and g.cells.get(metric) and g.cells[metric].summary
    ]  # fmt: skip
    sign = 1.0 if higher else -1.0
    strongest = max(baselines, key=lambda g: sign * g.cells[metric].summary.mean, default=None)
    delta = None
    if strongest is not None and cell is not None and cell.values:
        delta = paired_delta(cell.values, strongest.cells[metric].values, f"submit/{gate_id}")
    return TaskOutcome(
        task=task.id,
        metric=metric,
        higher_is_better=higher,
        status=gres.status,
        reason="; ".join(gres.reasons),
        score=cell.summary if cell else None,
        rank=cell.rank if cell else None,
        ranked_gates=len(ranked),
        strongest=strongest.gate.id if strongest else None,
        delta=delta,
        audits=sum(len(r.audits) for r in gres.records.values()),
    )


def submit(folder: Path, options: SweepOptions, log: Log) -> SubmitResult:
    """Check and run one submission on every task of its families, beside the baselines."""
    manifest = load_manifest(folder)
    tasks = [t for t in load_all_tasks() if t.family in manifest.families]
    tasks = tasks_for_profile(tasks, options.profile)
    loaded = load_submissions([folder], tasks, options)
    if loaded.errors:
        raise SubmissionError(loaded.errors[0])
    entry = loaded.entries[0]
    unsupported = [t.id for t in tasks if not entry.supports(
        get_family(t.family).task_info(t.for_profile(options.profile)))[0]]  # fmt: skip
    baselines = [g for g in all_gates() if g.origin == "baseline"]
    if options.salt:
        log(baseline_cost(tasks, baselines, options).describe(options.salt, options.workers))
    else:
        log("Public seeds: a development run. Its results are shown, never ranked.")
    summary = Sweep(options, log).run(tasks, [*baselines, entry])
    agg, _ = load_results(options.results, options.profile, [t.id for t in tasks], options.salt)
    outcomes = []
    for tres in agg.tasks:
        outcome = _outcome(tres, entry.id)
        if tres.task.id in unsupported:
            outcome.reason = "the gate's supports() declined this task"
        outcomes.append(outcome)
    return SubmitResult(entry, summary, outcomes, options.salt)


def render_summary(result: SubmitResult) -> str:
    from suite.results.report import fmt_ci

    lines = [f"Submission '{result.entry.id}' ({result.entry.folder}), {seed_label(result.salt)}:"]
    if not result.salt:
        lines.append(
            "  NOT A LEADERBOARD RESULT: public seeds are a function of public code, so any gate "
            "could regenerate their data; these scores are shown, never ranked. Run without "
            "--salt public to be ranked on the leaderboard's secret seeds."
        )
    for o in result.outcomes:
        arrow = "↑" if o.higher_is_better else "↓"
        if o.status in ("failed", "rejected", "unsupported"):
            lines.append(f"  {o.task}: {o.status.upper()} — {o.reason or 'not run'}")
            continue
        rank = f"rank {o.rank} of {o.ranked_gates}" if o.rank is not None else "not ranked"
        if o.status == "ceiling":
            rank = "not ranked (declared non-causal: a ceiling)"
        elif o.status == PUBLIC_SEEDS:
            rank = "not ranked (public seeds)"
        elif o.status == ABOVE_LIMIT:
            rank = "NOT RANKED: above the Bayes-optimal limit"
        vs = (
            f"Δ vs strongest baseline {o.strongest}: {fmt_ci(o.delta, signed=True)}"
            if o.strongest
            else "no baseline to compare with"
        )
        lines.append(f"  {o.task}: {o.metric} {arrow} {fmt_ci(o.score)}, {rank}; {vs}")
        if o.status == ABOVE_LIMIT:
            lines.append(f"    {o.reason}")
        lines.append(f"    audits on the real batches: {o.audits} passed, none failed")
        if o.status == "partial":
            lines.append(f"    some seeds failed: {o.reason}")
    return "\n".join(lines)

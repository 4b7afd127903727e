"""The sweep: plan -> conformance -> runs -> records, with progress, caching and resumption.

Finished runs are found by key and never recomputed unless forced; each record is written as soon
as its run ends, so an interrupted sweep loses at most the runs in flight and resumes by running
the same command again. Failed and rejected runs are recorded with their reason but never served
from the cache: the next sweep tries them again.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from suite.gates.conformance import CheckResult, ConformanceReport
from suite.gates.entries import GateLike, all_gates
from suite.gates.violations import AuditViolation
from suite.runs import artifacts
from suite.runs.executors import DaskExecutor, Executor, Job, JobResult
from suite.runs.plan import Pair, Plan, PlannedRun, make_plan, seed_count
from suite.runs.progress import Progress, duration
from suite.runs.provenance import environment, now
from suite.runs.records import (
    Provenance,
    RunRecord,
    Status,
    clean_value,
    read_record,
    write_json_atomic,
    write_record,
)
from suite.runs.seed_jobs import JobBuilder, estimated_prepare_cost, per_seed
from suite.runs.setup import (
    SweepOptions,
    check_device,
    check_results_folder,
    check_tasks,
    make_executor,
)
from suite.tasks.family import get_family, job_spec
from suite.tasks.spec import TaskSpec

CONFORMANCE_TIME_S = 120.0


@dataclass
class SweepSummary:
    plan: Plan
    cached: int = 0
    ok: int = 0
    failed: int = 0
    rejected: int = 0
    wall_s: float = 0.0
    failures: list[str] = field(default_factory=list)

    def fail(self, label: str, reason: str | None) -> None:
        self.failed += 1
        self.failures.append(f"{label}: {reason}")


class Sweep:
    def __init__(
        self,
        options: SweepOptions,
        log: Callable[[str], None] | None = None,
        live: bool | None = None,
    ) -> None:
        self.options = options
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.live = live if log is None else False  # a caller's log gets plain lines
        self.env = environment(options.device, options.command)
        self.unprepared: dict[tuple[str, int], str] = {}  # (task, seed) -> why its artefact failed
        # The seed of the audited calls: drawn fresh by this process for every sweep, never seen
        # by gate code before its runs, and published in each record afterwards.
        self.audit_seed = options.audit_seed
        if self.audit_seed is None:
            self.audit_seed = int.from_bytes(os.urandom(8), "big") >> 1

    def _record(
        self,
        run: PlannedRun,
        status: Status,
        value: dict[str, Any] | None = None,
        reason: str | None = None,
        error: str | None = None,
        conformance: dict[str, Any] | None = None,
        audited: bool = True,
    ) -> RunRecord:
        """A record of ``run``; ``audited``: the run was executed (and so audited), not stopped
        by the conformance checks before it started."""
        value = value or {}
        provenance = Provenance(
            **self.env,
            torch_threads=value.get("torch_threads", 1),
            data_fingerprint=value.get("data_fingerprint", ""),
            seeds=value.get("seeds", {}),
            audit_seed=self.audit_seed if audited and self.options.audits else None,
            salt=self.options.salt,
            artifact=run.artifact,
            sandbox=value.get("sandbox", ""),
            created_at=now(),
        )
        return RunRecord(
            key=run.key,
            status=status,
            reason=reason,
            error=error,
            profile=run.profile,
            seed_index=run.seed_index,
            task=run.pair.task_ref(),
            gate=run.pair.gate_ref(),
            metrics=value.get("metrics", {}),
            arrays=value.get("arrays", {}),
            diagnostics=value.get("diagnostics", {}),
            notes=value.get("notes", []),
            conformance=conformance,
            audits=value.get("audits", []),
            n_params=value.get("n_params"),
            wall_time_s=value.get("wall_time_s"),
            peak_rss_mb=value.get("peak_rss_mb"),
            provenance=provenance,
        )

    # -- jobs ---------------------------------------------------------------------------------

    def _payload(self, pair: Pair, run: PlannedRun | None = None) -> dict[str, Any]:
        payload = {
            **job_spec(pair.spec),
            "gate": {
                **pair.gate_payload(),
                "causal": pair.gate.causal,
                "ceiling": pair.gate.ceiling,
                "origin": pair.gate.origin,
                "isolate": pair.gate.origin != "baseline" or self.options.isolate_baselines,
            },
            "seed_index": run.seed_index if run else 0,
            "audit_seed": self.audit_seed if run is not None and self.options.audits else None,
            "salt": self.options.salt,
            "device": self.options.device,
            "time_limit_s": self._time_limit(pair.spec),
        }
        if run is not None and run.artifact:
            slot = self._slot(pair.spec, run.seed_index)
            payload["artifact"] = {"path": str(slot.path.resolve()), "hash": run.artifact}
        return payload

    def _slot(self, spec: TaskSpec, seed_index: int) -> artifacts.ArtifactSlot:
        family = get_family(spec.family)
        return artifacts.slot(self.options.results, family, spec, seed_index, self.options.salt)

    def _time_limit(self, spec: TaskSpec) -> float:
        return self.options.time_limit_s or spec.limits.time_s

    def _memory(self, spec: TaskSpec) -> int:
        return self.options.memory_mb or spec.limits.memory_mb

    # -- phases -------------------------------------------------------------------------------

    def prepare(
        self, tasks: list[TaskSpec], executor_for: Callable[[], Executor]
    ) -> dict[tuple[str, int], str]:
        """Build every missing artefact of the families that prepare one (trusted jobs; this
        process writes them); returns (task id, seed index) -> content hash. One that cannot be
        built is kept in ``unprepared``: its runs fail, the others go on."""
        hashes: dict[tuple[str, int], str] = {}
        jobs: list[tuple[float, Job]] = []
        for base in tasks:
            spec = base.for_profile(self.options.profile)
            if not get_family(spec.family).prepares:
                continue
            for seed_index in range(seed_count(spec, self.options.seeds)):
                slot = self._slot(spec, seed_index)
                found = slot.content_hash()
                if found is not None:
                    hashes[(spec.id, seed_index)] = found
                    continue
                payload = {**job_spec(spec), "seed_index": seed_index, "salt": self.options.salt}
                limit, memory = self._time_limit(spec), self._memory(spec)
                job = Job("prepare", payload, limit, memory, f"prepare {slot}", tag=slot)
                jobs.append((estimated_prepare_cost(spec), job))
        if not jobs:
            return hashes
        jobs.sort(key=lambda sized: -sized[0])  # the longest first: workers finish together
        where = f"profile '{self.options.profile}'"
        self.log(f"Preparing {len(jobs)} artefacts of {where} (once per task and seed) ...")

        def done(result: JobResult) -> None:
            slot: artifacts.ArtifactSlot = result.job.tag
            if result.ok and result.value is not None:
                hashes[(slot.task_id, slot.seed_index)] = slot.write(result.value["blob"])
                self.log(f"  prepared {slot} in {result.wall_s:.1f}s")
            else:
                self.unprepared[(slot.task_id, slot.seed_index)] = result.reason or "unknown error"
                self.log(f"  FAILED to prepare {slot}: {result.reason} (its runs will fail)")

        executor_for().run([job for _, job in jobs], done)
        return hashes

    def conformance(
        self, pairs: list[Pair], executor: Executor
    ) -> dict[tuple[str, str], ConformanceReport]:
        """Check each pair once per code version; cached reports are reused."""
        reports: dict[tuple[str, str], ConformanceReport] = {}
        jobs = []
        for pair in pairs:
            path = pair.conformance_path(self.options.results)
            if path.exists():
                try:
                    report = ConformanceReport.model_validate_json(path.read_text())
                    reports[(pair.spec.id, pair.gate.id)] = report
                    continue
                except ValueError:
                    pass
            jobs.append(
                Job(
                    "conformance",
                    self._payload(pair),
                    min(CONFORMANCE_TIME_S, self._time_limit(pair.spec)),
                    self._memory(pair.spec),
                    f"conformance {pair.label}",
                    tag=pair,
                )
            )
        if jobs:
            self.log(f"Checking conformance of {len(jobs)} (task, gate) pairs ...")

        def done(result: JobResult) -> None:
            pair: Pair = result.job.tag
            if result.ok:
                report = ConformanceReport.model_validate(result.value)
                write_json_atomic(pair.conformance_path(self.options.results), result.value)
            else:
                report = ConformanceReport(
                    gate=pair.gate.id,
                    kind=pair.gate.kind,
                    declared_causal=pair.gate.causal,
                    shape={},
                    checks=[CheckResult(name="harness", passed=False, detail=result.reason or "")],
                )
            reports[(pair.spec.id, pair.gate.id)] = report
            if not report.passed:
                self.log(f"  rejected {pair.label}: {report.reason()}")

        executor.run(jobs, done)
        return reports

    def run(self, tasks: list[TaskSpec], gates: list[GateLike]) -> SweepSummary:
        options = self.options
        check_device(options.device)
        check_results_folder(options.results)
        check_tasks(tasks, {g.id for g in all_gates()} | {g.id for g in gates}, options.profile)
        started = time.monotonic()
        executors: list[Executor] = []

        def executor_for() -> Executor:
            if not executors:
                executors.append(make_executor(options))
            return executors[0]

        try:
            hashes = self.prepare(tasks, executor_for)
            plan = make_plan(
                tasks, gates, options.profile, options.results, options.seeds,
                artifacts=lambda spec, seed: hashes.get((spec.id, seed), ""),
                salt=options.salt,
            )  # fmt: skip
            return self._run_plan(plan, executor_for, started)
        finally:
            for executor in executors:
                if isinstance(executor, DaskExecutor):
                    executor.close()

    def _run_plan(
        self, plan: Plan, executor_for: Callable[[], Executor], started: float
    ) -> SweepSummary:
        options = self.options
        summary = SweepSummary(plan=plan)
        todo: list[PlannedRun] = []
        for run in plan.runs:
            existing = None if options.force else read_record(run.path)
            if existing is not None and existing.ok and existing.key == run.key:
                summary.cached += 1
            else:
                todo.append(run)
        n_tasks = len({p.spec.id for p in plan.pairs})
        self.log(
            f"GateBench sweep, profile '{options.profile}': {n_tasks} tasks, "
            f"{len(plan.pairs)} (task, gate) pairs, {len(plan.runs)} runs "
            f"({summary.cached} already done, {len(todo)} to run) on {options.workers} workers; "
            f"results in {options.results}/"
        )
        for task_id, gate_id, reason in plan.skipped:
            self.log(f"  skipped {task_id} × {gate_id}: {reason}")
        if not todo:
            summary.wall_s = time.monotonic() - started
            return summary

        try:
            self._sweep(todo, executor_for(), summary)
        except KeyboardInterrupt:
            done = summary.ok + summary.failed + summary.rejected
            self.log(
                f"\nInterrupted after {done} of {len(todo)} runs. Finished runs are saved; "
                "run the same command again to resume."
            )
            raise
        summary.wall_s = time.monotonic() - started
        self.log(
            f"Sweep finished in {duration(summary.wall_s)}: {summary.ok} ok, "
            f"{summary.failed} failed, {summary.rejected} rejected, {summary.cached} cached."
        )
        return summary

    def _jobs(self, runnable: list[tuple[PlannedRun, ConformanceReport]]) -> list[Job]:
        batch = self.options.batch_seeds and not self.options.isolate_baselines
        builder = JobBuilder(self._payload, self._slot, self._time_limit, self._memory)
        return builder.plan(runnable, batch, max(1, self.options.workers), self.options.device)

    def _fail_unprepared(self, todo: list[PlannedRun], summary: SweepSummary) -> list[PlannedRun]:
        """Failed records for the runs whose artefact could not be built; the rest to run."""
        rest = []
        for run in todo:
            why = self.unprepared.get((run.pair.spec.id, run.seed_index))
            if why is None:
                rest.append(run)
                continue
            reason = f"preparing the task's artefact for this seed failed: {why}"
            write_record(run.path, self._record(run, "failed", reason=reason, audited=False))
            summary.fail(run.label, reason)
        if len(rest) < len(todo):
            self.log(f"  {len(todo) - len(rest)} runs failed: their artefact could not be built")
        return rest

    def _sweep(self, todo: list[PlannedRun], executor: Executor, summary: SweepSummary) -> None:
        todo = self._fail_unprepared(todo, summary)
        pairs = list({(r.pair.spec.id, r.pair.gate.id): r.pair for r in todo}.values())
        reports = self.conformance(pairs, executor)
        progress = Progress(len(todo), self.log, live=self.live)
        runnable: list[tuple[PlannedRun, ConformanceReport]] = []
        for run in todo:
            report = reports[(run.pair.spec.id, run.pair.gate.id)]
            if not report.passed:
                reason = f"failed conformance: {report.reason()}"
                write_record(
                    run.path,
                    self._record(
                        run,
                        "rejected",
                        reason=reason,
                        conformance=report.model_dump(mode="json"),
                        audited=False,
                    ),
                )
                summary.rejected += 1
                progress.line("rejected", run.label, "", 0.0)
                continue
            runnable.append((run, report))
        jobs = self._jobs(runnable)
        progress.expect(sum(job.cost for job in jobs))

        def done(result: JobResult) -> None:
            progress.credit(result.job.cost)
            for run, report, seed_result in per_seed(result):
                finish(run, report, seed_result)

        def finish(run: PlannedRun, report: ConformanceReport, result: JobResult) -> None:
            conformance = report.model_dump(mode="json")
            if result.ok:
                try:
                    value = clean_value(result.value, run.pair.task_ref())
                    record = self._record(run, "ok", value=value, conformance=conformance)
                except (ValueError, TypeError) as exc:  # malformed output of an untrusted run
                    reason = f"the run returned unusable results: {exc}".splitlines()[0]
                    result = JobResult(result.job, False, None, reason, str(exc), result.wall_s)
            if result.ok:
                primary = run.pair.spec.primary_metric
                value = record.metrics.get(primary)
                headline = f"{primary}={value:.4g}" if value is not None else ""
                summary.ok += 1
                status = "ok"
            else:
                rejected = (result.reason or "").startswith(AuditViolation.__name__)
                record = self._record(
                    run, "rejected" if rejected else "failed", reason=result.reason,
                    error=result.detail, conformance=conformance,
                )  # fmt: skip
                headline = (result.reason or "")[:60]
                if rejected:
                    summary.rejected += 1
                else:
                    summary.fail(run.label, result.reason)
                status = "rejected" if rejected else "FAILED"
            write_record(run.path, record)
            progress.line(status, run.label, headline, result.wall_s)

        with progress:
            executor.run(jobs, done)

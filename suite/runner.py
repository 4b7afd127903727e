"""The sweep: plan -> conformance -> runs -> records, with progress, caching and resumption.

Finished runs are found by key and never recomputed unless forced; each record is written as soon
as its run ends, so an interrupted sweep loses at most the runs in flight and resumes by running
the same command again. Failed and rejected runs are recorded with their reason but never served
from the cache: the next sweep tries them again.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from suite.conformance import ConformanceReport
from suite.errors import RunError
from suite.executor import DaskExecutor, Executor, InlineExecutor, Job, JobResult, ProcessExecutor
from suite.plan import Pair, Plan, PlannedRun, make_plan
from suite.provenance import environment, now
from suite.records import Provenance, RunRecord, read_record, write_json_atomic, write_record
from suite.registry import GateEntry, all_gates
from suite.spec import TaskSpec

CONFORMANCE_TIME_S = 120.0


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class SweepOptions:
    profile: str = "default"
    seeds: int | None = None
    workers: int = field(default_factory=default_workers)
    results: Path = Path("results")
    device: str = "cpu"
    force: bool = False
    executor: str = "process"  # process | inline | dask
    scheduler: str | None = None  # Dask scheduler address; None starts a LocalCluster
    command: str = ""
    time_limit_s: float | None = None  # overrides every spec's limit (tests, debugging)
    memory_mb: int | None = None


@dataclass
class SweepSummary:
    plan: Plan
    cached: int = 0
    ok: int = 0
    failed: int = 0
    rejected: int = 0
    wall_s: float = 0.0
    failures: list[str] = field(default_factory=list)


class Progress:
    """One line per finished job, with counts and a rough time to go."""

    def __init__(self, total: int, log: Callable[[str], None]) -> None:
        self.total, self.done, self.log = total, 0, log
        self.started = time.monotonic()

    def line(self, status: str, label: str, headline: str, wall_s: float) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        eta = elapsed / self.done * left if self.done else 0.0
        width = len(str(self.total))
        self.log(
            f"[{self.done:>{width}}/{self.total}] {status:<8} {label:<52} {headline:<32} "
            f"{wall_s:6.1f}s  eta {_duration(eta)}"
        )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _finite(obj: Any) -> Any:
    """Non-finite floats (NaN, inf) inside traces and diagnostics become None (JSON has none)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def clean_value(value: dict[str, Any] | None) -> dict[str, Any]:
    """A run's output made safe to record; a non-finite metric makes the whole run unusable."""
    value = dict(value or {})
    bad = sorted(k for k, v in value.get("metrics", {}).items() if not math.isfinite(float(v)))
    if bad:
        raise ValueError(f"metrics {bad} are not finite")
    for part in ("traces", "diagnostics"):
        value[part] = _finite(value.get(part, {}))
    return value


def check_results_folder(results: Path) -> None:
    try:
        results.mkdir(parents=True, exist_ok=True)
        probe = results / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RunError(
            f"Cannot write run records into {results}: {exc.strerror or exc}. "
            "Pick another folder with --results."
        ) from None


def check_device(device: str) -> None:
    if device == "cpu":
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RunError(
                f"--device {device} was asked for, but torch {torch.__version__} sees no CUDA "
                "device here. Use --device cpu, or run on a machine with a GPU and a CUDA build."
            )
        return
    raise RunError(f"Unknown device '{device}'. Use cpu or cuda (cuda:N for a given GPU).")


def check_gate_params(tasks: list[TaskSpec], known: set[str]) -> None:
    for task in tasks:
        unknown = sorted(set(task.gate_params) - known)
        if unknown:
            raise RunError(
                f"Task '{task.id}' sets gate_params for unknown gates {unknown}; "
                "fix the ids in its spec (`gatebench list gates` shows them)."
            )


def make_executor(options: SweepOptions) -> Executor:
    if options.executor == "inline" or options.workers == 0:
        return InlineExecutor()
    if options.executor == "dask":
        return DaskExecutor(options.scheduler, options.workers)
    if options.executor == "process":
        return ProcessExecutor(options.workers)
    raise RunError(f"Unknown executor '{options.executor}'. Use process, inline or dask.")


class Sweep:
    def __init__(self, options: SweepOptions, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.env = environment(options.device, options.command)

    # -- records ------------------------------------------------------------------------------

    def _record(
        self,
        run: PlannedRun,
        status: str,
        value: dict[str, Any] | None = None,
        reason: str | None = None,
        error: str | None = None,
        conformance: dict[str, Any] | None = None,
    ) -> RunRecord:
        value = value or {}
        provenance = Provenance(
            **self.env,
            torch_threads=value.get("torch_threads", 1),
            data_fingerprint=value.get("data_fingerprint", ""),
            seeds=value.get("seeds", {}),
            sandbox=value.get("sandbox", ""),
            created_at=now(),
        )
        return RunRecord(
            key=run.key,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            error=error,
            profile=run.profile,
            seed_index=run.seed_index,
            task=run.pair.task_ref(),
            gate=run.pair.gate_ref(),
            metrics=value.get("metrics", {}),
            traces=value.get("traces", {}),
            diagnostics=value.get("diagnostics", {}),
            notes=value.get("notes", []),
            conformance=conformance,
            n_params=value.get("n_params"),
            wall_time_s=value.get("wall_time_s"),
            peak_rss_mb=value.get("peak_rss_mb"),
            provenance=provenance,
        )

    # -- jobs ---------------------------------------------------------------------------------

    def _payload(self, pair: Pair, seed_index: int = 0) -> dict[str, Any]:
        return {
            "spec": pair.spec.model_dump(mode="json"),
            "gate": pair.gate_payload(),
            "seed_index": seed_index,
            "device": self.options.device,
            "time_limit_s": self._time_limit(pair),
        }

    def _time_limit(self, pair: Pair) -> float:
        return self.options.time_limit_s or pair.spec.limits.time_s

    def _memory(self, pair: Pair) -> int:
        return self.options.memory_mb or pair.spec.limits.memory_mb

    # -- phases -------------------------------------------------------------------------------

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
                    min(CONFORMANCE_TIME_S, self._time_limit(pair)),
                    self._memory(pair),
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
                from suite.conformance import CheckResult

                report = ConformanceReport(
                    gate=pair.gate.id,
                    declared_causal=pair.gate.causal,
                    shape={},
                    checks=[CheckResult(name="harness", passed=False, detail=result.reason or "")],
                )
            reports[(pair.spec.id, pair.gate.id)] = report
            if not report.passed:
                self.log(f"  rejected {pair.label}: {report.reason()}")

        executor.run(jobs, done)
        return reports

    def run(self, tasks: list[TaskSpec], gates: list[GateEntry]) -> SweepSummary:
        options = self.options
        check_device(options.device)
        check_results_folder(options.results)
        check_gate_params(tasks, {g.id for g in all_gates()} | {g.id for g in gates})
        started = time.monotonic()
        plan = make_plan(tasks, gates, options.profile, options.results, options.seeds)
        summary = SweepSummary(plan=plan)
        todo: list[PlannedRun] = []
        for run in plan.runs:
            existing = None if options.force else read_record(run.path)
            if existing is not None and existing.ok and existing.key == run.key:
                summary.cached += 1
            else:
                todo.append(run)
        self.log(
            f"GateBench sweep, profile '{options.profile}': {len(tasks)} tasks, "
            f"{len(plan.pairs)} (task, gate) pairs, {len(plan.runs)} runs "
            f"({summary.cached} already done, {len(todo)} to run) on {options.workers} workers; "
            f"results in {options.results}/"
        )
        for task_id, gate_id, reason in plan.skipped:
            self.log(f"  skipped {task_id} × {gate_id}: {reason}")
        if not todo:
            summary.wall_s = time.monotonic() - started
            return summary

        executor = make_executor(options)
        try:
            self._sweep(todo, executor, summary)
        except KeyboardInterrupt:
            done = summary.ok + summary.failed + summary.rejected
            self.log(
                f"\nInterrupted after {done} of {len(todo)} runs. Finished runs are saved; "
                "run the same command again to resume."
            )
            raise
        finally:
            if isinstance(executor, DaskExecutor):
                executor.close()
        summary.wall_s = time.monotonic() - started
        self.log(
            f"Sweep finished in {_duration(summary.wall_s)}: {summary.ok} ok, "
            f"{summary.failed} failed, {summary.rejected} rejected, {summary.cached} cached."
        )
        return summary

    def _sweep(self, todo: list[PlannedRun], executor: Executor, summary: SweepSummary) -> None:
        pairs = list({(r.pair.spec.id, r.pair.gate.id): r.pair for r in todo}.values())
        reports = self.conformance(pairs, executor)
        progress = Progress(len(todo), self.log)
        jobs = []
        for run in todo:
            report = reports[(run.pair.spec.id, run.pair.gate.id)]
            if not report.passed:
                reason = f"failed conformance: {report.reason()}"
                write_record(
                    run.path,
                    self._record(
                        run, "rejected", reason=reason, conformance=report.model_dump(mode="json")
                    ),
                )
                summary.rejected += 1
                progress.line("rejected", run.label, "", 0.0)
                continue
            jobs.append(
                Job(
                    "run",
                    self._payload(run.pair, run.seed_index),
                    self._time_limit(run.pair),
                    self._memory(run.pair),
                    run.label,
                    tag=(run, report),
                )
            )

        def done(result: JobResult) -> None:
            run, report = result.job.tag
            conformance = report.model_dump(mode="json")
            if result.ok:
                try:
                    record = self._record(
                        run, "ok", value=clean_value(result.value), conformance=conformance
                    )
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
                record = self._record(
                    run,
                    "failed",
                    reason=result.reason,
                    error=result.detail,
                    conformance=conformance,
                )
                headline = (result.reason or "")[:60]
                summary.failed += 1
                summary.failures.append(f"{run.label}: {result.reason}")
                status = "FAILED"
            write_record(run.path, record)
            progress.line(status, run.label, headline, result.wall_s)

        executor.run(jobs, done)

"""Executors: where jobs run. Every job is untrusted code with a time and a memory limit.

``ProcessExecutor`` (the default) gives each job its own process, forked from a server that has
already imported torch, so a start costs milliseconds, confined by ``suite.runs.sandbox`` (its own
scratch folder, no writes elsewhere, bounded memory). A job that raises, overruns its time limit
(killed), exceeds its memory allowance or dies becomes a failed result with the reason; the other
jobs go on. ``InlineExecutor`` runs jobs in this process, for debugging (``--workers 0``).
``DaskExecutor`` sends jobs to a ``distributed`` cluster.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from suite.runs.hosts import HostProcess, start_exec, start_forked
from suite.runs.jobs import execute, isolated, job_readable
from suite.runs.sandbox import confine, stop_descendants

KILL_GRACE_S = 5.0  # runs stop themselves at their deadline; the kill is the backstop


@dataclass
class Job:
    kind: str  # "prepare" | "conformance" | "run" | "inspect" (suite.runs.jobs.JOB_FUNCTIONS)
    payload: dict[str, Any]
    time_limit_s: float
    memory_mb: int | None
    label: str
    tag: Any = None  # the caller's object, handed back with the result
    cost: float = 1.0  # the planner's estimate (ms of one core), for the remaining time


@dataclass
class JobResult:
    job: Job
    ok: bool
    value: dict[str, Any] | None
    reason: str | None  # one sentence for tables
    detail: str | None  # traceback or other long text
    wall_s: float


OnDone = Callable[[JobResult], None]


class Executor(Protocol):
    def run(self, jobs: Iterable[Job], on_done: OnDone) -> None: ...


def _explain(exc: BaseException, memory_mb: int | None) -> str:
    text = str(exc)
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "std::bad_alloc" in text:
        return f"exceeded its memory limit of {memory_mb} MiB ({type(exc).__name__})"
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def needs_host(kind: str, payload: dict[str, Any]) -> bool:
    """Whether a job talks to its gate in the gate's own process."""
    return kind in ("run", "conformance") and isolated(payload)


GATE_PROCESS = "; the gate in its own process, behind a proxy"


def _run_guarded(
    kind: str, payload: dict[str, Any], memory_mb: int | None, host: Any = None
) -> tuple[str, Any, str]:
    """(status, value or reason, detail) for one job in the current process; where the job's
    gate is untrusted and no gate process was started beside this one, one is started here."""
    started: HostProcess | None = None
    try:
        if host is None and needs_host(kind, payload):
            host, started = start_exec(payload["gate"], memory_mb, payload.get("threads", 1))
        value = execute(kind, payload, host)
        if started is not None and isinstance(value, dict) and kind == "run":
            value["sandbox"] = "the harness unconfined (inline or Dask)" + GATE_PROCESS
        return "ok", value, ""
    except (Exception, SystemExit) as exc:  # untrusted code: every failure becomes a result
        return "error", _explain(exc, memory_mb), traceback.format_exc()
    finally:
        if started is not None:
            host.close()
            started.stop()


def _child_main(
    kind: str,
    payload: dict[str, Any],
    memory_mb: int | None,
    scratch: str,
    conn: Connection,
    host: Any = None,
) -> None:
    try:
        sandbox = confine(Path(scratch), memory_mb, job_readable(payload))
        status, value, detail = _run_guarded(kind, payload, memory_mb, host)
        stopped = stop_descendants()
        if status == "ok" and isinstance(value, dict):
            value["sandbox"] = sandbox + (GATE_PROCESS if host is not None else "")
            if stopped:
                value.setdefault("notes", []).append(
                    f"the harness stopped {stopped} process(es) the gate left running"
                )
        conn.send((status, value, detail))
    except BaseException:  # the pipe itself failed (e.g. an unpicklable value)
        with contextlib.suppress(BaseException):
            conn.send(("error", "the job's result could not be sent back", traceback.format_exc()))
    finally:
        conn.close()


class InlineExecutor:
    """Jobs one after another in this process: no isolation, no hard time limit."""

    def run(self, jobs: Iterable[Job], on_done: OnDone) -> None:
        for job in jobs:
            started = time.monotonic()
            status, value, detail = _run_guarded(job.kind, job.payload, job.memory_mb)
            wall = time.monotonic() - started
            if status == "ok":
                on_done(JobResult(job, True, value, None, None, wall))
            else:
                on_done(JobResult(job, False, None, value, detail, wall))


@dataclass
class _Running:
    job: Job
    process: Any
    started: float
    scratch: str
    host: HostProcess | None = None  # the gate's own process, for untrusted gates

    def finish(self) -> None:
        self.process.join()
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.host is not None:
            self.host.stop()

    def kill(self) -> None:
        """Stop the run, its gate's process and everything in their process groups."""
        with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.kill()
        if self.host is not None:
            self.host.kill()


class ProcessExecutor:
    """Up to ``workers`` jobs at a time, each in a fresh process forked from a warm server."""

    _context: Any = None

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("ProcessExecutor needs at least one worker")
        self.workers = workers

    @classmethod
    def context(cls) -> Any:
        if cls._context is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["suite.runs.warm"])
            cls._context = ctx
        return cls._context

    def run(self, jobs: Iterable[Job], on_done: OnDone) -> None:
        ctx = self.context()
        pending = deque(jobs)
        running: dict[Connection, _Running] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    job = pending.popleft()
                    recv, item = self._start(ctx, job)
                    running[recv] = item
                now = time.monotonic()
                timeout = min(
                    r.started + r.job.time_limit_s + KILL_GRACE_S - now for r in running.values()
                )
                for conn in wait(list(running), timeout=max(0.0, min(timeout, 1.0))):
                    item = running.pop(conn)
                    on_done(self._collect(conn, item))
                now = time.monotonic()
                for conn, item in list(running.items()):
                    if now > item.started + item.job.time_limit_s + KILL_GRACE_S:
                        running.pop(conn)
                        item.kill()
                        item.finish()
                        conn.close()
                        limit = item.job.time_limit_s
                        on_done(
                            JobResult(
                                item.job,
                                False,
                                None,
                                f"exceeded its time limit of {limit:g} s and was stopped",
                                None,
                                now - item.started,
                            )
                        )
        finally:
            for conn, item in running.items():
                item.kill()
                item.finish()
                conn.close()

    @staticmethod
    def _start(ctx: Any, job: Job) -> tuple[Connection, _Running]:
        """The job's process and, for an untrusted gate, the gate's own process beside it."""
        host_sock, host = None, None
        if needs_host(job.kind, job.payload):
            threads = job.payload.get("threads", 1)
            host_sock, host = start_forked(
                ctx, job.payload["gate"], job.memory_mb, threads, job.label
            )
        scratch = tempfile.mkdtemp(prefix="gatebench-run-")
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child_main,
            args=(job.kind, job.payload, job.memory_mb, scratch, send, host_sock),
            name=f"gatebench: {job.label}",
            daemon=True,
        )
        proc.start()
        send.close()
        if host_sock is not None:
            host_sock.close()
        return recv, _Running(job, proc, time.monotonic(), scratch, host)

    @staticmethod
    def _collect(conn: Connection, item: _Running) -> JobResult:
        wall = time.monotonic() - item.started
        try:
            status, value, detail = conn.recv()
        except (EOFError, OSError):
            item.finish()
            code = item.process.exitcode
            why = (
                f"killed by signal {-code} (often the system's out-of-memory killer)"
                if code is not None and code < 0
                else f"exit code {code}"
            )
            return JobResult(item.job, False, None, f"the run's process died: {why}", None, wall)
        finally:
            conn.close()
        item.finish()
        if status == "ok":
            return JobResult(item.job, True, value, None, None, wall)
        return JobResult(item.job, False, None, value, detail, wall)


class DaskExecutor:
    """Jobs on a Dask ``distributed`` cluster (a scheduler address, or a LocalCluster).

    Time limits are enforced inside the run (between optimiser steps); memory limits are the
    workers' own (``memory_limit`` of the cluster).
    """

    def __init__(self, address: str | None = None, workers: int = 2) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - depends on the environment
            from suite.errors import RunError

            raise RunError(
                "The Dask executor needs the 'distributed' package: pip install 'gatebench[dask]'."
            ) from exc
        self._cluster = None
        if address:
            self.client = Client(address)
        else:
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                preload=["suite.runs.warm"],  # imports done as each worker starts
            )
            self.client = Client(self._cluster)

    def run(self, jobs: Iterable[Job], on_done: OnDone) -> None:
        from distributed import as_completed

        started: dict[Any, tuple[Job, float]] = {}
        futures = []
        queue = list(jobs)
        for i, job in enumerate(queue):
            fut = self.client.submit(
                _run_guarded,
                job.kind,
                job.payload,
                None,
                pure=False,
                key=f"gatebench-{uuid.uuid4().hex}",
                priority=len(queue) - i,  # in the plan's order (longest first), as locally
            )
            started[fut.key] = (job, time.monotonic())
            futures.append(fut)
        for fut in as_completed(futures):
            job, t0 = started[fut.key]
            status, value, detail = fut.result()
            wall = time.monotonic() - t0
            if status == "ok":
                on_done(JobResult(job, True, value, None, None, wall))
            else:
                on_done(JobResult(job, False, None, value, detail, wall))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

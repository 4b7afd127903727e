"""A sweep's options and the checks made before anything runs: results folder, device, gate
parameters of the specs, and the executor to use."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from suite.errors import RunError
from suite.runs.executors import DaskExecutor, Executor, InlineExecutor, ProcessExecutor
from suite.tasks.spec import TaskSpec


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
    audits: bool = True  # audit gates on the real run at secret calls (suite.gates.audit)
    salt: str = ""  # "" = the specs' public seeds; a leaderboard's secret salt otherwise
    audit_seed: int | None = None  # None: a fresh secret seed per sweep
    isolate_baselines: bool = False  # baselines in their own gate process too, as submissions
    batch_seeds: bool = True  # a baseline's seeds in one job, vectorised where the family can


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


def check_tasks(tasks: list[TaskSpec], known: set[str], profile: str) -> None:
    """The specs' gate parameters name known gates, and each family's own check that a task can
    run here passes (e.g. pretrained weights on disk)."""
    from suite.tasks.family import get_family

    check_gate_params(tasks, known)
    for task in tasks:
        get_family(task.family).check_ready(task.for_profile(profile))


def make_executor(options: SweepOptions) -> Executor:
    if options.executor == "inline" or options.workers == 0:
        return InlineExecutor()
    if options.executor == "dask":
        return DaskExecutor(options.scheduler, options.workers)
    if options.executor == "process":
        return ProcessExecutor(options.workers)
    raise RunError(f"Unknown executor '{options.executor}'. Use process, inline or dask.")

"""Shared fixtures: the shipped specs, smoke-profile sweeps into temporary result folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import tests.fixtures.bad_gates  # noqa: F401  (registers the test-* gates)
from suite.gates.entries import GateEntry, all_gates, get_gate
from suite.runs.records import RunRecord, iter_records
from suite.runs.setup import SweepOptions
from suite.runs.sweep import Sweep, SweepSummary
from suite.tasks.loading import load_all_tasks
from suite.tasks.spec import TaskSpec


@pytest.fixture(scope="session")
def tasks() -> dict[str, TaskSpec]:
    return {t.id: t for t in load_all_tasks()}


@pytest.fixture(scope="session")
def baselines() -> list[GateEntry]:
    return [g for g in all_gates() if g.origin == "baseline"]


SweepFn = Callable[..., tuple[SweepSummary, list[RunRecord]]]


@pytest.fixture
def sweep(tasks: dict[str, TaskSpec], tmp_path: Path) -> SweepFn:
    """Run a smoke sweep: sweep(task_ids, gate_ids, **options) -> (summary, records)."""

    def run(
        task_ids: list[str], gate_ids: list[str], results: Path | None = None, **options
    ) -> tuple[SweepSummary, list[RunRecord]]:
        results = results or tmp_path / "results"
        options.setdefault("workers", 2)
        options.setdefault("profile", "smoke")
        opts = SweepOptions(results=results, **options)
        summary = Sweep(opts, log=lambda msg: None).run(
            [tasks[t] for t in task_ids], [get_gate(g) for g in gate_ids]
        )
        return summary, list(iter_records(results))

    return run

"""Jobs that carry several seeds of one (task, gate) pair, and their results taken apart.

A trusted baseline's seeds of one task share one job (``TaskFamily.batches_seeds``, on unless
a family turns it off), which the family's ``run_seeds`` trains together (stacked into one
vectorised pass where it can); a process's start and warm-up are then paid once per pair instead
of once per seed. A submission's seeds always run one job each, in their own confined processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suite.runs.executors import Job, JobResult
from suite.runs.plan import PlannedRun
from suite.tasks.family import get_family
from suite.tasks.spec import TaskSpec

Member = tuple[PlannedRun, Any]  # a run and the caller's tag for it (its conformance report)


def batchable(run: PlannedRun) -> bool:
    pair = run.pair
    return pair.gate.origin == "baseline" and get_family(pair.spec.family).batches_seeds


def estimated_cost(spec: TaskSpec) -> float:
    """A rough size of one run, only to order jobs (longest first): optimiser steps × batch ×
    sequence length, from whichever of these fields the family's spec has."""
    train, data = getattr(spec, "train", None), getattr(spec, "data", None)
    steps = getattr(train, "epochs", None) or getattr(train, "steps", None) or 1
    batch = getattr(train, "batch_size", None) or 1
    length = getattr(data, "seq_len", None) or 1
    tasks = getattr(data, "n_tasks", None) or 1
    return float(steps * batch * length * tasks)


def plan_jobs(
    runnable: list[Member],
    batch: bool,
    one: Callable[[PlannedRun, Member], Job],
    together: Callable[[list[PlannedRun], list[Member]], Job],
    workers: int = 1,
) -> list[Job]:
    """One job per run, or with ``batch`` one per (task, gate) pair whose runs can share it;
    longest first (so the last jobs to start are short ones and workers finish together).

    While there are fewer than two jobs per worker, the largest group is split in two: a small
    sweep (one gate, five seeds) still keeps every worker busy."""
    singles: list[Member] = []
    groups: dict[tuple[str, str], list[Member]] = {}
    for member in runnable:
        run = member[0]
        if batch and batchable(run):
            groups.setdefault((run.pair.spec.id, run.pair.gate.id), []).append(member)
        else:
            singles.append(member)
    chunks = list(groups.values())
    while len(chunks) + len(singles) < 2 * workers and any(len(c) > 1 for c in chunks):
        largest = max(chunks, key=len)
        chunks.remove(largest)
        half = (len(largest) + 1) // 2
        chunks += [largest[:half], largest[half:]]
    sized: list[tuple[float, Job]] = []
    for member in singles:
        sized.append((estimated_cost(member[0].pair.spec), one(member[0], member)))
    for members in chunks:
        runs = [m[0] for m in members]
        job = one(runs[0], members[0]) if len(runs) == 1 else together(runs, members)
        sized.append((estimated_cost(runs[0].pair.spec) * len(runs), job))
    sized.sort(key=lambda item: -item[0])  # stable: equal costs keep the plan's order
    return [job for _, job in sized]


def seed_payload(
    payload: dict[str, Any], runs: list[PlannedRun], slot: Callable[[PlannedRun], Any]
) -> dict[str, Any]:
    """The first run's payload turned into one for every seed of ``runs``."""
    payload = dict(payload)
    payload.pop("artifact", None)
    payload["seed_indices"] = [r.seed_index for r in runs]
    payload["artifacts"] = {
        str(r.seed_index): {"path": str(slot(r).path.resolve()), "hash": r.artifact}
        for r in runs
        if r.artifact
    }
    return payload


def per_seed(result: JobResult) -> list[tuple[PlannedRun, Any, JobResult]]:
    """(run, tag, result) for each run of a job; a failed multi-seed job fails each seed."""
    if result.job.kind != "run-seeds":
        run, tag = result.job.tag
        return [(run, tag, result)]
    out = []
    for i, (run, tag) in enumerate(result.job.tag):
        one = result.value["runs"][i] if result.ok and result.value else None
        if one is None:  # the whole job failed (killed, out of time, ...)
            seed = JobResult(result.job, False, None, result.reason, result.detail, result.wall_s)
        elif "error" in one:
            seed = JobResult(result.job, False, None, one["error"], one["detail"], result.wall_s)
        else:
            seed = JobResult(result.job, True, one, None, None, one["wall_time_s"])
        out.append((run, tag, seed))
    return out

"""Jobs that carry several seeds of one (task, gate) pair, and their results taken apart.

A family that stacks seeds into one vectorised pass (``TaskFamily.batches_seeds``) gets the
seeds of a trusted baseline in one job, which its ``run_seeds`` trains together; the imports,
spec loading and process start are then paid once per pair instead of once per seed. A
submission's seeds always run one job each, in their own confined processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suite.runs.executors import Job, JobResult
from suite.runs.plan import PlannedRun
from suite.tasks.family import get_family

Member = tuple[PlannedRun, Any]  # a run and the caller's tag for it (its conformance report)


def batchable(run: PlannedRun) -> bool:
    pair = run.pair
    return pair.gate.origin == "baseline" and get_family(pair.spec.family).batches_seeds


def plan_jobs(
    runnable: list[Member],
    batch: bool,
    one: Callable[[PlannedRun, Member], Job],
    together: Callable[[list[PlannedRun], list[Member]], Job],
) -> list[Job]:
    """One job per run, or with ``batch`` one per (task, gate) pair whose runs can share it."""
    jobs: list[Job] = []
    groups: dict[tuple[str, str], list[Member]] = {}
    for member in runnable:
        run = member[0]
        if batch and batchable(run):
            groups.setdefault((run.pair.spec.id, run.pair.gate.id), []).append(member)
        else:
            jobs.append(one(run, member))
    for members in groups.values():
        if len(members) == 1:
            jobs.append(one(members[0][0], members[0]))
        else:
            jobs.append(together([m[0] for m in members], members))
    return jobs


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

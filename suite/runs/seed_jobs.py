"""Jobs that carry several runs (the seeds of a (task, gate) pair, or the gates of a (task,
seed)), and their results taken apart.

A trusted baseline's seeds of one task share one job (``TaskFamily.batches_seeds``, on unless
a family turns it off), which the family's ``run_seeds`` trains together (stacked into one
vectorised pass where it can); a process's start and warm-up are then paid once per pair instead
of once per seed. Where a family reads the same data for every gate of a seed (one drawn
stream, or one frozen base's reading of it: ``TaskFamily.groups_gates``), a (task, seed)'s
trusted gates share one job instead, and ``run_gates`` pays for that data once. A submission's
runs always have one job each, in their own confined processes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from suite.runs.executors import Job, JobResult
from suite.runs.plan import Pair, PlannedRun
from suite.tasks.family import get_family
from suite.tasks.spec import TaskSpec

MANY_RUNS = ("run-seeds", "run-gates")  # job kinds that carry several runs, one result each
Member = tuple[PlannedRun, Any]  # a run and the caller's tag for it (its conformance report)


def batchable(run: PlannedRun) -> bool:
    pair = run.pair
    return pair.gate.origin == "baseline" and get_family(pair.spec.family).batches_seeds


def estimated_cost(spec: TaskSpec) -> float:
    """Estimated milliseconds of one run on one core, only to order and cut jobs (longest
    first) and to tell the remaining time: optimiser steps (per task of a sequence) times the
    family's ``step_cost`` for the batch × sequence length, from whichever of these fields the
    family's spec has."""
    train, data = getattr(spec, "train", None), getattr(spec, "data", None)
    steps = getattr(train, "epochs", None) or getattr(train, "steps", None) or 1
    batch = getattr(train, "batch_size", None) or 1
    length = getattr(data, "seq_len", None) or getattr(spec, "seq_len", None) or 1
    tasks = getattr(data, "n_tasks", None) or 1
    return float(steps * tasks) * get_family(spec.family).step_cost(spec, batch * length)


def estimated_prepare_cost(spec: TaskSpec) -> float:
    """A rough size of a (task, seed)'s prepared artefact, only to build the largest first:
    pre-training steps × batch, where the spec has them."""
    pretrain = getattr(spec, "pretrain", None)
    return float((getattr(pretrain, "steps", 1) or 1) * (getattr(pretrain, "batch_size", 1) or 1))


def shares_data(run: PlannedRun, device: str = "cpu") -> bool:
    """Whether ``run`` can share a job with the other gates of its (task, seed) on ``device``."""
    return batchable(run) and get_family(run.pair.spec.family).groups_gates(device)


def makespan(costs: list[float], workers: int) -> float:
    """When the last of ``workers`` finishes ``costs``, each job going to the first free worker
    in order of size (the order ``plan_jobs`` gives them)."""
    loads = [0.0] * max(1, workers)
    for c in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += c
    return max(loads)


def plan_jobs(
    runnable: list[Member],
    batch: bool,
    one: Callable[[PlannedRun, Member], Job],
    together: Callable[[list[PlannedRun], list[Member]], Job],
    workers: int = 1,
    across: Callable[[list[PlannedRun], list[Member]], Job] | None = None,
    device: str = "cpu",
    weight: Callable[[Member], float] | None = None,
) -> list[Job]:
    """One job per run, or with ``batch`` one per group of runs that can share it: a (task,
    gate) pair's seeds (``together``), or, where the family reads the same data for every gate
    and ``across`` is given, a (task, seed)'s gates (``across``); longest first (so the last
    jobs to start are short ones and workers finish together).

    Groups are then cut in two while that lets the workers finish sooner by the estimated
    costs (``balance``), and always while there are fewer than two jobs per worker: a small
    sweep (one gate, five seeds; one task's gates on five seeds) still keeps every worker busy
    to the end. A run's cost is ``estimated_cost`` (milliseconds) times ``weight`` (its gate's
    relative cost, 1 where not given); a job adds its family's ``job_overhead``."""
    singles: list[Member] = []
    groups: dict[tuple[str, str, str], list[Member]] = {}
    for member in runnable:
        run = member[0]
        if batch and across is not None and shares_data(run, device):
            key = ("gates", run.pair.spec.id, str(run.seed_index))
        elif batch and batchable(run):
            key = ("seeds", run.pair.spec.id, run.pair.gate.id)
        else:
            singles.append(member)
            continue
        groups.setdefault(key, []).append(member)
    chunks = [("one", [m]) for m in singles] + [(key[0], m) for key, m in groups.items()]

    size = {id(m): estimated_cost(m[0].pair.spec) for m in runnable}  # once, not per trial
    each = {id(m): size[id(m)] * (weight(m) if weight else 1.0) for m in runnable}

    def cost(members: list[Member]) -> float:
        """Estimated milliseconds, to within a factor: the runs, and what the job pays once."""
        first = members[0]
        overhead = get_family(first[0].pair.spec.family).job_overhead
        return sum(each[id(m)] for m in members) + size[id(first)] * overhead

    jobs = []
    for kind, members in balance(chunks, workers, cost):
        runs = [m[0] for m in members]
        if len(runs) == 1:
            job = one(runs[0], members[0])
        else:
            build = across if kind == "gates" and across is not None else together
            job = build(runs, members)
        job.cost = cost(members)
        jobs.append(job)
    return jobs


Chunk = tuple[str, list[Member]]  # (what its runs share: "seeds", "gates" or "one"), its runs
TAIL = 4  # balance tries cutting the largest chunk and this many per worker at the queue's end


def halves(chunk: Chunk, cost: Callable[[list[Member]], float]) -> list[Chunk]:
    """The chunk cut in two where the halves' costs are closest (the first half the larger on
    a tie), its runs kept in order."""
    kind, members = chunk
    cut = min(
        range(len(members) - 1, 0, -1),
        key=lambda k: abs(cost(members[:k]) - cost(members[k:])),
    )
    return [(kind, members[:cut]), (kind, members[cut:])]


def balance(
    chunks: list[Chunk], workers: int, cost: Callable[[list[Member]], float]
) -> list[Chunk]:
    """The chunks longest first, cut in two one at a time while that lowers the estimated time
    the last worker finishes (``makespan``), or while there are fewer than two per worker.

    Workers take the next job as they free up, so the end of the queue decides when the last
    one finishes: the cuts tried are the largest chunk's and those of the last chunks. A cut
    costs its family's ``job_overhead`` (a second shared pass, a second process), so groups
    whose shared work is dear stay whole unless cutting them pays."""

    def ordered(parts: list[Chunk]) -> list[Chunk]:
        return sorted(parts, key=lambda chunk: -cost(chunk[1]))  # stable: plan order on ties

    def finish(parts: list[Chunk]) -> float:
        return makespan([cost(c) for _, c in parts], workers)

    queue = ordered(chunks)
    while True:
        splittable = [c for c in queue if len(c[1]) > 1]
        if not splittable:
            return queue
        largest = max(splittable, key=lambda chunk: cost(chunk[1]))
        tried = [largest] + [c for c in splittable[-TAIL * workers :] if c is not largest]
        now, best = finish(queue), None
        for chunk in tried:
            trial = ordered([c for c in queue if c is not chunk] + halves(chunk, cost))
            ends = finish(trial)
            if best is None or ends < best[0]:
                best = (ends, trial)
        assert best is not None
        if len(queue) >= 2 * workers and best[0] >= now * (1 - 1e-9):
            return queue
        queue = best[1]


def relative_weights(runnable: list[Member]) -> Callable[[Member], float]:
    """Each run's gate cost relative to the other gates of its task, from how long their
    conformance checks took (a member's tag is its report); between 1/4 and 4, 1 where
    unknown. Only the order and the cuts of jobs depend on it, never a number."""
    seconds: dict[str, dict[str, float]] = {}
    for run, report in runnable:
        took = getattr(report, "seconds", None)
        if took:
            seconds.setdefault(run.pair.spec.id, {})[run.pair.gate.id] = took
    middle = {task: statistics.median(by_gate.values()) for task, by_gate in seconds.items()}

    def weight(member: Member) -> float:
        run = member[0]
        took = seconds.get(run.pair.spec.id, {}).get(run.pair.gate.id)
        return min(4.0, max(0.25, took / middle[run.pair.spec.id])) if took else 1.0

    return weight


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


def gates_payload(payload: dict[str, Any], gates: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's payload turned into one for every gate of a (task, seed): ``gates``
    holds each run's own gate entry (id, parameters, audit flags); ``gate`` stays the first's."""
    return {**payload, "gates": gates}


@dataclass
class JobBuilder:
    """Turns planned runs into jobs with the sweep's payloads, artefact slots and limits."""

    payload: Callable[[Pair, PlannedRun], dict[str, Any]]
    slot: Callable[[TaskSpec, int], Any]
    time_limit: Callable[[TaskSpec], float]
    memory: Callable[[TaskSpec], int | None]

    def plan(self, runnable: list[Member], batch: bool, workers: int, device: str) -> list[Job]:
        return plan_jobs(
            runnable, batch, self.one, self.together, workers, across=self.across,
            device=device, weight=relative_weights(runnable),
        )  # fmt: skip

    def one(self, run: PlannedRun, tag: Any) -> Job:
        spec = run.pair.spec
        payload = self.payload(run.pair, run)
        return Job("run", payload, self.time_limit(spec), self.memory(spec), run.label, tag)

    def _many(self, kind: str, runs: list[PlannedRun], tag: Any, payload: Any, label: str) -> Job:
        spec, n = runs[0].pair.spec, len(runs)  # the runs share the job's limits
        memory = self.memory(spec)
        return Job(kind, payload, self.time_limit(spec) * n, memory and memory * n, label, tag)

    def together(self, runs: list[PlannedRun], tag: Any) -> Job:
        """One job for several seeds of one (task, gate) pair."""
        pair = runs[0].pair
        payload = seed_payload(
            self.payload(pair, runs[0]), runs, lambda r: self.slot(pair.spec, r.seed_index)
        )
        label = f"{pair.label} seeds {', '.join(str(r.seed_index) for r in runs)}"
        return self._many("run-seeds", runs, tag, payload, label)

    def across(self, runs: list[PlannedRun], tag: Any) -> Job:
        """One job for several gates of one (task, seed)."""
        entries = [self.payload(r.pair, r)["gate"] for r in runs]
        payload = gates_payload(self.payload(runs[0].pair, runs[0]), entries)
        label = f"{runs[0].pair.spec.id} seed {runs[0].seed_index}: {len(runs)} gates"
        return self._many("run-gates", runs, tag, payload, label)


def per_seed(result: JobResult) -> list[tuple[PlannedRun, Any, JobResult]]:
    """(run, tag, result) for each run of a job; a failed job of several runs (seeds or gates)
    fails each of them."""
    if result.job.kind not in MANY_RUNS:
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

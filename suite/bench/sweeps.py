"""Whole-run timings of ``nox -s bench`` (items 3-6 of ``suite.bench``): rendering the site, the
Table 5 sweep through the real runner, an untrusted gate behind its proxy, and Dask workers."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from suite.gates.entries import get_gate
from suite.runs.setup import SweepOptions
from suite.runs.sweep import Sweep
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.family import RunContext, get_family
from suite.tasks.loading import load_task

TABLE5_GATES = [
    "affinity",
    "beta",
    "pi",
    "ant",
    "beta+pi",
    "beta+ant",
    "pi+ant",
    "beta+pi+ant",
    "oracle",
]
TASK = "transition/anticipation"


def site_render_time(n_gates: int = 20, n_tasks: int = 15, n_seeds: int = 5) -> tuple[float, int]:
    """(seconds, pages) to build the site from records on disk, as `gatebench site` does."""
    from suite.runs.records import write_record
    from suite.website.site import build_site
    from tests.synthetic import synthetic_records  # a checkout's test data (bench runs from one)

    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        for i, rec in enumerate(synthetic_records(n_gates, n_tasks, n_seeds)):
            write_record(results / "runs" / f"{i:05d}.json", rec)
        started = time.perf_counter()
        summary = build_site(results)
        return time.perf_counter() - started, summary.pages


EXAMPLE = Path(__file__).resolve().parents[1] / "submissions" / "selective-memory"


def proxy_overhead(repeats: int = 5) -> dict[str, float]:
    """Seconds per run of the example submission (default profile, one seed), in this process
    and in a gate process of its own behind the proxy. The two alternate ``repeats`` times (so
    drifts of the machine hit both alike); the ratio is of the medians, with the range of the
    per-pair ratios beside it, since two processes ping-ponging on 2 cores vary run to run."""
    from suite.gates.proxy import GateClient
    from suite.gates.submissions import register_submission
    from suite.runs.executors import ProcessExecutor
    from suite.runs.hosts import start_forked

    spec = load_task(TASK, "default")
    family = get_family(spec.family)
    info = family.task_info(spec)
    seeds = RunSeeds(spec.master_seed, TASK, 0)
    entry = register_submission(EXAMPLE)  # our own example: importing it here is safe

    def here() -> tuple[float, dict]:
        with seeded_global_rng(seeds.init):
            gate = entry.build(info)
        started = time.perf_counter()
        metrics = family.run(spec, gate, RunContext(seeds=seeds)).metrics
        return time.perf_counter() - started, metrics

    def proxied() -> tuple[float, dict]:
        ref = {"id": entry.id, "submission_dir": str(EXAMPLE)}
        sock, host = start_forked(ProcessExecutor.context(), ref, None, 1, "bench")
        client = GateClient(sock)
        try:
            gate = client.build(info, None, seeds.init)
            started = time.perf_counter()
            metrics = family.run(spec, gate, RunContext(seeds=seeds)).metrics
            return time.perf_counter() - started, metrics
        finally:
            client.close()
            host.stop()

    local, remote = [], []
    for _ in range(repeats):
        local.append(here())
        remote.append(proxied())
    in_process = statistics.median(seconds for seconds, _ in local)
    through_proxy = statistics.median(seconds for seconds, _ in remote)
    pairs = [r / h for (h, _), (r, _) in zip(local, remote, strict=True)]
    return {
        "epochs": spec.train.epochs,
        "repeats": repeats,
        "in_process_s": in_process,
        "proxy_s": through_proxy,
        "ratio": through_proxy / in_process,
        "ratio_min": min(pairs),
        "ratio_max": max(pairs),
        "same_metrics": all(m == local[0][1] for _, m in local + remote),
    }


DASK_GATES = ["affinity", "beta", "beta+ant", "beta+pi+ant"]


def dask_wall_time(workers: int) -> float:
    """Seconds for the default profile of the anticipation task × ``DASK_GATES`` on a Dask
    LocalCluster of ``workers`` single-threaded worker processes (excluded: starting the cluster,
    whose workers preload GateBench's modules as `dask worker --preload suite.runs.warm` does)."""
    from distributed import Client, LocalCluster

    tasks = [load_task(TASK)]
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        preload=["suite.runs.warm"],  # imports done as each worker starts
    )
    try:
        with Client(cluster) as client:
            client.wait_for_workers(workers)
        with tempfile.TemporaryDirectory() as tmp:
            options = SweepOptions(
                profile="default", results=Path(tmp), workers=workers, executor="dask",
                scheduler=cluster.scheduler_address,
            )  # fmt: skip
            started = time.perf_counter()
            summary = Sweep(options, log=lambda msg: None).run(
                tasks, [get_gate(g) for g in DASK_GATES]
            )
            wall = time.perf_counter() - started
    finally:
        cluster.close()
    if summary.ok != len(DASK_GATES) * 5:
        raise RuntimeError(f"the Dask sweep did not finish cleanly: {summary.failures}")
    return wall


def dask_speed_up(rounds: int = 2) -> dict[str, object]:
    """1 and 2 workers timed in turn, ``rounds`` times (one pair of sweeps varies by some 5%
    on a shared 2-core machine); the speed-up is the ratio of the medians."""
    ones: list[float] = []
    twos: list[float] = []
    for _ in range(rounds):
        ones.append(dask_wall_time(1))
        twos.append(dask_wall_time(2))
    one, two = statistics.median(ones), statistics.median(twos)
    return {
        "gates": DASK_GATES,
        "one_worker": one,
        "two_workers": two,
        "speed_up": one / two,
        "rounds": [{"one_worker": a, "two_workers": b} for a, b in zip(ones, twos, strict=True)],
    }


def table5_command_time(workers: int, gates: Sequence[str] = (), profile: str = "paper") -> float:
    """Seconds for ``gatebench run --task transition/anticipation --profile paper --seeds 5
    --workers N`` as a user types it (its own interpreter, from a fresh results folder): without
    ``gates`` it runs every registered router and the submissions, as the command does."""
    from suite.bench.gpu import run_command

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*run_command(TASK, gates, profile, tmp, workers), "--strict"]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"the Table 5 command failed ({done.returncode}): {' / '.join(tail)}")
    return wall


def ablation_wall_time(workers: int) -> float:
    tasks = [load_task(TASK)]
    with tempfile.TemporaryDirectory() as tmp:
        options = SweepOptions(profile="paper", results=Path(tmp), workers=workers)
        started = time.perf_counter()
        summary = Sweep(options, log=lambda msg: None).run(
            tasks, [get_gate(g) for g in TABLE5_GATES]
        )
        wall = time.perf_counter() - started
    if summary.ok != len(TABLE5_GATES) * 5:
        raise RuntimeError(f"the ablation sweep did not finish cleanly: {summary.failures}")
    return wall

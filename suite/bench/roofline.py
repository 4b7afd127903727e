"""Where a run's time goes on this CPU (``nox -s bench``, item 12): its matrix products against
the rest.

For a sample of (task, gate) runs at the default profile, one run is timed (in a warm process,
glibc's thresholds pinned as a job pins them) and the same run's matrix products are counted
(``torch.utils.flop_counter.FlopCounterMode``: mm, bmm, addmm, attention and convolution, forward
and backward; elementwise work is not counted). Beside it, this core's speed at a matrix product
of the families' typical shape (6144 × 16 by 16 × 64, the transition family's hidden layer),
timed in cache with ``torch.utils.benchmark``. ``matmul_share`` is the fraction of the run's time
its products would take at that speed: what a faster matrix library could save at most; the
rest is elementwise work over activations larger than the core's cache, the optimiser, data and
per-operator overhead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from suite.gates.entries import get_gate
from suite.runs.allocator import pin_malloc_thresholds
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.family import RunContext, get_family
from suite.tasks.loading import load_task

SAMPLES = (
    ("transition/anticipation", "affinity"),
    ("transition/anticipation", "beta+ant"),
    ("transition/anticipation", "gru"),
    ("lm/char-switch", "softmax"),
    ("lm/char-switch", "beta+ant"),
    ("facts/sliding-window", "lerp"),
    ("continual/kv-maps", "moses"),
)
SHAPE = (6144, 16, 64)


def median_ms(fn: Callable[[], Any], min_run_time: float) -> float:
    """Milliseconds per call of ``fn`` on one thread: ``torch.utils.benchmark``'s median."""
    from torch.utils import benchmark

    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=1)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def matmul_gflops(m: int, k: int, n: int, min_run_time: float = 0.5) -> float:
    """GFLOP/s of one (m × k) @ (k × n) product on one thread, in cache."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    return 2 * m * k * n / median_ms(lambda: a @ b, min_run_time) / 1e6


def _runner(task_id: str, gate_id: str, profile: str) -> Any:
    spec = load_task(task_id, profile)
    family = get_family(spec.family)
    seeds = RunSeeds(spec.master_seed, task_id, 0)
    artifact = family.prepare(spec, seeds) if family.prepares else None

    def run() -> None:
        with seeded_global_rng(seeds.init):
            gate = get_gate(gate_id).build(family.task_info(spec))
        family.run(spec, gate, RunContext(seeds=seeds, artifact=artifact))

    return run


def where_time_goes(
    samples: tuple[tuple[str, str], ...] = SAMPLES, profile: str = "default"
) -> dict[str, dict[str, float]]:
    """{"task × gate": {seconds, gflop, gflops, peak_gflops, matmul_share}} (``peak_gflops``:
    this core at ``SHAPE``, the same in every row)."""
    from torch.utils.flop_counter import FlopCounterMode

    pin_malloc_thresholds()
    peak = matmul_gflops(*SHAPE)
    runs: dict[str, dict[str, float]] = {}
    for task_id, gate_id in samples:
        run = _runner(task_id, gate_id, profile)
        run()  # first-call costs (lazy imports, the allocator's first growth) excluded
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        with FlopCounterMode(display=False) as counter:
            run()
        gflop = counter.get_total_flops() / 1e9
        runs[f"{task_id} × {gate_id}"] = {
            "seconds": seconds,
            "gflop": gflop,
            "gflops": gflop / seconds,
            "peak_gflops": peak,
            "matmul_share": gflop / peak / seconds,
        }
    return runs


def print_roofline(found: dict[str, dict[str, float]], profile: str = "default") -> None:
    m, k, n = SHAPE
    peak = next(iter(found.values()))["peak_gflops"]
    print(
        f"\nWhere the time goes ({profile} profile, one thread): this core multiplies "
        f"{m}×{k} by {k}×{n} at {peak:.1f} GFLOP/s in cache"
    )
    print(f"  {'run':<44} {'s':>6} {'GFLOP':>8} {'GFLOP/s':>8} {'matmul share':>13}")
    for name, row in found.items():
        print(
            f"  {name:<44} {row['seconds']:6.2f} {row['gflop']:8.2f} {row['gflops']:8.1f} "
            f"{row['matmul_share']:12.0%}"
        )

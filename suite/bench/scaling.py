"""Bench item 10: how the cost of a training epoch grows with sequence length T and batch B.

The task is the paper profile of ``transition/anticipation`` (batch 512, T = 12) with two of its
train and data settings changed per point; everything else (noise, domains, experts, lr, the
family's own training loop) is the paper's. T is ``data.seq_len``, but it is tied to
``data.switch_at``, the first position of the second domain, which must lie in [1, T - 1]: the
paper puts it in the middle of its 12 tokens (6), so each T gets ``switch_at = T // 2`` and the
task keeps its shape (one switch, halfway; the scored transition at T // 2 - 1). B is
``train.batch_size``. The T sweep runs at a fixed batch and the B sweep at a fixed T (one point,
the fixed batch at the fixed T, is shared and measured once); the defaults are small enough that
the whole item takes about a minute on one thread (the quadratic scan of the ``beta`` gates makes
T = 1024 the costly end).

Each point (gate, T, B), in one warm process with one thread (``pin_threads(1)`` in ``main``):

* a warm-up run of one epoch (lazy imports and first-call costs are not timed);
* the peak memory: a run of two epochs under ``torch.profiler.profile(profile_memory=True)``,
  whose allocation and free events (the CPU allocator's, in time order) are summed; the peak of
  that running sum is the most bytes of the run's own allocations alive at once, in MiB (tensors
  only: the interpreter, numpy copies and blocks that existed before the run are not counted;
  process-wide measures such as the maximum RSS only ever grow, so they cannot tell points
  apart);
* the time: ``family.run`` of ``epochs`` epochs (data, forward, loss, backward, Adam, observe,
  metrics and the run's set-up, which is small) divided by ``epochs``, in ms, without the
  profiler.

Each row also carries its growth over the smallest point of its sweep for the same gate
(``ms_over_smallest``, ``peak_over_smallest``), so the row of the largest T or B is the growth
from the smallest to the largest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from torch.profiler import ProfilerActivity, profile

from suite.gates.entries import get_gate
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.family import RunContext, get_family
from suite.tasks.loading import load_task

TASK = "transition/anticipation"
GATES = ("affinity", "beta", "beta+ant")
LENGTHS = (16, 64, 256, 1024)
BATCHES = (64, 256, 1024)
FIXED_BATCH = 64
FIXED_T = 64


def scaled_spec(base, T: int, batch: int, epochs: int):
    """The paper spec at sequence length ``T`` (switch halfway) and ``batch``, validated again
    so an impossible T fails here rather than in the training loop."""
    data = base.data.model_copy(update={"seq_len": T, "switch_at": T // 2})
    train = base.train.model_copy(update={"batch_size": batch, "epochs": epochs, "eval_window": 1})
    return type(base).model_validate(
        {**base.model_dump(), "data": data.model_dump(), "train": train.model_dump()}
    )


def peak_mib(fn: Callable[[], object]) -> float:
    """The most bytes torch's CPU allocator held at once during ``fn`` beyond what was live at
    its start (the running sum of the profiler's allocation events), in MiB."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak / 2**20


def point_cost(base, gate_id: str, T: int, batch: int, epochs: int) -> dict[str, float]:
    """{"ms": per epoch, "peak_mb": of a two-epoch run} of one gate at (T, batch)."""
    family = get_family(base.family)
    seeds = RunSeeds(0, TASK, 0)
    spec = scaled_spec(base, T, batch, epochs)
    with seeded_global_rng(seeds.init):
        gate = get_gate(gate_id).build(family.task_info(spec))
    family.run(scaled_spec(base, T, batch, 1), gate, RunContext(seeds=seeds))  # warm-up
    two = scaled_spec(base, T, batch, 2)
    peak = peak_mib(lambda: family.run(two, gate, RunContext(seeds=seeds)))
    started = time.perf_counter()
    family.run(spec, gate, RunContext(seeds=seeds))
    return {"ms": (time.perf_counter() - started) / epochs * 1e3, "peak_mb": peak}


def _with_growth(sweep: dict[str, dict[str, dict[str, float]]]) -> None:
    """Add each row's ratio to the smallest point of its sweep (same gate)."""
    first = sweep[next(iter(sweep))]
    for rows in sweep.values():
        for gate_id, row in rows.items():
            row["ms_over_smallest"] = row["ms"] / first[gate_id]["ms"]
            smallest = first[gate_id]["peak_mb"]
            row["peak_over_smallest"] = row["peak_mb"] / smallest if smallest else float("nan")


def scaling_costs(
    gates: Sequence[str] = GATES,
    lengths: Sequence[int] = LENGTHS,
    batches: Sequence[int] = BATCHES,
    fixed_batch: int = FIXED_BATCH,
    fixed_T: int = FIXED_T,
    epochs: int = 20,
) -> dict[str, dict]:
    """ms per epoch and peak MiB per gate along T (at ``fixed_batch``) and B (at ``fixed_T``)."""
    base = load_task(TASK, "paper")
    measured: dict[tuple[str, int, int], dict[str, float]] = {}

    def cost(gate_id: str, T: int, batch: int) -> dict[str, float]:
        if (gate_id, T, batch) not in measured:
            measured[gate_id, T, batch] = point_cost(base, gate_id, T, batch, epochs)
        return dict(measured[gate_id, T, batch])

    by_T = {str(T): {g: cost(g, T, fixed_batch) for g in gates} for T in sorted(lengths)}
    by_B = {str(B): {g: cost(g, fixed_T, B) for g in gates} for B in sorted(batches)}
    _with_growth(by_T)
    _with_growth(by_B)
    return {
        "T": by_T,
        "B": by_B,
        "fixed": {"batch": fixed_batch, "T": fixed_T, "epochs": epochs},
    }


def _print_sweep(name: str, sweep: dict[str, dict[str, dict[str, float]]]) -> None:
    gates = list(next(iter(sweep.values())))
    print(f"  {name:>6} " + " ".join(f"{g + ' ms, MiB':>22}" for g in gates))
    for value, rows in sweep.items():
        cells = " ".join(f"{rows[g]['ms']:11.2f} {rows[g]['peak_mb']:10.2f}" for g in gates)
        print(f"  {value:>6} {cells}")
    last = sweep[list(sweep)[-1]]
    cells = " ".join(
        f"{last[g]['ms_over_smallest']:10.1f}x {last[g]['peak_over_smallest']:9.1f}x" for g in gates
    )
    print(f"  {'growth':>6} {cells}   ({name} {next(iter(sweep))} -> {list(sweep)[-1]})")


def print_scaling(found: dict[str, dict]) -> None:
    fixed = found["fixed"]
    print(
        f"\n{TASK} (paper profile), ms per epoch and peak MiB ({fixed['epochs']} epochs timed):"
        f"\n sequence length T at batch {fixed['batch']}:"
    )
    _print_sweep("T", found["T"])
    print(f" batch B at T = {fixed['T']}:")
    _print_sweep("B", found["B"])

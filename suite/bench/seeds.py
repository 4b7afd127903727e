"""Bench items 9 and 11: what training a gate's seeds together costs against one seed alone,
and a facts seed's updaters over one data pass against each alone.

For each gate, at the paper profile of ``transition/anticipation`` (batch 512, T = 12): ms per
epoch of one seed, of five seeds stacked into one vectorised pass (``vmap``), and of the same five
seeds in a loop, all in one warm process (a warm-up run first, so allocator and import costs are
not counted). The issue's goal is five seeds at no more than 1.6× one seed.
"""

from __future__ import annotations

import time

from suite.gates.entries import get_gate
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks import seed_stack
from suite.tasks.family import RunContext, get_family
from suite.tasks.loading import load_task

TASK = "transition/anticipation"
GATES = ("affinity", "beta", "beta+ant")


def _epoch_ms(spec, gate_id: str, seeds: int, vectorise: bool) -> float:
    family = get_family(spec.family)
    info = family.task_info(spec)
    ctxs = [RunContext(seeds=RunSeeds(spec.master_seed, spec.id, i)) for i in range(seeds)]
    gates = []
    for ctx in ctxs:
        with seeded_global_rng(ctx.seeds.init):
            gates.append(get_gate(gate_id).build(info, {}))
    started = time.perf_counter()
    family.run_seeds(spec, gates, ctxs, vectorise=vectorise)
    return (time.perf_counter() - started) / spec.train.epochs * 1e3


def seed_costs(epochs: int = 100) -> dict[str, dict[str, float]]:
    seed_stack.VECTORISE_ON_CPU = True  # time the vmapped pass (a GPU's path) here too
    try:
        return _seed_costs(epochs)
    finally:
        seed_stack.VECTORISE_ON_CPU = False


def _seed_costs(epochs: int) -> dict[str, dict[str, float]]:
    base = load_task(TASK, "paper")
    train = base.train.model_copy(update={"epochs": epochs, "eval_window": min(10, epochs)})
    spec = base.model_copy(update={"train": train})
    found: dict[str, dict[str, float]] = {}
    for gate_id in GATES:
        _epoch_ms(spec, gate_id, 1, True)  # warm-up
        one = _epoch_ms(spec, gate_id, 1, True)
        stacked = _epoch_ms(spec, gate_id, 5, True)
        looped = _epoch_ms(spec, gate_id, 5, False)
        found[gate_id] = {
            "one_seed": one,
            "five_stacked": stacked,
            "five_looped": looped,
            "stacked_over_one": stacked / one,
            "looped_over_stacked": looped / stacked,
        }
    return found


def print_seed_costs(found: dict[str, dict[str, float]]) -> None:
    print(f"\n{TASK} (paper profile), ms per epoch: one seed, 5 seeds stacked (vmap), 5 looped")
    for gate_id, row in found.items():
        print(
            f"  {gate_id:<10} {row['one_seed']:7.1f} {row['five_stacked']:8.1f} "
            f"{row['five_looped']:8.1f}   5 stacked / 1: {row['stacked_over_one']:.2f}x, "
            f"loop / stacked: {row['looped_over_stacked']:.2f}x"
        )


SHARED_TASK = "facts/sliding-window"


def shared_pass_costs() -> dict[str, float]:
    """Bench item 11: a facts seed's updaters trained in one job over one read of the frozen
    trunk (``run_gates``) against each trained on its own (default profile, one seed, every
    updater; one warm process, a warm-up run first). Same numbers, checked here too."""
    from suite.gates.entries import gates as registry

    spec = load_task(SHARED_TASK, "default")
    family = get_family(spec.family)
    info = family.task_info(spec)
    seeds = RunSeeds(spec.master_seed, spec.id, 0)
    artifact = family.prepare(spec, seeds)
    ids = [g for g in registry.names() if get_gate(g).kind == "updater"]

    def build(gate_id: str):
        with seeded_global_rng(seeds.init):
            return get_gate(gate_id).build(info, {})

    def ctx() -> RunContext:
        return RunContext(seeds=seeds, artifact=artifact)

    family.run(spec, build(ids[0]), ctx())  # warm-up
    started = time.perf_counter()
    alone = [family.run(spec, build(g), ctx()) for g in ids]
    alone_s = time.perf_counter() - started
    started = time.perf_counter()
    together = family.run_gates(spec, [build(g) for g in ids], [ctx() for _ in ids])
    shared_s = time.perf_counter() - started
    same = all(
        not isinstance(t, BaseException) and t.metrics == a.metrics
        for a, t in zip(alone, together, strict=True)
    )
    return {
        "gates": len(ids),
        "alone_s": alone_s,
        "shared_s": shared_s,
        "alone_over_shared": alone_s / shared_s,
        "same_metrics": same,
    }


def print_shared_pass(found: dict[str, float]) -> None:
    print(
        f"\n{SHARED_TASK} (default profile, one seed), {found['gates']} updaters: "
        f"{found['alone_s']:.1f} s each on its own, {found['shared_s']:.1f} s over one data pass "
        f"({found['alone_over_shared']:.2f}x; same metrics: {found['same_metrics']})"
    )

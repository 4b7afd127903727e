"""Speed measurements (``nox -s bench``), kept out of the tests so tests never depend on timing.

1. Per gate, the cost of one training epoch of the anticipation task at paper scale (batch 512,
   T = 12) in the family's own training loop, vectorised ``forward`` against the same gate driven
   by a Python loop of ``step`` calls (the shape of the public prototypes, which loop over time).
2. The leaky-integrator scan (O(T^2 D), no Python loop) against its recurrence, forward and
   backward, at several sequence lengths.
3. Rendering the results site from disk for 20 gates × 15 tasks × 5 seeds of synthetic records
   (load, aggregate with bootstraps, render, export; the target is under 5 s).
4. The wall time of the paper profile of ``transition/anticipation`` for the 9 gates of Table 5 ×
   5 seeds × 800 epochs through the real runner (fresh results folder, all CPUs).
5. The cost of running an untrusted gate in its own process: the example submission trained on the
   default profile of ``transition/anticipation`` in the harness's process and through the proxy
   (shared-memory tensors, gradients sent back), and their ratio (goal: at most 1.5).
6. Dask: a sweep (the default profile of ``transition/anticipation``, 4 gates × 5 seeds) on a
   LocalCluster of 1 worker and of 2 workers (one thread each), and the speed-up (goal: at least
   1.8 on 2 cores).
7. The facts family: milliseconds per training step of each updater in the family's own loop at
   the paper profile of ``facts/sliding-window`` (batch 16, T = 84, frozen base), and the ratio of
   ``lerp`` (sequential) to ``lerp-scan`` (parallel), the preprint's 2.77x claim.
8. The efficiency table of expert layers (``suite.tasks.families.lm.efficiency``) at Table 6's
   batch (256 × 63 tokens, d 64) for E = 2, 5 (the DSC paper's MoE, top-2) and 8 experts: soft
   mixing, top-k batched, top-k looped over experts (the "standard MoE" of DSC's latency claim), an
   iso-active dense MLP and DSC; latency (``torch.utils.benchmark``, one thread, median after
   warm-up), ratio to the batched top-k, parameters, FLOPs per token and allocated memory.
9. Seeds trained together: one seed against five stacked into one vectorised pass and five in a
   loop (``suite.bench.seeds``).
10. How an epoch's cost grows with sequence length and batch: ms per epoch and peak allocated
    memory of a few gates on ``transition/anticipation`` (paper profile) for T = 16 to 1024 at a
    fixed batch and B = 64 to 1024 at a fixed T (``suite.bench.scaling``).
11. A facts seed's updaters over one data pass against each alone (``suite.bench.seeds``).
12. Where the time goes: a sample of default-profile runs timed, their matrix products counted,
    and the share of the time those products would take at this core's in-cache speed
    (``suite.bench.roofline``).
13. What fusing operators would buy: a training step eager against ``torch.compile``, and torch's
    softmax over a few experts against exp/sum written out (``suite.bench.fusion``).

Results are printed and written to ``results/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from suite.bench.fusion import fusion_costs, print_fusion
from suite.bench.roofline import print_roofline, where_time_goes
from suite.bench.scaling import print_scaling, scaling_costs
from suite.bench.seeds import print_seed_costs, print_shared_pass, seed_costs, shared_pass_costs
from suite.bench.sweeps import (
    DASK_GATES,
    TABLE5_GATES,
    TASK,
    ablation_wall_time,
    dask_speed_up,
    proxy_overhead,
    site_render_time,
    table5_command_time,
)
from suite.contract import Feedback, GateOutput, RouterGate, State
from suite.gates.entries import get_gate
from suite.gates.kinds import kinds
from suite.runs.jobs import pin_threads
from suite.runs.provenance import hardware
from suite.runs.setup import default_workers
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.families.lm.efficiency import moe_latency, print_moe
from suite.tasks.family import RunContext, get_family
from suite.tasks.loading import load_task


class StepLoop(RouterGate):
    """A gate driven one position at a time through ``step`` (the shape of the public
    prototypes, which loop over time): the same parameters, the streaming path."""

    def __init__(self, gate: RouterGate) -> None:
        super().__init__(gate.info)
        self.inner = gate

    def forward(self, x: torch.Tensor, state: State = None) -> GateOutput:
        return GateOutput(*kinds.get("router").stream(self.inner, x, state))

    def observe(self, feedback: Feedback) -> None:
        self.inner.observe(feedback)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        return self.inner.diagnostics()


def epoch_cost(gate_id: str, epochs: int, per_step: bool) -> float:
    """Milliseconds per training epoch (data, forward, loss, backward, Adam, observe, metrics) in
    the family's own training loop, at the paper profile's batch and length."""
    base = load_task(TASK, "paper")
    spec = base.model_copy(
        update={"train": base.train.model_copy(update={"epochs": epochs, "eval_window": 1})}
    )
    family = get_family(spec.family)
    seeds = RunSeeds(0, TASK, 0)
    with seeded_global_rng(seeds.init):
        gate = get_gate(gate_id).build(family.task_info(spec))
    timed = StepLoop(gate) if per_step else gate
    warm = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": 3})})
    family.run(warm, timed, RunContext(seeds=seeds))  # first-call costs (lazy imports) excluded
    started = time.perf_counter()
    family.run(spec, timed, RunContext(seeds=seeds))
    return (time.perf_counter() - started) / epochs * 1000.0


def scan_cost(T: int, batch: int, repeats: int = 20) -> tuple[float, float]:
    """(scan ms, recurrence ms) for forward + backward of a 16-wide leaky integrator."""
    from baselines.temporal_memory import LeakyIntegrator

    memory = LeakyIntegrator(16)
    x = torch.randn(batch, T, 16, requires_grad=True)

    def recurrence() -> torch.Tensor:
        h, out = None, []
        for t in range(T):
            h = memory.step(x[:, t], h)
            out.append(h)
        return torch.stack(out, dim=1)

    timings = []
    for fn in (lambda: memory.scan(x), recurrence):
        for _ in range(3):
            fn().sum().backward()
        started = time.perf_counter()
        for _ in range(repeats):
            fn().sum().backward()
        timings.append((time.perf_counter() - started) / repeats * 1000.0)
    return timings[0], timings[1]


FACTS_TASK = "facts/sliding-window"
FACTS_GATES = ["no-updater", "lerp", "lerp-scan", "delta-rule", "gated-delta", "routed-updater"]


def updater_step_ms(gate_id: str, steps: tuple[int, int] = (5, 25), repeats: int = 3) -> float:
    """Milliseconds per training step of an updater on the frozen base: the difference of two
    runs that train ``steps`` steps (evaluation and set-up cancel out), the median over
    ``repeats`` pairs (one pair's difference varied by a third from run to run)."""
    from suite.tasks.families.facts.pretrain import ACCURACY_KEY, build_base

    paper = load_task(FACTS_TASK, "paper")
    family = get_family(paper.family)
    seeds = RunSeeds(0, FACTS_TASK, 0)
    with seeded_global_rng(seeds.derive("bench")):  # speed does not depend on trained weights
        artifact = dict(build_base(paper).state_dict())
    artifact[ACCURACY_KEY] = torch.tensor(1.0)

    def run_s(n: int) -> float:
        spec = paper.model_copy(update={
            "train": paper.train.model_copy(update={"steps": n}),
            "eval": paper.eval.model_copy(update={"batches": 1, "modes": ["in_context"]}),
        })  # fmt: skip
        with seeded_global_rng(seeds.init):
            gate = get_gate(gate_id).build(family.task_info(spec))
        started = time.perf_counter()
        family.run(spec, gate, RunContext(seeds=seeds, artifact=artifact))
        return time.perf_counter() - started

    run_s(1)  # warms up lazy imports and kernels
    differences = [run_s(steps[1]) - run_s(steps[0]) for _ in range(repeats)]
    return statistics.median(differences) / (steps[1] - steps[0]) * 1000.0


def facts_step_costs() -> dict[str, float]:
    costs = {g: updater_step_ms(g) for g in FACTS_GATES}
    costs["lerp_over_lerp_scan"] = costs["lerp"] / costs["lerp-scan"]
    return costs


def update_report(path: Path, key: str, value: object) -> None:
    """Store one item in an existing bench record (or a new one), leaving its other items."""
    report = json.loads(path.read_text()) if path.exists() else {"hardware": hardware()}
    report[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print(f"{key} written to {path}")


def device_key(item: str, device: str) -> str:
    """The bench record's key of an item timed on ``device``: the item on the CPU, else the item
    with the device kind (``moe_latency_ms_cuda``), so a GPU's numbers sit beside the CPU's."""
    kind = torch.device(device).type
    return item if kind == "cpu" else f"{item}_{kind}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.bench", description=__doc__)
    parser.add_argument("--epochs", type=int, default=100, help="epochs timed per gate")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the 9 × 5 × 800 sweep")
    parser.add_argument(
        "--only-proxy", action="store_true", help="measure only the proxy's overhead (item 5)"
    )
    parser.add_argument(
        "--only-dask", action="store_true", help="measure only Dask's 2-worker speed-up (item 6)"
    )
    parser.add_argument(
        "--only-facts", action="store_true", help="measure only the updaters' step costs (item 7)"
    )
    parser.add_argument(
        "--only-moe",
        action="store_true",
        help="measure only the efficiency table of expert layers (item 8) and store it in --out "
        "under moe_latency_ms, keeping the file's other items",
    )
    parser.add_argument(
        "--only-seeds", action="store_true", help="measure only seeds stacked vs alone (item 9)"
    )
    parser.add_argument(
        "--only-shared",
        action="store_true",
        help="measure only a facts seed's updaters over one data pass vs alone (item 11)",
    )
    parser.add_argument(
        "--only-scaling",
        action="store_true",
        help="measure only the growth of an epoch's cost with T and B (item 10) and store it in "
        "--out under scaling_ms, keeping the file's other items",
    )
    parser.add_argument(
        "--only-roofline",
        action="store_true",
        help="measure only where a sample of runs' time goes (item 12) and store it in --out "
        "under roofline, keeping the file's other items",
    )
    parser.add_argument(
        "--only-fusion",
        action="store_true",
        help="measure only what fusing operators would buy (item 13) and store it in --out, "
        "keeping the file's other items",
    )
    parser.add_argument(
        "--only-hf",
        action="store_true",
        help="measure only the transformers bridge's cost against the model's own router "
        "(item 14) and store it in --out, keeping the file's other items",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where --only-moe times the expert layers (cuda: stored as moe_latency_ms_cuda)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench.json"))
    args = parser.parse_args(argv)
    pin_threads(1)
    epoch_ms: dict[str, dict[str, float]] = {}
    scan_ms: dict[str, dict[str, float]] = {}
    report: dict[str, object] = {
        "hardware": hardware(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "epoch_ms": epoch_ms,
        "scan_ms": scan_ms,
    }
    if args.only_dask:
        print(json.dumps(dask_speed_up(), indent=1))
        return 0
    if args.only_facts:
        report["facts_step_ms"] = costs = facts_step_costs()
        print(json.dumps(costs, indent=1))
        return 0
    if args.only_proxy:
        report["proxy_overhead"] = proxy = proxy_overhead()
        print(json.dumps(proxy, indent=1))
        return 0
    if args.only_seeds:
        report["seed_ms"] = seeds = seed_costs()
        print_seed_costs(seeds)
        return 0
    if args.only_shared:
        report["shared_pass_s"] = shared = shared_pass_costs()
        print_shared_pass(shared)
        return 0
    if args.only_scaling:
        scaling = scaling_costs()
        print_scaling(scaling)
        update_report(args.out, "scaling_ms", scaling)
        return 0
    if args.only_roofline:
        roofline = where_time_goes()
        print_roofline(roofline)
        update_report(args.out, "roofline", roofline)
        return 0
    if args.only_fusion:
        fusion = fusion_costs()
        print_fusion(fusion)
        for key, value in fusion.items():
            update_report(args.out, key, value)
        return 0
    if args.only_hf:
        from suite.bench.hf import hf_bridge_costs, print_hf_bridge

        bridge = hf_bridge_costs(device=args.device)
        print_hf_bridge(bridge)
        update_report(args.out, device_key("hf_bridge_ms", args.device), bridge)
        return 0
    if args.only_moe:
        moe = moe_latency(device=args.device)
        print_moe(moe)
        update_report(args.out, device_key("moe_latency_ms", args.device), moe)
        return 0
    print(f"{'gate':<14} {'forward ms/epoch':>17} {'step loop ms/epoch':>19} {'speed-up':>9}")
    for gate_id in TABLE5_GATES:
        vectorised = epoch_cost(gate_id, args.epochs, per_step=False)
        if get_gate(gate_id).causal:
            looped = epoch_cost(gate_id, max(10, args.epochs // 4), per_step=True)
            ratio = f"{looped / vectorised:8.1f}x"
        else:
            looped, ratio = float("nan"), "   (n/a)"
        epoch_ms[gate_id] = {"forward": vectorised, "step_loop": looped}
        print(f"{gate_id:<14} {vectorised:17.2f} {looped:19.2f} {ratio}")
    print(f"\n{'T':>5} {'batch':>6} {'scan ms':>9} {'recurrence ms':>14}")
    for T, batch in ((12, 512), (64, 512), (256, 128)):
        scan, loop = scan_cost(T, batch)
        scan_ms[str(T)] = {"batch": batch, "scan": scan, "recurrence": loop}
        print(f"{T:>5} {batch:>6} {scan:9.2f} {loop:14.2f}")
    seconds, pages = site_render_time()
    report["site_render_s"] = {"gates": 20, "tasks": 15, "seeds": 5, "seconds": seconds}
    print(
        f"\nSite for 20 gates × 15 tasks × 5 seeds (1500 records): {pages} pages in {seconds:.2f} s"
    )
    report["dask_s"] = dask = dask_speed_up()
    print(
        f"\nDask LocalCluster, default profile of {TASK} × {len(DASK_GATES)} gates × 5 seeds "
        f"(medians of {len(dask['rounds'])} rounds): {dask['one_worker']:.1f} s on 1 worker, "
        f"{dask['two_workers']:.1f} s on 2: speed-up {dask['speed_up']:.2f}x"
    )
    proxy = proxy_overhead()
    report["proxy_overhead"] = proxy
    print(
        f"\nExample submission, default profile of {TASK} ({proxy['epochs']} epochs): "
        f"{proxy['in_process_s']:.2f} s in the harness's process, {proxy['proxy_s']:.2f} s in "
        f"its own process behind the proxy (medians of {proxy['repeats']}): {proxy['ratio']:.2f}x, "
        f"pairs {proxy['ratio_min']:.2f}x to {proxy['ratio_max']:.2f}x (metrics identical: "
        f"{proxy['same_metrics']})"
    )
    report["facts_step_ms"] = costs = facts_step_costs()
    print("\nfacts/sliding-window (paper profile), ms per training step of each updater:")
    for gate_id in FACTS_GATES:
        print(f"  {gate_id:<16} {costs[gate_id]:8.1f}")
    print(f"  lerp / lerp-scan: {costs['lerp_over_lerp_scan']:.2f}x (the preprint: 2.77x)")
    report["moe_latency_ms"] = moe = moe_latency()
    print_moe(moe)
    report["seed_ms"] = seeds = seed_costs()
    print_seed_costs(seeds)
    report["scaling_ms"] = scaling = scaling_costs()
    print_scaling(scaling)
    report["shared_pass_s"] = shared = shared_pass_costs()
    print_shared_pass(shared)
    report["roofline"] = roofline = where_time_goes()
    print_roofline(roofline)
    report.update(fusion := fusion_costs())
    print_fusion(fusion)
    from suite.bench.hf import hf_bridge_costs, print_hf_bridge

    report["hf_bridge_ms"] = bridge = hf_bridge_costs()
    print_hf_bridge(bridge)
    if not args.skip_sweep:
        workers = default_workers()
        wall = ablation_wall_time(workers)
        report["table5_paper_profile_s"] = wall
        report["table5_workers"] = workers
        print(
            f"\nPaper profile of {TASK}: {len(TABLE5_GATES)} gates × 5 seeds × 800 epochs "
            f"in {wall:.1f} s on {workers} workers ({hardware()})."
        )
        report["table5_all_routers_s"] = every = table5_command_time(workers)
        print(f"The command without --gate (every router and the submissions): {every:.1f} s.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

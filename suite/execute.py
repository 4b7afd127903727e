"""What a worker process does for one job: build the gate, run it, return plain data.

Jobs arrive as JSON-able payloads and results leave as JSON-able dicts, so the same functions serve
the local process-per-run executor and a Dask cluster. Only the parent process writes records.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

import torch

from suite.conformance import run_conformance
from suite.families import RunContext, get_family
from suite.registry import resolve_ref
from suite.seeding import RunSeeds, seeded_global_rng
from suite.spec import TaskSpec
from suite.submissions import execute_inspect


def pin_threads(n: int = 1) -> None:
    """One BLAS/OpenMP thread per run: parallelism comes from running several runs at once, and
    a fixed thread count keeps reductions (hence results) bit-identical."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)


def _spec(payload: dict[str, Any]) -> TaskSpec:
    family = get_family(payload["spec"]["family"])
    return family.spec_model.model_validate(payload["spec"])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def execute_run(payload: dict[str, Any]) -> dict[str, Any]:
    """Train one gate on one seed of one task; raises on any failure (the caller records it)."""
    pin_threads(payload.get("threads", 1))
    spec = _spec(payload)
    family = get_family(spec.family)
    entry = resolve_ref(payload["gate"])
    info = family.task_info(spec)
    seeds = RunSeeds(spec.master_seed, spec.id, payload["seed_index"])
    device = torch.device(payload.get("device", "cpu"))
    started = time.monotonic()
    deadline = started + float(payload.get("time_limit_s", spec.limits.time_s))
    with seeded_global_rng(seeds.init):
        gate = entry.build(info, payload["gate"].get("params_override")).to(device)
    n_params = sum(p.numel() for p in gate.parameters() if p.requires_grad)
    ctx = RunContext(seeds=seeds, device=device, deadline=deadline)
    output = family.run(spec, gate, ctx)
    return {
        "metrics": output.metrics,
        "traces": output.traces,
        "diagnostics": output.diagnostics,
        "notes": output.notes,
        "data_fingerprint": output.data_fingerprint,
        "n_params": n_params,
        "wall_time_s": time.monotonic() - started,
        "peak_rss_mb": _peak_rss_mb(),
        "seeds": seeds.as_dict(),
        "torch_threads": torch.get_num_threads(),
    }


def execute_conformance(payload: dict[str, Any]) -> dict[str, Any]:
    """Run the conformance checks of one gate on one task's shapes."""
    pin_threads(payload.get("threads", 1))
    spec = _spec(payload)
    family = get_family(spec.family)
    entry = resolve_ref(payload["gate"])
    info = family.task_info(spec)
    seed = RunSeeds(spec.master_seed, spec.id, 0).init
    report = run_conformance(
        entry,
        info,
        payload["gate"].get("params_override"),
        seed,
        max_params=spec.limits.max_params,
        declared_budget=payload["gate"].get("parameter_budget"),
    )
    return report.model_dump(mode="json")


JOB_FUNCTIONS = {"run": execute_run, "conformance": execute_conformance, "inspect": execute_inspect}


def execute(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return JOB_FUNCTIONS[kind](payload)

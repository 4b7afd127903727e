"""What a worker process does with one job: prepare an artefact, check a gate, or run one.

Jobs arrive as plain payloads and results leave as plain data, so the same functions serve the
local process-per-run executor and a Dask cluster. Only the parent process writes files.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import resource
import socket
import time
from collections.abc import Callable
from pathlib import Path
from traceback import format_exception
from types import SimpleNamespace
from typing import Any

import torch

from suite.contract import TaskInfo
from suite.gates.audit import AuditedGate
from suite.gates.conformance import run_conformance
from suite.gates.kinds import kinds
from suite.gates.proxy import GateClient, trainable_count
from suite.gates.resolve import resolve_ref
from suite.gates.submissions import execute_inspect
from suite.runs.allocator import pin_malloc_thresholds
from suite.runs.artifacts import load_artifact, to_bytes
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.family import RunContext, TaskFamily, families, get_family
from suite.tasks.spec import TaskSpec


def pin_threads(n: int = 1) -> None:
    """One BLAS/OpenMP thread per run: parallelism comes from running several runs at once, and
    a fixed thread count keeps reductions (hence results) bit-identical. Also pins glibc's
    allocator thresholds (``suite.runs.allocator``): fewer page faults, and none of the allocator
    setting a Dask worker starts with, which halves speed."""
    pin_malloc_thresholds()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)


def worker_device(name: str) -> torch.device:
    """The device of this worker's runs. ``cuda`` (no index) on a machine with several GPUs
    gives each worker of the process pool its own GPU, in turn by the worker's number; a Dask
    worker started per GPU (``CUDA_VISIBLE_DEVICES=N dask worker ...``) sees one GPU, or names
    its share with ``GATEBENCH_WORKER_INDEX``. An explicit ``cuda:N`` is kept."""
    device = torch.device(name)
    if device.type != "cuda" or device.index is not None or not torch.cuda.is_available():
        return device
    count = torch.cuda.device_count()
    if count < 2:
        return device
    identity = multiprocessing.current_process()._identity  # (n,) in the n-th pool worker
    index = identity[0] - 1 if identity else int(os.environ.get("GATEBENCH_WORKER_INDEX", "0"))
    return torch.device("cuda", index % count)


def deterministic_device(device: torch.device) -> None:
    """On a GPU: plain fp32 matmuls (no TF32) and deterministic cuBLAS and cuDNN kernels, so a
    run repeated on the same GPU gives the same numbers; ops without a deterministic CUDA kernel
    warn instead of failing. Nothing changes on CPU, which is deterministic at a fixed thread
    count already."""
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before the first cuBLAS call
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def _spec(payload: dict[str, Any]) -> tuple[TaskSpec, TaskFamily[Any]]:
    """The job's spec and family; a family registered outside ``suite.tasks.families`` (e.g. by
    a test) is found by importing the module the payload names."""
    name = payload["spec"]["family"]
    if name not in families and payload.get("family_module"):
        importlib.import_module(payload["family_module"])
    family = get_family(name)
    return family.spec_model.model_validate(payload["spec"]), family


def _info(family: TaskFamily[Any], spec: TaskSpec, payload: dict[str, Any]) -> TaskInfo:
    """The gate's ``TaskInfo``: with the generator's settings only for a ceiling of GateBench's
    own, also where it runs in a process of its own (--isolate-baselines); never a submission."""
    gate = payload["gate"]
    origin = gate.get("origin", "untrusted" if isolated(payload) else "baseline")
    trusted = origin == "baseline" and not gate.get("submission_dir")
    who = SimpleNamespace(
        origin="baseline" if trusted else "untrusted", ceiling=gate.get("ceiling")
    )
    return family.info_for(spec, who)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def execute_prepare(payload: dict[str, Any]) -> dict[str, Any]:
    """Build a family's artefact for one (task, seed); the parent writes it."""
    pin_threads(payload.get("threads", 1))
    spec, family = _spec(payload)
    seeds = RunSeeds(spec.master_seed, spec.id, payload["seed_index"], payload.get("salt", ""))
    started = time.monotonic()
    artifact = family.prepare(spec, seeds)
    return {"blob": to_bytes(artifact), "wall_time_s": time.monotonic() - started}


def isolated(payload: dict[str, Any]) -> bool:
    """Whether the job's gate runs in a process of its own: every gate that is not a baseline
    (submissions, the tests' hostile gates); baselines only when asked (--isolate-baselines)."""
    gate = payload.get("gate") or {}
    return bool(gate.get("submission_dir") or gate.get("isolate"))


def execute_run(payload: dict[str, Any], host: socket.socket | None = None) -> dict[str, Any]:
    """Train one gate on one seed of one task; raises on any failure (the caller records it).

    With ``host`` (a connection to the gate's own process) the gate is built and run there and
    this process never imports its code; without, the gate is built here (baselines)."""
    pin_threads(payload.get("threads", 1))
    spec, family = _spec(payload)
    info = _info(family, spec, payload)
    seeds = RunSeeds(spec.master_seed, spec.id, payload["seed_index"], payload.get("salt", ""))
    device = worker_device(payload.get("device", "cpu"))
    deterministic_device(device)
    artifact = None
    if payload.get("artifact"):
        artifact = load_artifact(payload["artifact"]["path"], payload["artifact"]["hash"])
    started = time.monotonic()
    deadline = started + float(payload.get("time_limit_s", spec.limits.time_s))
    overrides = payload["gate"].get("params_override")
    client = GateClient(host, deadline + 5.0) if host is not None else None
    if client is not None:
        gate = client.build(info, overrides, seeds.init, device)
    else:
        with seeded_global_rng(seeds.init):
            gate = resolve_ref(payload["gate"]).build(info, overrides).to(device)
    n_params = trainable_count(gate)
    ctx = RunContext(seeds=seeds, device=device, deadline=deadline, artifact=artifact)
    runner = _audited(gate, info, payload)
    try:
        output = family.run(spec, runner, ctx)
        if client is not None and (stopped := client.finish()):
            output.notes.append(f"the harness stopped {stopped} process(es) the gate left running")
    finally:
        if client is not None:
            client.close()
    return _run_value(output, runner, n_params, time.monotonic() - started, seeds)


def _audited(gate: Any, info: TaskInfo, payload: dict[str, Any]) -> Any:
    if payload.get("audit_seed") is None:
        return gate
    return AuditedGate(gate, kinds.get(info.kind), int(payload["audit_seed"]))


def execute_run_seeds(payload: dict[str, Any]) -> dict[str, Any]:
    """Train one trusted gate on several seeds of one task in one job (``seed_indices``), so
    the family can stack them into one vectorised pass (``TaskFamily.run_seeds``). Returns one
    entry per seed: the value ``execute_run`` returns, or the seed's own failure."""
    indices = [int(i) for i in payload["seed_indices"]]
    members = [(payload["gate"], index) for index in indices]

    def train(family: TaskFamily[Any], spec: TaskSpec, runners: list[Any], ctxs: list[Any]):
        return family.run_seeds(spec, runners, ctxs)

    note = f"trained in one job with seeds {indices}; wall time is the job's, shared equally"
    return _execute_many(payload, members, train, note)


def execute_run_gates(payload: dict[str, Any]) -> dict[str, Any]:
    """Train several trusted gates on one seed of one task in one job (``gates``), so the
    family reads that seed's data once for all of them (``TaskFamily.run_gates``). Returns one
    entry per gate: the value ``execute_run`` returns, or the gate's own failure."""
    index = int(payload["seed_index"])
    members = [(gate, index) for gate in payload["gates"]]

    def train(family: TaskFamily[Any], spec: TaskSpec, runners: list[Any], ctxs: list[Any]):
        return family.run_gates(spec, runners, ctxs)

    names = ", ".join(str(g.get("id")) for g in payload["gates"])
    note = f"trained in one job with gates {names} (one data pass); wall time shared equally"
    return _execute_many(payload, members, train, note)


def _execute_many(
    payload: dict[str, Any],
    members: list[tuple[dict[str, Any], int]],
    train: Callable[[TaskFamily[Any], TaskSpec, list[Any], list[Any]], list[Any]],
    note: str,
) -> dict[str, Any]:
    """Build each (gate entry, seed index) member under its own seeds, train them together
    with ``train`` and return one entry per member."""
    pin_threads(payload.get("threads", 1))
    spec, family = _spec(payload)
    device = worker_device(payload.get("device", "cpu"))
    deterministic_device(device)
    started = time.monotonic()
    # the runs share the job's time: each run's limit, times the runs
    limit = float(payload.get("time_limit_s", spec.limits.time_s))
    deadline = started + limit * len(members)
    runners, ctxs, counts = [], [], []
    loaded: dict[str, Any] = {}  # an artefact shared by several members is read once
    for entry, index in members:
        seeds = RunSeeds(spec.master_seed, spec.id, index, payload.get("salt", ""))
        artifact = None
        found = (payload.get("artifacts") or {}).get(str(index)) or payload.get("artifact")
        if found:
            if found["path"] not in loaded:
                loaded[found["path"]] = load_artifact(found["path"], found["hash"])
            artifact = loaded[found["path"]]
        info = _info(family, spec, {**payload, "gate": entry})  # a ceiling gets its own
        with seeded_global_rng(seeds.init):
            gate = resolve_ref(entry).build(info, entry.get("params_override")).to(device)
        counts.append(trainable_count(gate))
        runners.append(_audited(gate, info, payload))
        ctxs.append(RunContext(seeds=seeds, device=device, deadline=deadline, artifact=artifact))
    outputs = train(family, spec, runners, ctxs)
    share = (time.monotonic() - started) / len(members)
    runs: list[dict[str, Any]] = []
    for runner, ctx, count, output in zip(runners, ctxs, counts, outputs, strict=True):
        if isinstance(output, BaseException):
            first = (str(output).strip().splitlines() or [""])[0]
            reason = f"{type(output).__name__}: {first}" if first else type(output).__name__
            runs.append({"error": reason, "detail": "".join(format_exception(output))})
            continue
        value = _run_value(output, runner, count, share, ctx.seeds)
        value["notes"] = [*value["notes"], note]
        runs.append(value)
    return {"runs": runs}


def _run_value(
    output: Any, runner: Any, n_params: int | None, wall_s: float, seeds: RunSeeds
) -> dict[str, Any]:
    """What a run job returns for one seed (plain data, for the parent to record)."""
    return {
        "audits": runner.done if isinstance(runner, AuditedGate) else [],
        "metrics": output.metrics,
        "arrays": {
            name: {"values": a.as_array().tolist(), "coords": a.coords, "marks": a.marks}
            for name, a in output.arrays.items()
        },
        "diagnostics": output.diagnostics,
        "notes": output.notes,
        "data_fingerprint": output.data_fingerprint,
        "n_params": n_params,
        "wall_time_s": wall_s,
        "peak_rss_mb": _peak_rss_mb(),
        "seeds": seeds.as_dict(),
        "torch_threads": torch.get_num_threads(),
    }


def execute_conformance(
    payload: dict[str, Any], host: socket.socket | None = None
) -> dict[str, Any]:
    """Run the conformance checks of one gate on one task's shapes (through the gate's own
    process when ``host`` is given: the checks never run beside submitted code)."""
    pin_threads(payload.get("threads", 1))
    spec, family = _spec(payload)
    info: TaskInfo = _info(family, spec, payload)
    seed = RunSeeds(spec.master_seed, spec.id, 0).init
    overrides = payload["gate"].get("params_override")
    build = None
    client = None
    if host is not None:
        client = GateClient(host, time.monotonic() + float(payload.get("time_limit_s", 600)))
        entry: Any = SimpleNamespace(
            id=payload["gate"]["id"], causal=bool(payload["gate"].get("causal", True))
        )

        def build() -> Any:
            return client.build(info, overrides, seed, "cpu")
    else:
        entry = resolve_ref(payload["gate"])
    try:
        report = run_conformance(
            entry,
            info,
            overrides,
            seed,
            max_params=spec.limits.max_params,
            declared_budget=payload["gate"].get("parameter_budget"),
            build=build,
        )
    finally:
        if client is not None:
            client.close()
    return report.model_dump(mode="json")


def job_readable(payload: dict[str, Any]) -> list[Path]:
    """What one job reads beyond the system, Python and GateBench's code: its own submission's
    folder and its prepared artefact's folder (never other submissions or the records)."""
    gate = payload.get("gate") or {}
    folders = [payload.get("submission_dir"), gate.get("submission_dir")]
    if gate.get("module_file"):
        folders.append(str(Path(gate["module_file"]).parent))
    if payload.get("artifact"):
        folders.append(str(Path(payload["artifact"]["path"]).parent))
    for found in (payload.get("artifacts") or {}).values():
        folders.append(str(Path(found["path"]).parent))
    return [Path(f) for f in folders if f]


JOB_FUNCTIONS = {
    "prepare": execute_prepare,
    "run": execute_run,
    "run-seeds": execute_run_seeds,
    "run-gates": execute_run_gates,
    "conformance": execute_conformance,
    "inspect": execute_inspect,
}


def execute(
    kind: str, payload: dict[str, Any], host: socket.socket | None = None
) -> dict[str, Any]:
    """Run one job; ``host`` connects run and conformance jobs to their gate's own process."""
    if kind in ("run", "conformance"):
        return JOB_FUNCTIONS[kind](payload, host)
    return JOB_FUNCTIONS[kind](payload)

"""Synthetic run records, for measuring and testing the layers after the runs (aggregate, site)
at sizes and with contents (hostile names, odd URLs, several families) that real sweeps do not
produce.

Each task has two scalars (``acc``, the primary, and ``loss``), a curve (``p_correct_by_position``
with the transition marked) and a matrix (``routing``: share of each domain's tokens sent to each
expert). Task ``t`` belongs to family ``t % n_families``: ``transition`` first, then
``synthetic-1``, ``synthetic-2``, ...
"""

from __future__ import annotations

import numpy as np

from suite.runs.provenance import now
from suite.runs.records import ArrayValue, GateRef, Provenance, RunRecord, TaskRef
from suite.tasks.spec import Claim, MetricInfo

POSITIONS = list(range(12))
TRANSITION = 5
DOMAINS, EXPERTS = 3, 4

METRICS = {
    "acc": MetricInfo(description="accuracy", higher_is_better=True, ideal=1.0),
    "loss": MetricInfo(description="loss", higher_is_better=False, ideal=0.0),
    "p_correct_by_position": MetricInfo(
        description="probability on the correct expert at each position",
        kind="curve",
        axes=("position t",),
        label="p(correct)",
        ideal=1.0,
    ),
    "routing": MetricInfo(
        description="share of each domain's tokens routed to each expert",
        kind="matrix",
        axes=("domain", "expert"),
        label="share of tokens",
    ),
}


def family_name(index: int) -> str:
    return "transition" if index == 0 else f"synthetic-{index}"


def _provenance() -> Provenance:
    return Provenance(
        suite_version="0.0.0-synthetic",
        git_commit="synthetic",
        git_dirty=False,
        python="3.11",
        torch="2.13.0",
        numpy=np.__version__,
        platform="synthetic",
        device="cpu",
        command="synthetic",
        created_at=now(),
    )


def _arrays(rng: np.random.Generator, acc: float) -> dict[str, ArrayValue]:
    curve = np.clip(acc + rng.normal(0, 0.05, len(POSITIONS)), 0, 1)
    curve[TRANSITION] *= 0.5  # the dip at the switch
    logits = rng.normal(0, 1, (DOMAINS, EXPERTS)) + 3 * acc * np.eye(DOMAINS, EXPERTS)
    routing = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {
        "p_correct_by_position": ArrayValue(
            values=[float(v) for v in curve],
            coords={"position t": POSITIONS},
            marks={"transition": TRANSITION},
        ),
        "routing": ArrayValue(
            values=routing.tolist(),
            coords={
                "domain": [f"d{i}" for i in range(DOMAINS)],
                "expert": list(range(EXPERTS)),
            },
        ),
    }


def synthetic_records(
    n_gates: int,
    n_tasks: int,
    n_seeds: int,
    seed: int = 0,
    gate_names: list[str] | None = None,
    gate_url: str = "https://example.org/paper",
    n_families: int = 1,
) -> list[RunRecord]:
    rng = np.random.default_rng(seed)
    names = gate_names or [f"gate-{i:02d}" for i in range(n_gates)]
    names = ["affinity", *[n for n in names if n != "affinity"]][:n_gates]
    provenance = _provenance()
    records = []
    for t in range(n_tasks):
        task = TaskRef(
            id=f"synthetic/task-{t:02d}",
            family=family_name(t % n_families),
            version=1,
            spec_hash=f"s{t:015d}",
            paper_spec_hash=f"s{t:015d}",
            title=f"Synthetic task {t}",
            description="Generated for benchmarks and tests.",
            primary_metric="acc",
            reference_gate="affinity",
            metrics=METRICS,
            claims=[
                Claim(gate=names[-1], metric="acc", mean=0.7, sd=0.01, n=5, source="synthetic")
            ],
        )
        for g, name in enumerate(names):
            gate = GateRef(
                id=name,
                origin="synthetic",
                description=f"Synthetic gate {name}",
                paper=f"Paper of {name}",
                url=gate_url,
                causal=True,
                source_hash=f"h{g:015d}",
            )
            quality = 0.5 + 0.4 * g / max(1, len(names) - 1)
            for s in range(n_seeds):
                acc = float(np.clip(quality + rng.normal(0, 0.02), 0, 1))
                records.append(
                    RunRecord(
                        key=f"k{t:03d}{g:03d}{s:03d}",
                        status="ok",
                        profile="default",
                        seed_index=s,
                        task=task,
                        gate=gate,
                        metrics={"acc": acc, "loss": float(1 - acc)},
                        arrays=_arrays(rng, acc),
                        conformance={
                            "checks": [
                                {
                                    "name": "causality",
                                    "passed": True,
                                    "detail": "synthetic",
                                    "skipped": False,
                                }
                            ]
                        },
                        provenance=provenance,
                    )
                )
    return records

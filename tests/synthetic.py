"""Synthetic run records, for measuring and testing the layers after the runs (aggregate, site)
at sizes and with contents (hostile names, odd URLs) that real sweeps do not produce."""

from __future__ import annotations

import numpy as np

from suite.runs.provenance import now
from suite.runs.records import GateRef, MetricRef, Provenance, RunRecord, TaskRef


def synthetic_records(
    n_gates: int,
    n_tasks: int,
    n_seeds: int,
    seed: int = 0,
    gate_names: list[str] | None = None,
    gate_url: str = "https://example.org/paper",
) -> list[RunRecord]:
    rng = np.random.default_rng(seed)
    names = gate_names or [f"gate-{i:02d}" for i in range(n_gates)]
    names = ["affinity", *[n for n in names if n != "affinity"]][:n_gates]
    provenance = Provenance(
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
    records = []
    for t in range(n_tasks):
        task = TaskRef(
            id=f"synthetic/task-{t:02d}",
            family="transition",
            version=1,
            spec_hash=f"s{t:015d}",
            paper_spec_hash=f"s{t:015d}",
            title=f"Synthetic task {t}",
            description="Generated for benchmarks and tests.",
            primary_metric="acc",
            reference_gate="affinity",
            metrics={
                "acc": MetricRef(description="accuracy", higher_is_better=True, ideal=1.0),
                "loss": MetricRef(description="loss", higher_is_better=False, ideal=0.0),
            },
            claims=[
                {
                    "gate": names[-1],
                    "metric": "acc",
                    "mean": 0.7,
                    "sd": 0.01,
                    "n": 5,
                    "source": "synthetic",
                }
            ],
        )
        positions = list(range(12))
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
                        traces={
                            "p_correct_by_position": {
                                "x": positions,
                                "y": [
                                    float(v) for v in np.clip(acc + rng.normal(0, 0.05, 12), 0, 1)
                                ],
                                "x_label": "position t",
                                "y_label": "p(correct)",
                                "marks": {"transition": 5},
                            }
                        },
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

"""Expand (tasks x gates x seeds) into planned runs, each with a content key and a record path.

A gate is paired only with families that run its kind. The key hashes everything that can change
a run's numbers: the resolved spec's identity, the family's source, the prepared artefact's
content, the gate id with its resolved hyper-parameters and source hash, the seed index and the
suite version. Two profiles with the same settings therefore share records; any change to code or
spec misses the cache instead of serving a stale result, and one gate's hyper-parameters never
invalidate another gate's runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import suite
from suite.contract import TaskInfo
from suite.gates import conformance, kinds
from suite.gates.entries import GateLike
from suite.identity import files_hash, slug, stable_hash
from suite.runs.records import GateRef, TaskRef
from suite.tasks.family import get_family
from suite.tasks.spec import TaskSpec

ArtifactHashes = Callable[[TaskSpec, int], str]
"""(profile-resolved spec, seed index) -> content hash of its prepared artefact ("" for none)."""


@functools.cache
def checks_hash() -> str:
    """Hash of the conformance checks' own source and the kinds' adapters."""
    return files_hash([Path(conformance.__file__), Path(kinds.__file__)])


def _bayes_optimal(gate_id: str | None) -> bool:
    """Whether the registered gate ``gate_id`` is an exact Bayes-optimal ceiling."""
    from suite.gates.entries import all_gates

    entry = next((g for g in all_gates() if g.id == gate_id), None) if gate_id else None
    return bool(entry is not None and getattr(entry.cls, "bayes_optimal", False))


def task_ref(spec: TaskSpec, paper_spec_hash: str) -> TaskRef:
    """The task summary every record carries (so records can be read without the specs)."""
    return TaskRef(
        id=spec.id,
        family=spec.family,
        version=spec.version,
        spec_hash=spec.spec_hash(),
        paper_spec_hash=paper_spec_hash,
        title=spec.title,
        description=spec.description,
        source=spec.source.model_dump(),
        primary_metric=spec.primary_metric,
        reference_gate=spec.reference_gate,
        ceiling_gate=spec.ceiling_gate,
        ceiling_bound=_bayes_optimal(spec.ceiling_gate),
        metrics=spec.metric_info(),
        variant_of=spec.variant_of,
        ablation=spec.ablation,
        claims=list(spec.claims),
        deviations=list(spec.deviations),
        paper_setting=spec.paper_setting,
        relation=spec.relation,
        relation_note=spec.relation_note,
        family_source_hash=get_family(spec.family).source_hash(),
    )


def current_task_refs(tasks: list[TaskSpec], profile: str) -> dict[str, TaskRef]:
    """Task summaries of the specs as they are now, for choosing and labelling records."""
    return {
        t.id: task_ref(t.for_profile(profile), t.for_profile("paper").spec_hash()) for t in tasks
    }


@dataclass(frozen=True)
class Pair:
    """One gate on one task (profile-resolved), before seeds are expanded."""

    spec: TaskSpec
    paper_spec_hash: str
    gate: GateLike
    info: TaskInfo
    overrides: dict[str, Any]
    params: dict[str, Any]
    source_hash: str

    @property
    def label(self) -> str:
        return f"{self.spec.id} × {self.gate.id}"

    def gate_payload(self) -> dict[str, Any]:
        return {**self.gate.ref(), "params_override": self.overrides}

    def conformance_key(self) -> str:
        """Checks rerun when the gate, its parameters, the task's shapes or the checks change."""
        return stable_hash(
            {
                "suite": suite.__version__,
                "checks": checks_hash(),
                "limit": self.spec.limits.max_params,
                "budget": self.gate.ref().get("parameter_budget"),
                "gate": self.gate.id,
                "params": self.params,
                "source": self.source_hash,
                "info": self.info.as_dict(),
            }
        )

    def conformance_path(self, results: Path) -> Path:
        return (
            results
            / "conformance"
            / slug(self.spec.id)
            / f"{slug(self.gate.id)}-{self.conformance_key()}.json"
        )

    def task_ref(self) -> TaskRef:
        """The task summary of this pair's records (built once: every record of the pair and
        the check of its outputs use it)."""
        if "_task_ref" not in self.__dict__:
            object.__setattr__(self, "_task_ref", task_ref(self.spec, self.paper_spec_hash))
        return self.__dict__["_task_ref"]

    def gate_ref(self) -> GateRef:
        g = self.gate
        return GateRef(
            id=g.id,
            kind=g.kind,
            origin=g.origin,
            description=g.description,
            paper=g.paper,
            url=g.url,
            equation=g.equation,
            causal=g.causal,
            ceiling=g.ceiling,
            params=self.params,
            authors=list(g.authors),
            source_hash=self.source_hash,
        )


@dataclass(frozen=True)
class PlannedRun:
    pair: Pair
    profile: str
    seed_index: int
    key: str
    path: Path
    artifact: str = ""  # content hash of the prepared artefact, "" when the family has none

    @property
    def label(self) -> str:
        return f"{self.pair.label} seed {self.seed_index}"


@dataclass
class Plan:
    profile: str
    runs: list[PlannedRun] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (task, gate, reason)


def run_key(pair: Pair, seed_index: int, artifact: str = "", salt: str = "") -> str:
    return stable_hash(
        {
            "suite": suite.__version__,
            "salt": salt,
            "task": pair.spec.identity(),
            "family_source": get_family(pair.spec.family).source_hash(),
            "artifact": artifact,
            "gate": pair.gate.id,
            "params": pair.params,
            "source": pair.source_hash,
            "seed_index": seed_index,
        }
    )


def record_path(results: Path, task_id: str, gate_id: str, seed_index: int, key: str) -> Path:
    return results / "runs" / slug(task_id) / slug(gate_id) / f"seed{seed_index}-{key}.json"


def seed_count(spec: TaskSpec, seeds: int | None) -> int:
    return seeds if seeds is not None else spec.seeds


def make_plan(
    tasks: list[TaskSpec],
    gates: list[GateLike],
    profile: str,
    results: Path,
    seeds: int | None = None,
    artifacts: ArtifactHashes | None = None,
    salt: str = "",
) -> Plan:
    plan = Plan(profile=profile)
    for base in tasks:
        spec = base.for_profile(profile)
        paper_hash = base.for_profile("paper").spec_hash()
        family = get_family(spec.family)
        for gate in gates:
            if gate.kind != family.gate_kind:
                continue  # a gate runs only in families of its kind
            info = family.info_for(spec, gate)
            overrides = dict(spec.gate_params.get(gate.id, {}))
            params = gate.resolved_params(overrides)
            ok, reason = gate.supports(info, overrides)
            if not ok:
                plan.skipped.append((spec.id, gate.id, reason))
                continue
            pair = Pair(spec, paper_hash, gate, info, overrides, params, gate.source_hash())
            plan.pairs.append(pair)
            for seed_index in range(seed_count(spec, seeds)):
                artifact = artifacts(spec, seed_index) if artifacts else ""
                key = run_key(pair, seed_index, artifact, salt)
                path = record_path(results, spec.id, gate.id, seed_index, key)
                plan.runs.append(PlannedRun(pair, profile, seed_index, key, path, artifact))
    return plan

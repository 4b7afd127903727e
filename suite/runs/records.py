"""Run records: one JSON file per (task, gate, seed), self-describing and written atomically.

A record carries what is needed to aggregate and render it without the specs or the registry (task
and gate summaries, metric directions), and what is needed to trust it (its key and provenance).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from suite.tasks.spec import ARRAY_DIMS, Ablation, Claim, MetricInfo

SCHEMA_VERSION = 2

Status = Literal["ok", "failed", "rejected"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskRef(_Model):
    """The task as the run saw it."""

    id: str
    family: str
    version: int
    spec_hash: str
    paper_spec_hash: str = ""  # claims are judged only when the run's settings are the paper's
    title: str
    description: str = ""
    source: dict[str, str] = Field(default_factory=dict)
    primary_metric: str
    ceiling_gate: str | None = None
    ceiling_bound: bool = False  # the ceiling gate is the exact Bayes-optimal causal rule
    reference_gate: str | None = None
    metrics: dict[str, MetricInfo]  # scalars first, then arrays
    variant_of: str | None = None
    ablation: Ablation | None = None
    claims: list[Claim] = Field(default_factory=list)
    deviations: list[str] = Field(default_factory=list)  # from the paper's settings, with reasons
    paper_setting: str = ""
    relation: str = "same"  # same | reduced-scale | transfer (how the paper profile relates)
    relation_note: str = ""
    family_source_hash: str = ""

    def scalar_metrics(self) -> dict[str, MetricInfo]:
        return {m: i for m, i in self.metrics.items() if i.is_scalar}

    def array_metrics(self) -> dict[str, MetricInfo]:
        return {m: i for m, i in self.metrics.items() if not i.is_scalar}


class GateRef(_Model):
    """The gate as the run built it."""

    id: str
    kind: str = "router"
    origin: str
    description: str
    paper: str = ""
    url: str = ""
    equation: str = ""
    causal: bool
    ceiling: bool = False  # causal, but a labelled ceiling (knows the generator, or sees every
    # task at once): shown, never ranked
    params: dict[str, Any] = Field(default_factory=dict)
    authors: list[str] = Field(default_factory=list)
    source_hash: str


class ArrayValue(_Model):
    """One array metric of one run (its axes, kind and meaning are in the task's MetricInfo)."""

    values: list[Any]  # nested lists of floats; None where a value was not finite
    coords: dict[str, list[Any]] = Field(default_factory=dict)  # axis name -> coordinates
    marks: dict[str, float] = Field(default_factory=dict)  # e.g. {"transition": 5}


class Provenance(_Model):
    suite_version: str
    git_commit: str
    git_dirty: bool
    python: str
    torch: str
    numpy: str
    platform: str
    device: str
    torch_threads: int = 1
    data_fingerprint: str = ""
    seeds: dict[str, int] = Field(default_factory=dict)
    audit_seed: int | None = None  # drew the audited calls; secret until the run was recorded
    salt: str = ""  # the leaderboard's seed salt ("" = the spec's public seeds), published here
    artifact: str = ""  # content hash of the prepared artefact the run used, if any
    command: str = ""
    sandbox: str = ""
    created_at: str


class RunRecord(_Model):
    schema_version: int = SCHEMA_VERSION
    key: str
    status: Status
    reason: str | None = None
    error: str | None = None
    profile: str
    seed_index: int
    task: TaskRef
    gate: GateRef
    metrics: dict[str, float] = Field(default_factory=dict)
    arrays: dict[str, ArrayValue] = Field(default_factory=dict)
    diagnostics: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    conformance: dict[str, Any] | None = None
    audits: list[str] = Field(default_factory=list)  # audits on the real run that passed
    n_params: int | None = None
    wall_time_s: float | None = None
    peak_rss_mb: float | None = None
    provenance: Provenance

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def deterministic_results(self) -> tuple[dict[str, float], dict[str, ArrayValue]]:
        """The scalars and arrays that must be bit-identical when the run is repeated on the same
        machine (timings and memory are declared non-deterministic and left out)."""
        keep = {m for m, info in self.task.metrics.items() if info.deterministic}
        return (
            {m: v for m, v in self.metrics.items() if m in keep},
            {m: v for m, v in self.arrays.items() if m in keep},
        )


def _finite(obj: Any) -> Any:
    """Non-finite floats (NaN, inf) inside arrays and diagnostics become None (JSON has none)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def clean_value(value: dict[str, Any] | None, task: TaskRef | None = None) -> dict[str, Any]:
    """A run's output made safe to record: a non-finite scalar makes the whole run unusable, a
    non-finite array element becomes None, and arrays must be the ones the task declares."""
    value = dict(value or {})
    bad = sorted(k for k, v in value.get("metrics", {}).items() if not math.isfinite(float(v)))
    if bad:
        raise ValueError(f"metrics {bad} are not finite")
    for part in ("arrays", "diagnostics"):
        value[part] = _finite(value.get(part, {}))
    if task is not None:
        declared = task.array_metrics()
        for name, array in value["arrays"].items():
            info = declared.get(name)
            if info is None:
                raise ValueError(f"array '{name}' is not a metric of task {task.id}")
            depth, probe = 0, array["values"]
            while isinstance(probe, list):
                depth, probe = depth + 1, probe[0] if probe else None
            if depth != ARRAY_DIMS[info.kind]:
                raise ValueError(
                    f"array '{name}' has {depth} axes; its metric declares {info.axes}"
                )
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(path: Path, record: RunRecord) -> None:
    write_json_atomic(path, record.model_dump(mode="json"))


def read_record(path: Path) -> RunRecord | None:
    """A record, or None when the file is unreadable (reported by ``iter_records``)."""
    try:
        return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def runs_dir(results: Path) -> Path:
    return results / "runs"


def iter_records(results: Path, bad: list[Path] | None = None) -> Iterator[RunRecord]:
    """Every readable record under ``results``; unreadable files are listed in ``bad``."""
    for path in sorted(runs_dir(results).rglob("*.json")):
        record = read_record(path)
        if record is None:
            if bad is not None:
                bad.append(path)
            continue
        yield record

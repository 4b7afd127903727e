"""Run records: one JSON file per (task, gate, seed), self-describing and written atomically.

A record carries what is needed to aggregate and render it without the specs or the registry (task
and gate summaries, metric directions), and what is needed to trust it (its key and provenance).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Status = Literal["ok", "failed", "rejected"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricRef(_Model):
    description: str
    higher_is_better: bool
    unit: str = ""
    ideal: float | None = None


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
    reference_gate: str
    ceiling_gate: str | None = None
    metrics: dict[str, MetricRef]
    variant_of: str | None = None
    ablation: dict[str, Any] | None = None
    claims: list[dict[str, Any]] = Field(default_factory=list)


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
    params: dict[str, Any] = Field(default_factory=dict)
    authors: list[str] = Field(default_factory=list)
    source_hash: str


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
    traces: dict[str, dict[str, Any]] = Field(default_factory=dict)
    diagnostics: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    conformance: dict[str, Any] | None = None
    n_params: int | None = None
    wall_time_s: float | None = None
    peak_rss_mb: float | None = None
    provenance: Provenance

    @property
    def ok(self) -> bool:
        return self.status == "ok"


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

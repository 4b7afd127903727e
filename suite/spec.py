"""Task specs: versioned YAML files validated by pydantic models with unknown keys rejected.

A spec file holds the paper-scale settings at its top level and partial overrides per profile
(``smoke``, ``default``, ``paper``). ``TaskSpec.for_profile`` merges an override and validates the
result; every profile is validated when the file is loaded, so a broken override fails early.
Family-specific parts (``data``, ``model``) are declared by each family's subclass of ``TaskSpec``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from suite.errors import SpecError
from suite.yamlio import load_yaml

SPECS_DIR = Path(__file__).parent / "specs"
LOCK_FILE = SPECS_DIR / "versions.lock.json"
PROFILES: tuple[str, ...] = ("smoke", "default", "paper")
ProfileName = Literal["smoke", "default", "paper"]
TASK_ID_PATTERN = r"^[a-z0-9-]+(/[a-z0-9-]+)+$"


class StrictModel(BaseModel):
    """Unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class MetricInfo:
    """How to read a metric: its meaning and which direction is better."""

    name: str
    description: str
    higher_is_better: bool
    unit: str = ""
    # the best possible value: the normalised score's 1 on tasks without a ceiling gate
    ideal: float | None = None


class Source(StrictModel):
    paper: str = Field(description="Short citation of the paper whose task this is.")
    ref: str = Field("", description="Where in the paper: section, table, figure.")
    url: str = Field("", pattern=r"^(https?://\S+)?$")


class Limits(StrictModel):
    time_s: float = Field(900.0, gt=0, description="Wall-time limit of one run, in seconds.")
    memory_mb: int = Field(4096, gt=0, description="Address-space allowance of one run, in MiB.")
    max_params: int | None = Field(
        None, gt=0, description="Most trainable parameters a gate may have on this task."
    )


class TrainSpec(StrictModel):
    optimizer: Literal["adam"] = "adam"
    lr: float = Field(gt=0)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0, description="Optimiser steps; each draws a fresh batch.")
    eval_window: int = Field(gt=0, description="Epochs averaged for the reported metrics.")

    @model_validator(mode="after")
    def _window_fits(self) -> TrainSpec:
        if self.eval_window > self.epochs:
            raise ValueError(
                f"eval_window ({self.eval_window}) cannot exceed epochs ({self.epochs})"
            )
        return self


class Claim(StrictModel):
    """A published number to reproduce: one gate's metric, or an interaction of ablation factors."""

    metric: str
    gate: str | None = None
    interaction: tuple[str, str] | None = None
    mean: float
    sd: float | None = Field(None, ge=0)
    n: int | None = Field(None, gt=0)
    source: str = Field(description="Table or section the number comes from.")
    note: str = ""
    bound: Literal["equal", "at-most", "at-least"] = Field(
        "equal", description="'at-most' for claims such as 'complete by step 600'."
    )
    tolerance: float | None = Field(
        None, ge=0, description="Absolute difference still called close (default 5% of mean)."
    )

    @model_validator(mode="after")
    def _one_subject(self) -> Claim:
        if (self.gate is None) == (self.interaction is None):
            raise ValueError("a claim names exactly one of 'gate' or 'interaction'")
        return self


class Ablation(StrictModel):
    """A full factorial design over gate mechanisms; the cell of factors {a, b} is gate 'a+b'."""

    factors: list[str] = Field(min_length=2)
    metric: str
    baseline: str = Field(description="Gate id of the cell with no factor switched on.")

    def cell_gate(self, active: Iterable[str]) -> str:
        chosen = [f for f in self.factors if f in set(active)]
        return "+".join(chosen) if chosen else self.baseline


class TaskSpec(StrictModel):
    """Fields shared by every task family."""

    family_metrics: ClassVar[dict[str, MetricInfo]] = {}

    id: str = Field(pattern=TASK_ID_PATTERN)
    family: str
    version: int = Field(gt=0, description="Bump on any change that alters results.")
    title: str
    description: str
    source: Source
    variant_of: str | None = None
    reference_gate: str = "affinity"
    ceiling_gate: str | None = None
    primary_metric: str
    metrics: list[str] = Field(min_length=1)
    seeds: int = Field(5, gt=0, le=100)
    master_seed: int = Field(0, ge=0)
    gate_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    limits: Limits = Limits()
    train: TrainSpec
    ablation: Ablation | None = None
    claims: list[Claim] = Field(default_factory=list)
    profiles: dict[ProfileName, dict[str, Any]] = Field(default_factory=dict)

    def available_metrics(self) -> dict[str, MetricInfo]:
        """Metrics this task can compute; families narrow it by the data settings."""
        return dict(self.family_metrics)

    @model_validator(mode="after")
    def _metrics_known(self) -> TaskSpec:
        available = self.available_metrics()
        for name in self.metrics:
            if name not in available:
                raise ValueError(
                    f"metric '{name}' is not available for this task; "
                    f"available: {', '.join(sorted(available))}"
                )
        used = {"primary_metric": self.primary_metric}
        if self.ablation:
            used["ablation.metric"] = self.ablation.metric
        for i, claim in enumerate(self.claims):
            used[f"claims.{i}.metric"] = claim.metric
        for where, name in used.items():
            if name not in self.metrics:
                raise ValueError(f"{where} '{name}' must be one of metrics {self.metrics}")
        return self

    # -- profiles and identity --------------------------------------------------------------

    def for_profile(self, profile: str) -> TaskSpec:
        """The spec as a given profile runs it (override merged, ``profiles`` dropped)."""
        if profile not in PROFILES:
            raise SpecError(f"Unknown profile '{profile}'. Profiles are: {', '.join(PROFILES)}.")
        raw = self.model_dump(mode="json")
        override = raw.pop("profiles").get(profile, {})
        merged = _deep_merge(raw, override)
        return type(self).model_validate({**merged, "profiles": {}})

    def metric_info(self) -> dict[str, MetricInfo]:
        available = self.available_metrics()
        return {m: available[m] for m in self.metrics}

    def identity(self) -> dict[str, Any]:
        """The fields that change results; their hash is part of every run's key."""
        keep = ("id", "family", "version", "master_seed", "gate_params", "metrics", "train")
        raw = self.model_dump(mode="json")
        ident = {k: raw[k] for k in keep}
        ident.update({k: raw[k] for k in self.family_identity_fields()})
        return ident

    def family_identity_fields(self) -> tuple[str, ...]:
        return ()

    def spec_hash(self) -> str:
        return stable_hash(self.identity())


def stable_hash(obj: Any) -> str:
    """sha256 of canonical JSON, shortened: equal inputs give equal hashes on every machine."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- loading ---------------------------------------------------------------------------------


def load_task_file(path: Path, specs_dir: Path | None = None) -> TaskSpec:
    """Load and validate one spec file, including all its profiles."""
    from suite.families import family_names, get_family

    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(
            f"{path}: a task spec is a YAML mapping of fields, got {type(raw).__name__}."
        )
    family_name = raw.get("family")
    if family_name not in family_names():
        raise SpecError(
            f"{path}: field 'family': unknown family {family_name!r}; "
            f"known families: {', '.join(family_names())}."
        )
    model = get_family(family_name).spec_model
    spec = _validate(model, raw, path)
    if specs_dir is not None:
        expected = path.relative_to(specs_dir).with_suffix("").as_posix()
        if spec.id != expected:
            raise SpecError(
                f"{path}: field 'id': the id '{spec.id}' must match the file's place under "
                f"{specs_dir}, i.e. '{expected}'. Rename the file or change the id."
            )
    for profile in spec.profiles:
        merged = _deep_merge(raw, raw.get("profiles", {}).get(profile) or {})
        merged["profiles"] = {}
        _validate(model, merged, path, context=f"profile '{profile}': ")
    return spec


def _validate(
    model: type[TaskSpec], raw: dict[str, Any], path: Path, context: str = ""
) -> TaskSpec:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [describe_validation_error(model, err) for err in exc.errors()]
        raise SpecError(f"{path}: {context}" + f"\n{path}: {context}".join(lines)) from None


def describe_validation_error(model: type[BaseModel], err: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err["loc"]]
    field = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_fields(model, err["loc"][:-1])
        hint = f" Allowed fields here: {', '.join(allowed)}." if allowed else ""
        return f"field '{field}': unknown field (remove it or fix its spelling).{hint}"
    if err["type"] == "missing":
        return f"field '{field}': required field is missing."
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    msg = err["msg"].removeprefix("Value error, ")
    return f"field '{field}': {msg}{shown}."


def _allowed_fields(model: Any, loc: Iterable[Any]) -> list[str]:
    current: Any = model
    for part in loc:
        candidates = _models_in(current)
        nxt = None
        for cand in candidates:
            if isinstance(part, str) and part in cand.model_fields:
                nxt = cand.model_fields[part].annotation
                break
            tag = _literal_kind(cand)
            if tag is not None and part == tag:
                nxt = cand
                break
        if nxt is None:
            if isinstance(part, int) or not candidates:
                continue
            return []
        current = nxt
    fields: list[str] = []
    for cand in _models_in(current):
        fields += [f for f in cand.model_fields if f not in fields]
    return fields


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, dict):
        out: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            out += _models_in(arg)
        return out
    return []


def _literal_kind(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def spec_files(specs_dir: Path = SPECS_DIR) -> list[Path]:
    return sorted(specs_dir.rglob("*.yaml"))


def load_all_tasks(specs_dir: Path = SPECS_DIR) -> list[TaskSpec]:
    """Every spec under ``specs_dir``; any invalid file stops loading with its error."""
    tasks = [load_task_file(p, specs_dir) for p in spec_files(specs_dir)]
    seen: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task.id in seen:
            raise SpecError(f"Task id '{task.id}' is defined twice.")
        seen[task.id] = i
    ids = set(seen)
    for task in tasks:
        if task.variant_of and task.variant_of not in ids:
            raise SpecError(f"{task.id}: field 'variant_of': no task '{task.variant_of}'.")
    return tasks


def select_tasks(
    tasks: list[TaskSpec], ids: Iterable[str] = (), family: str | None = None
) -> list[TaskSpec]:
    """Filter by ids (exact, or a prefix ending in '/') and family; unknown ids are errors."""
    import difflib

    ids = list(ids)
    chosen = [t for t in tasks if family is None or t.family == family]
    if family is not None and not chosen:
        known = sorted({t.family for t in tasks})
        raise SpecError(f"No tasks in family '{family}'. Families: {', '.join(known)}.")
    if not ids:
        return chosen
    picked: list[TaskSpec] = []
    for wanted in ids:
        match = [t for t in chosen if t.id == wanted or t.id.startswith(wanted.rstrip("/") + "/")]
        if not match:
            close = difflib.get_close_matches(wanted, [t.id for t in chosen], n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise SpecError(f"Unknown task '{wanted}'.{hint} `gatebench list tasks` shows them.")
        picked += [t for t in match if t not in picked]
    return picked


def slug(text: str) -> str:
    """A file-system-safe name for a task or gate id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("/", "__").replace("+", "-plus-"))


# -- the version lock ------------------------------------------------------------------------
# Each spec's paper-profile hash is recorded per version, so a change of content without a
# version bump (or a bump without a recorded hash) fails the tests instead of passing silently.


def lock_problems(tasks: list[TaskSpec], lock_file: Path = LOCK_FILE) -> list[str]:
    lock = json.loads(lock_file.read_text()) if lock_file.exists() else {}
    problems = []
    for task in tasks:
        digest = task.for_profile("paper").spec_hash()
        entry = lock.get(task.id)
        if entry is None:
            problems.append(f"{task.id}: not in {lock_file.name}")
        elif entry["version"] == task.version and entry["hash"] != digest:
            problems.append(
                f"{task.id}: its content changed but its version is still {task.version}; "
                "bump 'version' in the spec"
            )
        elif entry["version"] != task.version:
            problems.append(f"{task.id}: version {task.version} is not recorded yet")
    return problems


def update_lock(tasks: list[TaskSpec], lock_file: Path = LOCK_FILE) -> None:
    lock = {t.id: {"version": t.version, "hash": t.for_profile("paper").spec_hash()} for t in tasks}
    lock_file.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":  # python -m suite.spec --update-lock
    import sys

    if sys.argv[1:] != ["--update-lock"]:
        raise SystemExit("usage: python -m suite.spec --update-lock")
    update_lock(load_all_tasks())
    print(f"wrote {LOCK_FILE}")

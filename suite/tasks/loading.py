"""Loading spec files: YAML -> the family's spec model, with errors that name the file, the field
and what is allowed. Every profile is validated at load time, so a broken override fails early.

Specs live beside their family (``suite/tasks/families/<name>/specs/``); a task's id is the family
name followed by the file's place in that folder (``transition/anticipation``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from suite.errors import SpecError
from suite.tasks.spec import TaskSpec, merge_profile, merge_scale_point
from suite.tasks.yamlio import load_yaml


def load_task_file(path: Path, specs_dir: Path | None = None, id_prefix: str = "") -> TaskSpec:
    """Load and validate one spec file, including all its profiles. With ``specs_dir``, the id
    must be ``id_prefix`` + the file's place under it."""
    from suite.tasks.family import families

    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(
            f"{path}: a task spec is a YAML mapping of fields, got {type(raw).__name__}."
        )
    family_name = raw.get("family")
    if family_name not in families:
        raise SpecError(
            f"{path}: field 'family': unknown family {family_name!r}; "
            f"known families: {', '.join(families.names())}."
        )
    model = families.get(family_name).spec_model
    spec = _validate(model, raw, path)
    if specs_dir is not None:
        expected = id_prefix + path.relative_to(specs_dir).with_suffix("").as_posix()
        if spec.id != expected:
            raise SpecError(
                f"{path}: field 'id': the id '{spec.id}' must match the file's place under "
                f"{specs_dir}, i.e. '{expected}'. Rename the file or change the id."
            )
    for profile in spec.profiles:
        _validate(model, merge_profile(raw, profile), path, context=f"profile '{profile}': ")
    for profile in spec.scale_profiles():
        merged = merge_scale_point(spec.model_dump(mode="json"), profile)
        _validate(model, merged, path, context=f"scale point '{profile}': ")
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


def spec_files(specs_dir: Path) -> list[Path]:
    return sorted(specs_dir.rglob("*.yaml"))


def spec_sources() -> list[tuple[Path, str]]:
    """(folder, id prefix) of every registered family's specs."""
    from suite.tasks.family import families

    return [(f.specs_dir(), f"{f.name}/") for f in families.values() if f.specs_dir().is_dir()]


def load_all_tasks(specs_dir: Path | None = None) -> list[TaskSpec]:
    """Every spec of every registered family (or only those under ``specs_dir``, whose ids are
    their paths there); any invalid file stops loading with its error."""
    sources = [(specs_dir, "")] if specs_dir is not None else spec_sources()
    tasks = [
        load_task_file(p, folder, prefix) for folder, prefix in sources for p in spec_files(folder)
    ]
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise SpecError(f"Task id '{task.id}' is defined twice.")
        seen.add(task.id)
    for task in tasks:
        if task.variant_of and task.variant_of not in seen:
            raise SpecError(f"{task.id}: field 'variant_of': no task '{task.variant_of}'.")
    return tasks


def load_task(task_id: str, profile: str | None = None) -> TaskSpec:
    """One task by its exact id, resolved for ``profile`` where given (the bench's and tests'
    way to one spec); an unknown id is an error that says so."""
    spec = next((t for t in select_tasks(load_all_tasks(), [task_id]) if t.id == task_id), None)
    if spec is None:
        raise SpecError(f"'{task_id}' names a group of tasks, not one task.")
    return spec.for_profile(profile) if profile else spec


def tasks_for_profile(tasks: Sequence[TaskSpec], profile: str) -> list[TaskSpec]:
    """The tasks that run ``profile``: all of them, but an optional profile only where a spec
    defines it (``scale``: where a spec has a scale axis); none at all is an error that names the
    profile and the specs that have it."""
    chosen = [t for t in tasks if t.has_profile(profile)]
    if tasks and not chosen:
        having = sorted(t.id for t in load_all_tasks() if t.has_profile(profile))
        raise SpecError(
            f"No selected task defines the profile '{profile}'"
            + (f"; the tasks that do: {', '.join(having)}." if having else ".")
        )
    return chosen


def profile_runs(tasks: Sequence[TaskSpec], profile: str) -> list[tuple[str, list[TaskSpec]]]:
    """(profile, its tasks) for each sweep ``--profile`` asks for: one, or for ``scale`` one per
    point of the tasks' scale axes, smallest first."""
    chosen = tasks_for_profile(tasks, profile)
    if profile != "scale":
        return [(profile, chosen)]
    points = list(dict.fromkeys(p for t in chosen for p in t.scale_profiles()))
    return [(p, [t for t in chosen if t.has_profile(p)]) for p in points]


def select_tasks(
    tasks: Sequence[TaskSpec], ids: Iterable[str] = (), family: str | None = None
) -> list[TaskSpec]:
    """Filter by ids (exact, or a prefix ending in '/') and family; unknown ids are errors."""
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

"""The gate registry: one source of truth for every gate id, baseline or submission.

Baselines register with a decorator; a class may be registered several times under different ids
with different hyper-parameters (the 2^3 ablation grid is one class). Duplicate ids are errors and
an unknown id answers with the closest names.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from suite.contract import RouterGate, TaskInfo
from suite.errors import RegistryError

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9+._-]*$")

Origin = Literal["baseline", "submission", "test"]


@dataclass(frozen=True)
class GateEntry:
    """A registered gate: a class plus the hyper-parameters that make it this id."""

    id: str
    cls: type[RouterGate]
    params: Mapping[str, Any]
    description: str
    paper: str = ""
    equation: str = ""
    url: str = ""
    origin: Origin = "baseline"
    kind: Literal["router"] = "router"
    module_file: str | None = None  # set for submissions, imported by path in worker processes
    authors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def causal(self) -> bool:
        return bool(self.cls.causal)

    def resolved_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Registered hyper-parameters with a task's overrides applied; unknown names are errors."""
        return apply_overrides(self.id, self.params, _init_parameters(self.cls), overrides)

    def supports(
        self, info: TaskInfo, overrides: Mapping[str, Any] | None = None
    ) -> tuple[bool, str]:
        return self.cls.supports(info, **self.resolved_params(overrides))

    def build(self, info: TaskInfo, overrides: Mapping[str, Any] | None = None) -> RouterGate:
        gate = self.cls(info, **self.resolved_params(overrides))
        if not isinstance(gate, RouterGate):
            raise RegistryError(f"Gate '{self.id}' did not build a RouterGate.")
        return gate

    def ref(self) -> dict[str, Any]:
        """How a worker process finds this entry again (by module, or by file for submissions)."""
        return {"id": self.id, "module": self.cls.__module__, "module_file": self.module_file}

    def source_hash(self) -> str:
        return source_hash(self.cls)


def apply_overrides(
    gate_id: str,
    params: Mapping[str, Any],
    accepted: set[str] | frozenset[str],
    overrides: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``params`` updated by a task's ``gate_params`` for this gate, each checked against the
    constructor's keyword arguments."""
    resolved = dict(params)
    for name, value in (overrides or {}).items():
        if name not in accepted:
            raise RegistryError(
                f"Gate '{gate_id}' has no hyper-parameter '{name}'. "
                f"Its hyper-parameters are: {', '.join(sorted(accepted)) or 'none'}."
            )
        resolved[name] = value
    return resolved


_GATES: dict[str, GateEntry] = {}


def _init_parameters(cls: type) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {n for n in sig.parameters if n not in {"self", "info"}}


def register_gate(
    gate_id: str,
    *,
    description: str,
    paper: str = "",
    equation: str = "",
    url: str = "",
    origin: Origin = "baseline",
    **params: Any,
) -> Callable[[type[RouterGate]], type[RouterGate]]:
    """Class decorator registering ``gate_id``; stack it to register one class under several ids."""

    def decorate(cls: type[RouterGate]) -> type[RouterGate]:
        add_gate(
            GateEntry(
                id=gate_id,
                cls=cls,
                params=dict(params),
                description=description,
                paper=paper,
                equation=equation,
                url=url,
                origin=origin,
            )
        )
        return cls

    return decorate


def add_gate(entry: GateEntry) -> None:
    if not _ID_PATTERN.match(entry.id):
        raise RegistryError(
            f"Gate id '{entry.id}' is not allowed: use lower-case letters, digits and + . _ -, "
            "starting with a letter or digit."
        )
    if not (isinstance(entry.cls, type) and issubclass(entry.cls, RouterGate)):
        raise RegistryError(
            f"Gate '{entry.id}' must be a subclass of suite.contract.RouterGate, got {entry.cls!r}."
        )
    unknown = set(entry.params) - _init_parameters(entry.cls)
    if unknown:
        raise RegistryError(
            f"Gate '{entry.id}' registers hyper-parameters {sorted(unknown)} that "
            f"{entry.cls.__name__}.__init__ does not accept."
        )
    existing = _GATES.get(entry.id)
    if existing is not None:
        where = existing.module_file or existing.cls.__module__
        raise RegistryError(f"Gate id '{entry.id}' is registered twice (first by {where}).")
    _GATES[entry.id] = entry


def get_gate(gate_id: str) -> GateEntry:
    load_baselines()
    try:
        return _GATES[gate_id]
    except KeyError:
        close = difflib.get_close_matches(gate_id, list(_GATES), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise RegistryError(
            f"Unknown gate '{gate_id}'.{hint} `gatebench list gates` shows them all."
        ) from None


def all_gates() -> list[GateEntry]:
    load_baselines()
    return [_GATES[k] for k in sorted(_GATES)]


_BASELINES_LOADED = False


def load_baselines() -> None:
    """Import every module of the ``baselines`` package once (discovery by convention)."""
    global _BASELINES_LOADED
    if _BASELINES_LOADED:
        return
    _BASELINES_LOADED = True
    import baselines

    for info in sorted(pkgutil.iter_modules(baselines.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"baselines.{info.name}")


def resolve_ref(ref: Mapping[str, Any]) -> GateEntry:
    """Find an entry in a worker process from ``ref()`` (a module name, or a submission folder
    whose code is imported here, in the worker, never in the parent)."""
    if ref.get("submission_dir"):
        from suite.submissions import register_submission

        return register_submission(Path(ref["submission_dir"]))
    if ref["id"] not in _GATES:
        importlib.import_module(ref["module"])
    return get_gate(ref["id"])


def _package_root(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    if not file:
        return None
    top = sys.modules.get(module.__name__.split(".")[0])
    top_file = getattr(top, "__file__", None)
    if top is not None and top is not module and top_file and top_file.endswith("__init__.py"):
        return Path(top_file).parent.resolve()
    return Path(file).parent.resolve()


def source_files(cls: type) -> list[Path]:
    """The files whose text defines a gate: its module, its bases and the helpers it imports,
    limited to the gate's own package (or submission folder)."""
    module = sys.modules[cls.__module__]
    root = _package_root(module)
    candidates: set[Path] = set()
    objects: list[Any] = [module, *cls.__mro__]
    objects += [v for v in vars(module).values() if inspect.ismodule(v) or inspect.isclass(v)]
    objects += [v for v in vars(module).values() if inspect.isfunction(v)]
    for obj in objects:
        try:
            file = inspect.getsourcefile(obj)
        except TypeError:
            continue
        if file:
            path = Path(file).resolve()
            if root is not None and root in path.parents:
                candidates.add(path)
    return sorted(candidates)


def source_hash(cls: type) -> str:
    """sha256 over the gate's source files (names relative to their package root and contents)."""
    files = source_files(cls)
    root = _package_root(sys.modules[cls.__module__])
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(root).as_posix() if root else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]

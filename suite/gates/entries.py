"""Registered gates: one source of truth for every gate id, baseline or submission.

Baselines register with a decorator; a class may be registered several times under different ids
with different hyper-parameters (the 2^3 ablation grid is one class). ``GateEntry`` (a class in
this process) and ``SubmissionEntry`` (a submitted folder, never imported by the parent) are both
``GateLike``: what planning, records and the site need from a gate.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol

from suite.contract import Gate, TaskInfo
from suite.errors import RegistryError
from suite.identity import files_hash
from suite.registry import Registry, discover

Origin = Literal["baseline", "submission", "test"]


class GateLike(Protocol):
    """What the harness needs from a gate, wherever its code lives."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def causal(self) -> bool: ...
    @property
    def ceiling(self) -> bool: ...
    @property
    def origin(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def paper(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def equation(self) -> str: ...
    @property
    def authors(self) -> tuple[str, ...]: ...

    def resolved_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]: ...
    def supports(
        self, info: TaskInfo, overrides: Mapping[str, Any] | None = None
    ) -> tuple[bool, str]: ...
    def source_hash(self) -> str: ...
    def ref(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GateEntry:
    """A registered gate: a class plus the hyper-parameters that make it this id."""

    id: str
    cls: type[Gate]
    params: Mapping[str, Any]
    description: str
    paper: str = ""
    equation: str = ""
    url: str = ""
    origin: Origin = "baseline"
    module_file: str | None = None  # set for submissions, imported by path in worker processes
    authors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        return self.cls.kind

    @property
    def causal(self) -> bool:
        return bool(self.cls.causal)

    @property
    def ceiling(self) -> bool:
        return bool(self.cls.ceiling)

    def resolved_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Registered hyper-parameters with a task's overrides applied; unknown names are errors."""
        return apply_overrides(self.id, self.params, init_parameters(self.cls), overrides)

    def supports(
        self, info: TaskInfo, overrides: Mapping[str, Any] | None = None
    ) -> tuple[bool, str]:
        if info.kind != self.kind:  # a gate runs only where its kind is run
            return False, f"a {self.kind} gate does not run on {info.kind} tasks"
        return self.cls.supports(info, **self.resolved_params(overrides))

    def build(self, info: TaskInfo, overrides: Mapping[str, Any] | None = None) -> Gate:
        gate = self.cls(info, **self.resolved_params(overrides))
        if not isinstance(gate, Gate):
            raise RegistryError(f"Gate '{self.id}' did not build a suite.contract.Gate.")
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


def init_parameters(cls: type) -> set[str]:
    """The hyper-parameters a gate class accepts: its keyword arguments after ``info``."""
    sig = inspect.signature(cls.__init__)
    return {n for n in sig.parameters if n not in {"self", "info"}}


def _load_baselines() -> None:
    discover("baselines", recursive=True)  # one module per mechanism, sub-packages per family


gates: Registry[GateEntry] = Registry(
    "gate", _load_baselines, "`gatebench list gates` shows them all."
)


def register_gate(
    gate_id: str,
    *,
    description: str,
    paper: str = "",
    equation: str = "",
    url: str = "",
    origin: Origin = "baseline",
    **params: Any,
) -> Callable[[type[Gate]], type[Gate]]:
    """Class decorator registering ``gate_id``; stack it to register one class under several ids."""

    def decorate(cls: type[Gate]) -> type[Gate]:
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
    if not (isinstance(entry.cls, type) and issubclass(entry.cls, Gate) and entry.cls.kind):
        raise RegistryError(
            f"Gate '{entry.id}' must subclass a gate kind of suite.contract (RouterGate, ...), "
            f"got {entry.cls!r}."
        )
    unknown = set(entry.params) - init_parameters(entry.cls)
    if unknown:
        raise RegistryError(
            f"Gate '{entry.id}' registers hyper-parameters {sorted(unknown)} that "
            f"{entry.cls.__name__}.__init__ does not accept."
        )
    gates.add(entry.id, entry, origin=entry.module_file or entry.cls.__module__)


def get_gate(gate_id: str) -> GateEntry:
    return gates.get(gate_id)


def all_gates() -> list[GateEntry]:
    return gates.values()


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
    return files_hash(source_files(cls), _package_root(sys.modules[cls.__module__]))

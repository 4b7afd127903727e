"""Task families: each owns the model around the gate, its training loop and its metrics.

A family plugs into the harness through ``TaskFamily`` and nothing else: no shared module knows
what a family's data looks like. A family is a sub-package of ``suite.tasks.families`` (found by
folder convention) that registers a ``TaskFamily`` subclass with ``@register_family``; its specs
live in its ``specs/`` folder. Adding a family touches no shared module.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

from suite.contract import TaskInfo
from suite.identity import folder_hash
from suite.registry import Registry, discover
from suite.seeding import RunSeeds
from suite.tasks.spec import TaskSpec

Artifact = dict[str, Tensor]
"""What a family prepares once per (spec, seed) before any gate runs, e.g. a frozen base model's
state dict. Tensors only, so it loads with ``torch.load(weights_only=True)``."""


class RunTimeout(RuntimeError):
    """The run passed its wall-time limit (checked between optimiser steps)."""


class NonFiniteError(RuntimeError):
    """A loss or an output became NaN or infinite."""


@dataclass
class RunContext:
    """What a family needs from the harness for one run."""

    seeds: RunSeeds
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    deadline: float = float("inf")  # time.monotonic() value
    artifact: Artifact | None = None  # the family's prepared artefact for this seed, read-only

    def tick(self, step: int, total: int) -> None:
        """Called after every optimiser step: stops a run that has passed its time limit."""
        if time.monotonic() > self.deadline:
            raise RunTimeout(f"the run passed its time limit at step {step} of {total}")


@dataclass
class ArrayResult:
    """One array metric of one run: values over the axes its ``MetricInfo`` declares, the
    coordinates along each axis (default 0..n-1) and named marks (e.g. the transition step)."""

    values: Any  # array-like, shape matching the declared axes
    coords: dict[str, list[Any]] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)

    def as_array(self) -> np.ndarray:
        if isinstance(self.values, Tensor):
            return self.values.detach().cpu().double().numpy()
        return np.asarray(self.values, dtype=np.float64)


@dataclass
class RunOutput:
    """A family's result for one run; the harness adds identity, timing and provenance."""

    metrics: dict[str, float]
    arrays: dict[str, ArrayResult] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data_fingerprint: str = ""


def only_result(results: list[RunOutput | BaseException]) -> RunOutput:
    """The one seed's output of a ``run_seeds`` call, raising its failure."""
    (result,) = results
    if isinstance(result, BaseException):
        raise result
    return result


SpecT = TypeVar("SpecT", bound=TaskSpec)
STEP_MS = 1.8  # the default step cost: fixed milliseconds per optimiser step ...
TOKEN_MS = 2.5e-4  # ... and per token (``TaskFamily.step_cost``)


class TaskFamily(ABC, Generic[SpecT]):
    """The interface between the harness and a task family (``SpecT``: its spec model)."""

    name: ClassVar[str]
    spec_model: ClassVar[type[TaskSpec]]
    description: ClassVar[str]
    gate_kind: ClassVar[str] = "router"
    """The kind of gate this family runs; the plan pairs it with gates of that kind only."""
    batches_seeds: ClassVar[bool] = True
    """Whether the sweep gives a baseline's seeds of a task one job (``run_seeds``; a
    submission's seeds always run one job each): a process's start and warm-up are then paid
    once per pair, and a family that can stacks the seeds into one vectorised pass."""
    job_overhead: ClassVar[float] = 0.25
    """What a job of this family pays once however many runs it carries (a process's start and
    warm-up, loading artefacts, the shared pass over the data), in runs of its task: the
    planner cuts a group in two only where balancing the workers gains more than that."""
    shares_data_across_gates: ClassVar[bool] = False
    """Whether every gate of a (task, seed) reads the same data (drawn, or read through the same
    frozen base): the sweep may then give a (task, seed)'s trusted gates one job (``run_gates``)
    instead of one per (task, gate), so that work is paid once, not per gate."""

    @classmethod
    def folder(cls) -> Path:
        return Path(inspect.getfile(cls)).resolve().parent

    @classmethod
    def specs_dir(cls) -> Path:
        """Where the family's spec files live (ids: ``<name>/<path under this folder>``)."""
        return cls.folder() / "specs"

    def source_hash(self) -> str:
        """Hash of the family's own code (read once per process); it enters every run key and
        artefact recipe of the family."""
        if "_source_hash" not in self.__dict__:
            self._source_hash = folder_hash(self.folder())
        return self._source_hash

    @abstractmethod
    def task_info(self, spec: SpecT) -> TaskInfo:
        """Shapes, kind and extras a gate is built for."""

    def ceiling_info(self, spec: SpecT) -> TaskInfo:
        """What a labelled ceiling that knows the generator is built for (``Gate.ceiling``):
        ``task_info`` plus the family's public generator settings. Default: nothing more."""
        return self.task_info(spec)

    def info_for(self, spec: SpecT, gate: Any) -> TaskInfo:
        """The ``TaskInfo`` a gate is built with: the generator's settings only for GateBench's
        own ceilings, never for a submission."""
        trusted = getattr(gate, "origin", "baseline") == "baseline"
        return (
            self.ceiling_info(spec)
            if trusted and getattr(gate, "ceiling", False)
            else (self.task_info(spec))
        )

    def check_ready(self, spec: SpecT) -> None:
        """Raise ``RunError`` with one line where ``spec`` cannot run on this machine (e.g.
        pretrained weights that are not here): the sweep asks before any run starts."""

    @abstractmethod
    def run(self, spec: SpecT, gate: Any, ctx: RunContext) -> RunOutput:
        """Train and evaluate ``gate`` on one seed of ``spec``."""

    def run_seeds(
        self, spec: SpecT, gates: list[Any], ctxs: list[RunContext], vectorise: bool = True
    ) -> list[RunOutput | BaseException]:
        """Train one gate's seeds of ``spec`` (``gates[i]`` built under ``ctxs[i].seeds``); a
        seed's failure is its entry, and the others go on. Families that can stack seeds into
        one vectorised pass override this (``suite.tasks.seed_stack``); by default the seeds run
        one after another."""
        results: list[RunOutput | BaseException] = []
        for gate, ctx in zip(gates, ctxs, strict=True):
            try:
                results.append(self.run(spec, gate, ctx))
            except Exception as exc:  # the seed's failure is its result
                if len(gates) == 1:
                    raise
                results.append(exc)
        return results

    def step_cost(self, spec: SpecT, tokens: int) -> float:
        """Estimated milliseconds of one optimiser step of one run on one CPU core, ``tokens``
        (batch × sequence length) per step: the planner's estimate, only to order and cut jobs
        and to tell the remaining time, never a number of a run. The default was fitted on the
        transition and continual families' default runs (2 cores): a fixed cost per step (the
        launches of small kernels, the optimiser) and a small one per token; ±40%."""
        return STEP_MS + TOKEN_MS * tokens

    def groups_gates(self, device: str) -> bool:
        """Whether the sweep gives a (task, seed)'s trusted gates one job on ``device``: where
        they share their data, unless the family would rather stack each gate's seeds into one
        vectorised pass there (then it overrides this)."""
        return self.shares_data_across_gates

    def run_gates(
        self, spec: SpecT, gates: list[Any], ctxs: list[RunContext]
    ) -> list[RunOutput | BaseException]:
        """Train several gates on the same seed of ``spec`` (``ctxs`` share their seeds and
        artefact); a gate's failure is its entry, and the others go on. Families that set
        ``shares_data_across_gates`` override this to read the data once; by default each gate
        runs on its own."""
        results: list[RunOutput | BaseException] = []
        for gate, ctx in zip(gates, ctxs, strict=True):
            try:
                results.append(self.run(spec, gate, ctx))
            except Exception as exc:  # the gate's failure is its result
                results.append(exc)
        return results

    @abstractmethod
    def eval_dataset(self, spec: SpecT, seeds: RunSeeds) -> Any:
        """The evaluation split as a ``datasets.Dataset`` (its fingerprint goes into records)."""

    def prepare(self, spec: SpecT, seeds: RunSeeds) -> Artifact:
        """Build what every gate's run of this (spec, seed) shares, e.g. pre-train and freeze a
        base model. Trusted code: it runs outside the sandbox, and the harness writes its output
        once, atomically, keyed by content hash. Families that override it get
        ``ctx.artifact``."""
        raise NotImplementedError

    @property
    def prepares(self) -> bool:
        return type(self).prepare is not TaskFamily.prepare


def _load_families() -> None:
    discover("suite.tasks.families")


families: Registry[TaskFamily[Any]] = Registry(
    "task family", _load_families, "`gatebench list tasks` shows the tasks of each."
)


def register_family(cls: type[TaskFamily[Any]]) -> type[TaskFamily[Any]]:
    """Class decorator: register one instance of a family under ``cls.name``."""
    if not (inspect.isclass(cls) and issubclass(cls, TaskFamily)):
        raise TypeError(f"{cls!r} is not a TaskFamily subclass")
    families.add(cls.name, cls(), origin=cls.__module__)
    return cls


def get_family(name: str) -> TaskFamily[Any]:
    return families.get(name)


def job_spec(spec: TaskSpec) -> dict[str, Any]:
    """A spec as a worker job carries it: its fields and where its family is defined."""
    return {
        "spec": spec.model_dump(mode="json"),
        "family_module": type(get_family(spec.family)).__module__,
    }

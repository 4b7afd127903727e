"""Task families: each owns the model around the gate, its training loop and its metrics.

A family plugs into the runner through ``TaskFamily`` and nothing else; no other module knows
what a family's data looks like.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from suite.contract import RouterGate, TaskInfo
from suite.errors import RegistryError
from suite.seeding import RunSeeds
from suite.spec import TaskSpec


class RunTimeout(RuntimeError):
    """The run passed its wall-time limit (checked between optimiser steps)."""


class NonFiniteError(RuntimeError):
    """A loss or an output became NaN or infinite."""


@dataclass
class RunContext:
    """What a family needs from the runner for one run."""

    seeds: RunSeeds
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    deadline: float = float("inf")  # time.monotonic() value

    def tick(self, step: int, total: int) -> None:
        """Called after every optimiser step: stops a run that has passed its time limit."""
        if time.monotonic() > self.deadline:
            raise RunTimeout(f"the run passed its time limit at step {step} of {total}")


@dataclass
class RunOutput:
    """A family's result for one run; the runner adds identity, timing and provenance."""

    metrics: dict[str, float]
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data_fingerprint: str = ""


class TaskFamily(ABC):
    """The interface between the runner and a task family."""

    name: ClassVar[str]
    spec_model: ClassVar[type[TaskSpec]]
    description: ClassVar[str]

    @abstractmethod
    def task_info(self, spec: TaskSpec) -> TaskInfo:
        """Shapes and readout a gate is built for."""

    @abstractmethod
    def run(self, spec: TaskSpec, gate: RouterGate, ctx: RunContext) -> RunOutput:
        """Train and evaluate ``gate`` on one seed of ``spec``."""

    @abstractmethod
    def eval_dataset(self, spec: TaskSpec, seeds: RunSeeds) -> Any:
        """The evaluation split as a ``datasets.Dataset`` (its fingerprint goes into records)."""


_FAMILIES: dict[str, TaskFamily] = {}


def register_family(cls: type[TaskFamily]) -> type[TaskFamily]:
    if cls.name in _FAMILIES:
        raise RegistryError(f"Task family '{cls.name}' is registered twice.")
    _FAMILIES[cls.name] = cls()
    return cls


def _load() -> None:
    if not _FAMILIES:
        from suite.families import transition  # noqa: F401  (registers itself)


def family_names() -> list[str]:
    _load()
    return sorted(_FAMILIES)


def get_family(name: str) -> TaskFamily:
    _load()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise RegistryError(
            f"Unknown task family '{name}'. Families: {', '.join(sorted(_FAMILIES))}."
        ) from None

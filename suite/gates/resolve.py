"""How a worker process finds a gate again from its reference: a registered entry by module, or
a submission folder whose code is imported there (in the worker, never in the parent)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite.gates.entries import GateEntry, gates, get_gate
from suite.gates.submissions import register_submission


def resolve_ref(ref: Mapping[str, Any]) -> GateEntry:
    """Find an entry in a worker process from ``ref()`` (a module name, or a submission folder
    whose code is imported here, in the worker, never in the parent)."""
    if ref.get("submission_dir"):
        return register_submission(Path(ref["submission_dir"]))
    if ref["id"] not in gates:
        importlib.import_module(ref["module"])
    return get_gate(ref["id"])

"""The version lock: each spec's paper-profile hash, recorded per version beside the family's
specs (``specs/versions.lock.json``), so that a change of content without a version bump (or a bump
without a recorded hash) fails the tests instead of passing silently.

``python -m suite.tasks.lock --update`` records the current hashes.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from suite.tasks.spec import TaskSpec

LOCK_NAME = "versions.lock.json"


def lock_file(task: TaskSpec) -> Path:
    from suite.tasks.family import families

    return families.get(task.family).specs_dir() / LOCK_NAME


def _read(path: Path) -> dict[str, dict[str, object]]:
    return json.loads(path.read_text()) if path.exists() else {}


def lock_problems(tasks: list[TaskSpec], lock: Path | None = None) -> list[str]:
    """What is wrong between the specs and their lock (each family's, or one ``lock`` file)."""
    problems = []
    for task in tasks:
        path = lock or lock_file(task)
        digest = task.for_profile("paper").spec_hash()
        entry = _read(path).get(task.id)
        if entry is None:
            problems.append(f"{task.id}: not in {path}")
        elif entry["version"] == task.version and entry["hash"] != digest:
            problems.append(
                f"{task.id}: its content changed but its version is still {task.version}; "
                "bump 'version' in the spec"
            )
        elif entry["version"] != task.version:
            problems.append(f"{task.id}: version {task.version} is not recorded yet")
    return problems


def update_lock(tasks: list[TaskSpec], lock: Path | None = None) -> list[Path]:
    """Record the specs' current hashes (in each family's lock, or in one ``lock`` file)."""
    by_file: dict[Path, dict[str, object]] = defaultdict(dict)
    for t in tasks:
        digest = t.for_profile("paper").spec_hash()
        by_file[lock or lock_file(t)][t.id] = {"version": t.version, "hash": digest}
    for path, lock in by_file.items():
        path.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    return sorted(by_file)


if __name__ == "__main__":
    from suite.tasks.loading import load_all_tasks

    if sys.argv[1:] != ["--update"]:
        raise SystemExit("usage: python -m suite.tasks.lock --update")
    for written in update_lock(load_all_tasks()):
        print(f"wrote {written}")

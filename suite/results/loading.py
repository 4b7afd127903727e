"""Loading a results folder into an aggregate, matched against the specs as they are now."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from suite.errors import SpecError
from suite.results.aggregate import Aggregate, aggregate
from suite.runs.plan import task_ref
from suite.runs.records import RunRecord, TaskRef, iter_records
from suite.tasks.loading import load_all_tasks, select_tasks
from suite.tasks.spec import PROFILES, SCALE_PREFIX


def current_refs(
    records: Sequence[RunRecord], profile: str | None = None, task_ids: Sequence[str] = ()
) -> dict[str, TaskRef | None]:
    """Per task with records: its current spec for ``profile`` (default: the profile of the
    task's newest record). Tasks without a spec keep their records' own description (None),
    unless ``task_ids`` narrows the selection."""
    specs = {t.id: t for t in select_tasks(load_all_tasks(), task_ids)}
    if profile and not any(s.has_profile(profile) for s in specs.values()):
        known = dict.fromkeys(p for s in specs.values() for p in (*PROFILES, *s.scale_profiles()))
        raise SpecError(f"Unknown profile '{profile}'. Profiles are: {', '.join(known)}.")
    newest: dict[str, RunRecord] = {}
    for rec in records:  # a scale point's records are never the default view of a task
        seen = newest.get(rec.task.id)
        key = (not rec.profile.startswith(SCALE_PREFIX), rec.provenance.created_at)
        if seen is None or key > (
            not seen.profile.startswith(SCALE_PREFIX),
            seen.provenance.created_at,
        ):
            newest[rec.task.id] = rec
    current: dict[str, TaskRef | None] = {}
    for task_id, rec in newest.items():
        spec = specs.get(task_id)
        chosen = profile or rec.profile.split("+")[0]
        if spec is None:
            if not task_ids:
                current[task_id] = None
        elif spec.has_profile(chosen):  # a task without the profile has no current records
            paper_hash = spec.for_profile("paper").spec_hash()
            current[task_id] = task_ref(spec.for_profile(chosen), paper_hash)
    return current


def load_results(
    results: Path, profile: str | None = None, task_ids: Sequence[str] = (), salt: str | None = None
) -> tuple[Aggregate, list[RunRecord]]:
    """The aggregate of a results folder; ``salt``: only the records of that seed salt ("" for
    the public seeds), where the boards would otherwise show the secret seeds' runs."""
    bad: list[Path] = []
    records = list(iter_records(results, bad))
    if salt is not None:
        records = [r for r in records if r.provenance.salt == salt]
    agg = aggregate(records, current_refs(records, profile, task_ids), unreadable=len(bad))
    return agg, records

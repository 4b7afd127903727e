"""Machine-readable downloads: every record as JSONL, the aggregate as CSV and Parquet, the array
metrics' means over seeds (what the plots draw) as CSV, and the claims with their verdicts."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from suite.results.aggregate import Aggregate
from suite.results.rows import report_rows
from suite.runs.records import RunRecord


def write_records_jsonl(path: Path, records: list[RunRecord]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec.model_dump(mode="json"), sort_keys=True) + "\n")


def write_table(csv_path: Path, parquet_path: Path | None, rows: list[dict[str, Any]]) -> None:
    if not rows:
        csv_path.write_text("")
        return
    columns = list(rows[0])
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    if parquet_path is not None:
        pq.write_table(pa.Table.from_pylist(rows), parquet_path)


def claim_rows(agg: Aggregate) -> list[dict[str, Any]]:
    rows = []
    for tres in agg.tasks:
        for verdict in tres.claims:
            d = verdict.as_dict()
            ours = d.pop("ours") or {}
            rows.append(
                {
                    "task": tres.task.id,
                    "seed_mode": tres.seed_mode,
                    "salt_id": tres.salt_id or None,
                    **d,
                    "ours_mean": ours.get("mean"),
                    "ours_ci_low": ours.get("ci_low"),
                    "ours_ci_high": ours.get("ci_high"),
                    "ours_n": ours.get("n"),
                }
            )
    return rows


def array_rows(agg: Aggregate) -> list[dict[str, Any]]:
    """One row per element of each gate's array metric: its coordinates, mean, 95% CI and n."""
    rows = []
    for tres in agg.tasks:
        for gres in tres.ordered_gates():
            for metric, info in tres.task.array_metrics().items():
                cell = gres.arrays.get(metric)
                if cell is None or cell.mean.ndim != len(info.axes):
                    continue
                coords = [list(cell.coords.get(a) or []) for a in info.axes]
                for index in np.ndindex(*cell.mean.shape):
                    row: dict[str, Any] = {
                        "task": tres.task.id,
                        "gate": gres.gate.id,
                        "metric": metric,
                        "kind": info.kind,
                    }
                    for k in range(2):  # arrays have one or two axes
                        on = k < len(index)
                        i = index[k] if on else None
                        row[f"axis_{k}"] = info.axes[k] if on else None
                        row[f"coord_{k}"] = coords[k][i] if on and i < len(coords[k]) else i
                    mean, low, high = (float(a[index]) for a in (cell.mean, cell.low, cell.high))
                    row.update(
                        mean=None if np.isnan(mean) else mean,
                        ci_low=None if np.isnan(low) else low,
                        ci_high=None if np.isnan(high) else high,
                        n=int(cell.n[index]),
                    )
                    rows.append(row)
    return rows


def write_downloads(folder: Path, agg: Aggregate, records: list[RunRecord]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    write_records_jsonl(folder / "records.jsonl", records)
    write_table(folder / "aggregate.csv", folder / "aggregate.parquet", report_rows(agg))
    write_table(folder / "arrays.csv", None, array_rows(agg))
    write_table(folder / "claims.csv", None, claim_rows(agg))
    return sorted(folder.iterdir())

"""Machine-readable downloads: every record as JSONL, the aggregate as CSV and Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from suite.results.aggregate import Aggregate, report_rows
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
                    **d,
                    "ours_mean": ours.get("mean"),
                    "ours_ci_low": ours.get("ci_low"),
                    "ours_ci_high": ours.get("ci_high"),
                    "ours_n": ours.get("n"),
                }
            )
    return rows


def write_downloads(folder: Path, agg: Aggregate, records: list[RunRecord]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    write_records_jsonl(folder / "records.jsonl", records)
    write_table(folder / "aggregate.csv", folder / "aggregate.parquet", report_rows(agg))
    write_table(folder / "claims.csv", None, claim_rows(agg))
    return sorted(folder.iterdir())

"""Evaluation splits as data: row-aligned arrays, their content hash, and a ``datasets.Dataset``
over them (every family's ``eval_dataset`` returns one; its fingerprint goes into records)."""

from __future__ import annotations

import hashlib

import datasets
import numpy as np
import pyarrow as pa


def fingerprint(columns: dict[str, np.ndarray]) -> str:
    """Content hash of named arrays (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(columns):
        arr = np.ascontiguousarray(columns[name])
        digest.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def to_dataset(columns: dict[str, np.ndarray], split: str = "eval") -> datasets.Dataset:
    """A ``datasets.Dataset`` over row-aligned arrays, fingerprinted by content.

    Multi-dimensional columns become fixed-size lists (zero-copy into Arrow); their shape per row
    is kept in the dataset description so a reader can reshape them.
    """
    arrays: dict[str, pa.Array] = {}
    shapes: dict[str, list[int]] = {}
    for name, arr in columns.items():
        arr = np.ascontiguousarray(arr)
        if arr.ndim == 1:
            arrays[name] = pa.array(arr)
        else:
            width = int(np.prod(arr.shape[1:]))
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), width)
            shapes[name] = list(arr.shape[1:])
    table = datasets.table.InMemoryTable(pa.table(arrays))
    info = datasets.DatasetInfo(description=f"GateBench evaluation split; row shapes {shapes}")
    return datasets.Dataset(
        table, info=info, split=datasets.NamedSplit(split), fingerprint=fingerprint(columns)
    )

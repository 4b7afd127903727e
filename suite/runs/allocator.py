"""glibc's allocator back to its defaults in a job's process, where Dask changed them.

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its default
``distributed.nanny.pre-spawn-environ``), and a ``LocalCluster`` leaves the variable in the
environment of the process that started it, so the harness's own job processes inherit it too.
Setting it also freezes glibc's mmap threshold at 128 KiB: every tensor above that size is then
mapped and zero-filled afresh at each allocation. Measured on Table 5 (9 routers × 5 seeds at the
paper profile, 2 workers): 101 s with the variable set against 50 s without, the same numbers.
"""

from __future__ import annotations

import ctypes
import os

VARIABLE = "MALLOC_TRIM_THRESHOLD_"
M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # where glibc's dynamic threshold settles at most (64-bit)


def restore_malloc_defaults() -> bool:
    """Undo ``MALLOC_TRIM_THRESHOLD_`` in this process and in the processes it starts from now
    on; True where it was set and glibc's ``mallopt`` took the new thresholds."""
    if os.environ.pop(VARIABLE, None) is None:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: nothing read the variable
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)
    )

"""Confine a run's process: writes only into its own scratch folder, bounded address space.

Writes are denied with Linux Landlock (kernel 5.13 or newer): once restricted, the process and
its children can create, change or delete files only beneath the allowed folders, so a submitted
gate cannot touch ``results/`` (only the parent process, the runner, writes records). Reading is
not restricted. Where Landlock is unavailable the run still gets its own working folder and
``TMPDIR``, and the record says which confinement applied.
"""

from __future__ import annotations

import ctypes
import os
import resource
from pathlib import Path

# syscall numbers shared by x86_64 and aarch64 (the generic table)
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE = (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and ABI 3


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 when it has none."""
    try:
        abi = _libc().syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


def _write_rights(abi: int) -> int:
    rights = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    return rights


def restrict_writes(allowed: list[Path]) -> bool:
    """Deny writes everywhere but beneath ``allowed`` for this process; False if unsupported."""
    abi = landlock_abi()
    if abi < 1:
        return False
    libc = _libc()
    rights = _write_rights(abi)
    attr = _RulesetAttr(rights)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return False
    try:
        for folder in allowed:
            if not folder.exists():
                continue
            fd = os.open(folder, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(rights, fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                    return False
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            return False
        return libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) == 0
    finally:
        os.close(ruleset)


def limit_memory(memory_mb: int) -> None:
    """Cap the address space at what the process already maps plus ``memory_mb``."""
    with open("/proc/self/status") as fh:
        mapped = next((int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:")), 0)
    limit = mapped + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def confine(scratch: Path, memory_mb: int | None) -> str:
    """Enter ``scratch`` and confine this process; returns a label of what applied."""
    os.chdir(scratch)
    for var in ("TMPDIR", "TEMP", "TMP", "HOME"):
        os.environ[var] = str(scratch)
    if memory_mb:
        limit_memory(memory_mb)
    # /dev for /dev/null and /dev/shm (shared memory of torch and multiprocessing)
    if restrict_writes([scratch, Path("/dev")]):
        return "landlock: writes only in the run's scratch folder"
    return "scratch folder only (Landlock unavailable on this kernel)"

"""Confine a run's process: writes only into its own scratch folder, no TCP, bounded address
space and file size, and nothing it started left running when it ends.

Writes are denied with Linux Landlock (kernel 5.13 or newer): once restricted, the process and
its children can create, change or delete files only beneath the allowed folders, so a submitted
gate cannot touch ``results/`` (only the parent process, the runner, writes records). Reading is
not restricted. Where Landlock is unavailable the run still gets its own working folder and
``TMPDIR``, and the record says which confinement applied.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
from pathlib import Path

# syscall numbers shared by x86_64 and aarch64 (the generic table)
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE = (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and ABI 3


_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_SIGNAL = 1 << 1  # ABI 6: no signals to processes outside the run's own domain
_PR_SET_CHILD_SUBREAPER = 36
FILE_LIMIT_MB = 512  # the largest file a run may write (its scratch folder only)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


def _attr_size(abi: int) -> int:
    """The ruleset struct as far as this kernel's ABI knows it."""
    return 8 if abi < 4 else 16 if abi < 6 else 24


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
    """Deny writes everywhere but beneath ``allowed`` for this process and its children, and
    (where the kernel's Landlock has them) every TCP connection and signals to processes outside
    the run; False if unsupported."""
    abi = landlock_abi()
    if abi < 1:
        return False
    libc = _libc()
    rights = _write_rights(abi)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    attr = _RulesetAttr(rights, net, _SCOPE_SIGNAL if abi >= 6 else 0)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), _attr_size(abi), 0)
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


def limit_files(file_mb: int = FILE_LIMIT_MB) -> None:
    """Cap the size of any file the process writes; a write past it fails with EFBIG instead of
    killing the process with SIGXFSZ."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def adopt_orphans() -> None:
    """Make this process its descendants' reaper and the leader of its own process group, so
    that what it starts can be found and stopped when it ends (``stop_descendants``)."""
    os.setpgrp()
    _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return found


def stop_descendants() -> int:
    """Kill every process this one started that is still running (orphans included, as this
    process is their reaper); the number killed."""
    killed, pending = 0, _children(os.getpid())
    while pending:
        pid = pending.pop()
        pending += _children(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def confine(scratch: Path, memory_mb: int | None) -> str:
    """Enter ``scratch`` and confine this process; returns a label of what applied."""
    adopt_orphans()
    os.chdir(scratch)
    for var in ("TMPDIR", "TEMP", "TMP", "HOME"):
        os.environ[var] = str(scratch)
    if memory_mb:
        limit_memory(memory_mb)
    limit_files()
    # /dev for /dev/null and /dev/shm (shared memory of torch and multiprocessing)
    if restrict_writes([scratch, Path("/dev")]):
        net = ", no TCP" if landlock_abi() >= 4 else ""
        return f"landlock: writes only in the run's scratch folder{net}"
    return "scratch folder only (Landlock unavailable on this kernel)"

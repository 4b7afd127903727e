"""Confine a run's process: writes only into its own scratch folder, no TCP, bounded address
space and file size, and nothing it started left running when it ends.

Files are guarded with Linux Landlock (kernel 5.13 or newer): once restricted, the process and
its children can create, change or delete files only beneath the run's scratch folder, so a
submitted gate cannot touch ``results/`` (only the parent process, the runner, writes records);
and they can read files only beneath the system's and Python's folders, GateBench's own code and
what the job itself needs (its submission's folder, its prepared artefact): not other
submissions, not the records. Where Landlock is unavailable the run still gets its own working
folder and ``TMPDIR``, and the record says which confinement applied.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import site
import sys
from pathlib import Path

# syscall numbers shared by x86_64 and aarch64 (the generic table)
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE = (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and ABI 3
_READ_FILE, _READ_DIR = 1 << 2, 1 << 3
_READ = _READ_FILE | _READ_DIR


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


SYSTEM_READABLE = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/opt",
                   "/proc", "/sys", "/dev", "/run")  # fmt: skip
CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout: suite/, baselines/, tests/


def python_folders() -> list[Path]:
    """Where the interpreter and its installed packages live."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    packages = set(site.getsitepackages()) | {site.getusersitepackages()}
    return [Path(p) for p in sorted(prefixes | packages)]


def default_readable() -> list[Path]:
    """What every job may read: the system, Python and GateBench's own code (not results/, not
    submissions/: the job adds its own submission's folder)."""
    code = [CODE_ROOT / name for name in ("suite", "baselines", "tests")]
    return [*map(Path, SYSTEM_READABLE), *python_folders(), *code]


def _add_rule(libc: ctypes.CDLL, ruleset: int, folder: Path, access: int) -> bool:
    try:
        fd = os.open(folder, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return True  # a folder that does not exist needs no rule
    try:
        rule = _PathBeneathAttr(access, fd)
        return libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) == 0
    finally:
        os.close(fd)


def restrict(writable: list[Path], readable: list[Path], listable: list[Path]) -> bool:
    """Confine this process and its children: writes only beneath ``writable``, reads only
    beneath ``writable`` and ``readable``, folder listings also beneath ``listable``; and (where
    the kernel's Landlock has them) no TCP and no signals to processes outside the run. False
    where the kernel cannot."""
    abi = landlock_abi()
    if abi < 1:
        return False
    libc = _libc()
    rights = _write_rights(abi)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    attr = _RulesetAttr(rights | _READ, net, _SCOPE_SIGNAL if abi >= 6 else 0)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), _attr_size(abi), 0)
    if ruleset < 0:
        return False
    try:
        rules = [(f, rights | _READ) for f in writable]
        rules += [(f, _READ) for f in readable] + [(f, _READ_DIR) for f in listable]
        if not all(_add_rule(libc, ruleset, folder, access) for folder, access in rules):
            return False
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


def confine(scratch: Path, memory_mb: int | None, readable: list[Path] = ()) -> str:
    """Enter ``scratch`` and confine this process (``readable``: what this job needs to read
    beyond ``default_readable``); returns a label of what applied."""
    adopt_orphans()
    os.chdir(scratch)
    for var in ("TMPDIR", "TEMP", "TMP", "HOME"):
        os.environ[var] = str(scratch)
    if memory_mb:
        limit_memory(memory_mb)
    limit_files()
    # /dev for /dev/null and /dev/shm (shared memory of torch and multiprocessing); the checkout
    # may be listed (imports look there) but only its code folders read
    if restrict([scratch, Path("/dev")], [*default_readable(), *readable], [CODE_ROOT]):
        net = ", no TCP" if landlock_abi() >= 4 else ""
        return f"landlock: writes only in the run's scratch folder, reads only code{net}"
    return "scratch folder only (Landlock unavailable on this kernel)"

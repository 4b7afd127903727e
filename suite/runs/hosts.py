"""Starting an untrusted gate's own process (``suite.gates.host``) beside the harness's.

The gate's process must never hold what the harness holds, so it is never forked from the
harness: the process executor forks it from its warm forkserver (milliseconds), and other
executors (inline, Dask workers, which may not fork children of their own) start a fresh
interpreter. Either way the two are joined by a Unix socket pair and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from suite.gates.host import host_main
from suite.runs.sandbox import CODE_ROOT

STOP_WAIT_S = 5.0


@dataclass
class HostProcess:
    """A running gate process and its scratch folder."""

    process: Any  # multiprocessing.Process or subprocess.Popen
    scratch: str

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def kill(self) -> None:
        """Stop the gate's process and everything it started (its own process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.process.kill()

    def stop(self) -> None:
        """Wait briefly for the process to end after the harness closed the connection, kill it
        otherwise, and remove its scratch folder."""
        if isinstance(self.process, subprocess.Popen):
            try:
                self.process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait()
        else:
            self.process.join(STOP_WAIT_S)
            if self.process.exitcode is None:
                self.kill()
                self.process.join()
        shutil.rmtree(self.scratch, ignore_errors=True)


def start_forked(
    ctx: Any, ref: dict[str, Any], memory_mb: int | None, threads: int, label: str
) -> tuple[socket.socket, HostProcess]:
    """A gate process forked from ``ctx``'s forkserver; returns the harness's end of the pair."""
    harness_end, host_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    scratch = tempfile.mkdtemp(prefix="gatebench-gate-")
    proc = ctx.Process(
        target=host_main,
        args=(host_end, ref, scratch, memory_mb, threads),
        name=f"gatebench gate: {label}",
        daemon=True,
    )
    proc.start()
    host_end.close()
    return harness_end, HostProcess(proc, scratch)


def start_exec(
    ref: dict[str, Any], memory_mb: int | None, threads: int
) -> tuple[socket.socket, HostProcess]:
    """A gate process in a fresh interpreter (where this process cannot fork children)."""
    harness_end, host_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    scratch = tempfile.mkdtemp(prefix="gatebench-gate-")
    fd = host_end.fileno()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CODE_ROOT), *sys.path])}
    args = [sys.executable, "-m", "suite.gates.host", str(fd), scratch, str(memory_mb or 0)]
    proc = subprocess.Popen(
        [*args, str(threads), json.dumps(ref)],
        pass_fds=[fd],
        cwd=scratch,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    host_end.close()
    return harness_end, HostProcess(proc, scratch)

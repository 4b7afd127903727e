"""Where a result came from: code version, environment and hardware, captured once per sweep."""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import suite

REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def git_state() -> tuple[str, bool]:
    """(commit, dirty); ("unknown", False) outside a git checkout."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "unknown", False
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, bool(status)


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu})"


def describe_device(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({hardware()})"


def environment(device: str, command: str) -> dict[str, object]:
    """The provenance fields shared by every record of one sweep."""
    commit, dirty = git_state()
    return {
        "suite_version": suite.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": describe_device(device),
        "command": command,
    }


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")

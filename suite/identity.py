"""Stable identities: content hashes that are equal on every machine, and file-system-safe names.

Cache keys, spec hashes, source hashes and artefact hashes all come from here, so two places can
never disagree on how a thing is hashed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def stable_hash(obj: Any) -> str:
    """sha256 of canonical JSON, shortened: equal inputs give equal hashes on every machine."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def files_hash(files: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over files' names (relative to ``root``) and contents, in name order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        name = path.relative_to(root).as_posix() if root else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def folder_hash(folder: Path, pattern: str = "*.py") -> str:
    """``files_hash`` of every file matching ``pattern`` under ``folder`` (caches excluded)."""
    files = [p for p in folder.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts]
    return files_hash(files, folder)


def slug(text: str) -> str:
    """A file-system-safe name for a task or gate id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("/", "__").replace("+", "-plus-"))

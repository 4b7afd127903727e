"""The seed salt of a sweep: public seeds, the results folder's leaderboard salt, a new secret
salt, or one read back from its file.

A submission is ranked only on data it cannot compute: with the specs' public seeds every stream
is a function of public code, so a gate can regenerate it and carry the answers. ``gatebench
submit`` therefore runs on the leaderboard salt by default (``RESULTS/salt``: drawn once from the
OS's randomness, readable only by its owner, never on a command line, published in the records
after the runs), and the baselines it is compared with run under the same salt.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from pathlib import Path

from suite.errors import GateBenchError

SALT_HELP = (
    "seed salt: 'public' (default: the specs' seeds), 'new' (draw a secret one, saved in "
    "RESULTS/salt) or a hex salt (visible to every process on this machine: prefer --salt-file): "
    "gates run with one salt share their data and are compared"
)
SUBMIT_SALT_HELP = (
    "seed salt: 'leaderboard' (default: the results folder's secret salt, RESULTS/salt, drawn on "
    "first use and reused so that submissions are compared on the same data), 'public' (the "
    "specs' seeds: a development result, shown but never ranked), 'new' or a hex salt"
)
SALT_FILE_HELP = "read the seed salt from this file (e.g. RESULTS/salt, written by --salt new)"
SALT_PATTERN = r"[0-9a-f]{8,64}"
PUBLIC, SECRET = "public", "secret"


def seed_mode(salt: str) -> str:
    """'public' for the specs' own seeds, 'secret' for a salted leaderboard's."""
    return SECRET if salt else PUBLIC


def salt_id(salt: str) -> str:
    """A short name of a salt that does not reveal it (the records publish the salt itself)."""
    return hashlib.sha256(salt.encode()).hexdigest()[:8] if salt else ""


def seed_label(salt: str) -> str:
    """How a board names its seeds, e.g. 'secret seeds (salt 1a2b3c4d)'."""
    return f"secret seeds (salt {salt_id(salt)})" if salt else "public seeds"


def _write_new_salt(path: Path) -> str:
    salt = secrets.token_hex(16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable
        with os.fdopen(fd, "w") as fh:  # by other users, not even for a moment
            fh.write(salt + "\n")
    except OSError as exc:
        raise GateBenchError(f"Cannot save the new salt in {path} ({exc}).") from exc
    return salt


def _read_salt(path: Path, flag: str) -> str:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise GateBenchError(f"{flag} {path}: cannot read it ({exc}).") from exc
    if not re.fullmatch(SALT_PATTERN, text):
        raise GateBenchError(
            f"{path}: not a salt (8 to 64 characters 0-9a-f); write the file with "
            "--salt new, which saves it as RESULTS/salt, or move it away to draw a new one."
        )
    return text


def leaderboard_salt(results: Path) -> str:
    """The results folder's leaderboard salt, drawn from the OS's randomness on first use."""
    path = results / "salt"
    if path.exists():
        return _read_salt(path, "leaderboard salt")
    salt = _write_new_salt(path)
    print(f"gatebench: drew the leaderboard's secret seed salt (id {salt_id(salt)}) and saved it "
          f"in {path}; later submissions reuse it, and every record publishes it after its run",
          file=sys.stderr)  # fmt: skip
    return salt


def resolve_salt(
    value: str | None,
    salt_file: Path | None = None,
    results: Path | None = None,
    default: str = "public",
) -> str:
    """The salt a sweep uses; 'new' draws one here, in the harness, before any gate runs.

    A salt on the command line can be read by every process of the machine, the gates' own
    included (``/proc/PID/cmdline`` needs no permission), so a leaderboard's salt travels in a
    file: the gates' sandbox cannot read ``results/``."""
    if salt_file is not None:
        if value is not None and value != "public":
            raise GateBenchError("Give the salt with --salt or with --salt-file, not both.")
        return _read_salt(salt_file, "--salt-file")
    value = default if value is None else value
    if value == "public":
        return ""
    if value == "leaderboard":
        if results is None:
            raise GateBenchError("--salt leaderboard needs a results folder to keep the salt in.")
        return leaderboard_salt(results)
    if value == "new":
        if results is None:
            salt = secrets.token_hex(16)
            print(f"gatebench: seed salt {salt}", file=sys.stderr)
            return salt
        path = results / "salt"
        if path.exists():
            raise GateBenchError(
                f"{path} holds the salt of an earlier --salt new: run more gates on its data with "
                f"--salt-file {path}, or move the file away to draw a new salt."
            )
        salt = _write_new_salt(path)
        print(f"gatebench: a new seed salt is saved in {path} (published in every record after "
              f"its run); run more gates on the same data with --salt-file {path}",
              file=sys.stderr)  # fmt: skip
        return salt
    if not re.fullmatch(SALT_PATTERN, value):
        raise GateBenchError(
            f"--salt {value!r} is not a salt: use 'public', 'leaderboard', 'new' or a hex salt "
            "printed by an earlier --salt new (8 to 64 characters 0-9a-f)."
        )
    print("gatebench: warning: a salt on the command line can be read by every process of this "
          "machine (/proc/PID/cmdline), the gates' included; for a leaderboard run give it with "
          "--salt-file", file=sys.stderr)  # fmt: skip
    return value

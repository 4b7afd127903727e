"""The seed salt of a sweep: public seeds, a new secret salt, or one read back from its file."""

from __future__ import annotations

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
SALT_FILE_HELP = "read the seed salt from this file (e.g. RESULTS/salt, written by --salt new)"
SALT_PATTERN = r"[0-9a-f]{8,64}"


def resolve_salt(value: str, salt_file: Path | None = None, results: Path | None = None) -> str:
    """The salt a sweep uses; 'new' draws one here, in the harness, before any gate runs.

    A salt on the command line can be read by every process of the machine, the gates' own
    included (``/proc/PID/cmdline`` needs no permission), so a leaderboard's salt travels in a
    file: the gates' sandbox cannot read ``results/``."""
    if salt_file is not None:
        if value != "public":
            raise GateBenchError("Give the salt with --salt or with --salt-file, not both.")
        try:
            text = salt_file.read_text().strip()
        except OSError as exc:
            raise GateBenchError(f"--salt-file {salt_file}: cannot read it ({exc}).") from exc
        if not re.fullmatch(SALT_PATTERN, text):
            raise GateBenchError(
                f"{salt_file}: not a salt (8 to 64 characters 0-9a-f); write the file with "
                "--salt new, which saves it as RESULTS/salt."
            )
        return text
    if value == "public":
        return ""
    if value == "new":
        salt = secrets.token_hex(16)
        if results is None:
            print(f"gatebench: seed salt {salt}", file=sys.stderr)
            return salt
        path = results / "salt"
        if path.exists():
            raise GateBenchError(
                f"{path} holds the salt of an earlier --salt new: run more gates on its data with "
                f"--salt-file {path}, or move the file away to draw a new salt."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable
            with os.fdopen(fd, "w") as fh:  # by other users, not even for a moment
                fh.write(salt + "\n")
        except OSError as exc:
            raise GateBenchError(f"Cannot save the new salt in {path} ({exc}).") from exc
        print(f"gatebench: a new seed salt is saved in {path} (published in every record after "
              f"its run); run more gates on the same data with --salt-file {path}",
              file=sys.stderr)  # fmt: skip
        return salt
    if not re.fullmatch(SALT_PATTERN, value):
        raise GateBenchError(
            f"--salt {value!r} is not a salt: use 'public', 'new' or a hex salt printed by "
            "an earlier --salt new (8 to 64 characters 0-9a-f)."
        )
    print("gatebench: warning: a salt on the command line can be read by every process of this "
          "machine (/proc/PID/cmdline), the gates' included; for a leaderboard run give it with "
          "--salt-file", file=sys.stderr)  # fmt: skip
    return value

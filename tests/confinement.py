"""Tests that need the kernel's Landlock: skipped where it is missing, unless the environment asks
for confinement (``GATEBENCH_REQUIRE_SANDBOX=1``, as ``.ci/run`` does), where they fail instead,
so a CI run can never pass without having confined a gate."""

from __future__ import annotations

import os

import pytest

from suite.runs.sandbox import landlock_abi


def need_landlock(abi: int = 1, what: str = "Landlock") -> None:
    found = landlock_abi()
    if found >= abi:
        return
    why = f"this kernel's Landlock ABI is {found}; this test needs {abi} ({what})"
    if os.environ.get("GATEBENCH_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"{why}, and GATEBENCH_REQUIRE_SANDBOX=1 asks for confinement")
    pytest.skip(why)

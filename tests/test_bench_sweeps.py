"""The bench's whole-sweep timings (``suite.bench.sweeps``), tried at the smoke profile."""

from __future__ import annotations

import pytest

from suite.bench.sweeps import table5_command_time


def test_the_table5_command_is_timed_as_typed():
    assert table5_command_time(1, ["affinity", "beta"], profile="smoke") > 0


def test_a_command_that_fails_is_an_error_naming_why():
    with pytest.raises(RuntimeError, match="Unknown gate"):
        table5_command_time(1, ["no-such-gate"], profile="smoke")

"""Sweep progress: plain lines for logs, a live bar at a terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from suite.runs.progress import Progress, duration


@pytest.mark.parametrize(
    "seconds, expected",
    [(0, "0s"), (42, "42s"), (42.4, "42s"), (59.4, "59s"), (60, "1m00s"), (187, "3m07s")],
)
def test_duration(seconds, expected):
    assert duration(seconds) == expected


def test_plain_mode_logs_one_formatted_line_per_job():
    lines: list[str] = []
    progress = Progress(12, lines.append, live=False)
    progress.line("ok", "copy/top2/seed0", "acc 0.912", 3.25)
    progress.line("failed", "copy/top2/seed1", "", 0.5)
    progress.close()
    progress.close()  # idempotent
    assert len(lines) == 2 and progress.done == 2
    first, second = lines
    head, eta = first.split("  eta ")
    assert head == f"[ 1/12] ok       {'copy/top2/seed0':<52} {'acc 0.912':<32}    3.2s"
    assert re.fullmatch(r"\d+s", eta), eta  # a few ms per job, 11 to go: still seconds
    head, _ = second.split("  eta ")
    assert head == f"[ 2/12] failed   {'copy/top2/seed1':<52} {'':<32}    0.5s"


def test_plain_mode_eta_is_zero_when_done():
    lines: list[str] = []
    with Progress(1, lines.append, live=False) as progress:
        progress.line("cached", "a", "h", 0.0)
    assert lines == [f"[1/1] cached   {'a':<52} {'h':<32}    0.0s  eta 0s"]


def test_live_mode_renders_bar_and_keeps_failures():
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    lines: list[str] = []
    with Progress(3, lines.append, live=True, console=console) as progress:
        progress.line("ok", "copy/top2/seed0", "acc 0.912", 1.0)
        progress.line("failed", "copy/[hash]/seed1", "", 2.0)  # brackets are not markup
        progress.line("ok", "recall/soft/seed2", "acc 0.5", 1.0)
    progress.close()  # after __exit__: still fine
    text = out.getvalue()
    assert lines == []  # the live display replaces the plain lines
    assert "recall/soft/seed2" in text and "3/3" in text
    failure = [ln for ln in text.splitlines() if "copy/[hash]/seed1" in ln]
    assert failure and failure[0].startswith("[2/3] failed")


def test_auto_mode_is_plain_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    lines: list[str] = []
    progress = Progress(2, lines.append)
    progress.line("ok", "a", "", 0.1)
    progress.close()
    assert not progress.live and len(lines) == 1

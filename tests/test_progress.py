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


def test_the_remaining_time_follows_planned_work_not_run_counts():
    """A sweep of one heavy job of 10 runs and 10 light single runs: after the heavy job, a
    count of runs would say as long again is left; the planned work says a ninth."""
    now = [100.0]
    lines: list[str] = []
    progress = Progress(20, lines.append, live=False, clock=lambda: now[0])  # before the checks
    now[0] = 110.0
    progress.expect(100.0)  # the runs start
    now[0] = 200.0
    progress.credit(90.0)
    for seed in range(10):
        progress.line("ok", f"heavy/seed{seed}", "", 9.0)  # 90 s for 90 of 100 units of work
    assert {line.split("  eta ")[1] for line in lines} == {"10s"}
    progress.credit(10.0)
    progress.line("ok", "light/seed0", "", 1.0)
    assert lines[-1].endswith("eta 0s")


def test_the_live_bar_counts_runs_and_advances_by_work():
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    with Progress(3, [].append, live=True, console=console) as progress:
        progress.expect(10.0)
        progress.credit(7.5)
        progress.line("ok", "a/seed0", "", 1.0)
        progress.line("ok", "a/seed1", "", 1.0)
        task = progress._bar.tasks[0]
        assert (task.total, task.completed, task.fields["runs"]) == (10.0, 7.5, "2/3")

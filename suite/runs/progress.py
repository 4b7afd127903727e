"""Live progress for long sweeps.

At an interactive terminal a `rich` bar shows counts, elapsed and remaining time and the last
finished job; in CI logs and pipes, where a redrawn bar turns into noise, each finished job is one
plain line instead. Failed jobs are always printed as a line of their own, so they are not lost.

The remaining time is measured in work, not runs, where the planner's estimates are given
(``expect`` and ``credit``): a sweep's runs differ in cost by a factor of a hundred, and a job's
runs finish together, so a count of runs would first promise an hour for a two-minute sweep.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

_QUIET = ("ok", "cached")  # statuses that the live bar only counts


def duration(seconds: float) -> str:
    """``42s`` under a minute, else ``3m07s``."""
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _interactive() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("CI")


class Progress:
    """Progress of a sweep: a live `rich` display when stderr is an interactive terminal, else
    one plain line per finished job (what CI logs show)."""

    def __init__(
        self,
        total: int,
        log: Callable[[str], None],
        live: bool | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.log, self.clock = total, 0, log, clock
        self.started = clock()
        self.work_total = self.work_done = 0.0
        self.live = _interactive() if live is None else live
        self._bar: RichProgress | None = None
        if self.live:
            self._bar = RichProgress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[runs]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console or Console(stderr=True),
            )
            self._task = self._bar.add_task("starting", total=total, runs=f"0/{total}")
            self._bar.start()

    def expect(self, work: float) -> None:
        """The planned work of the runs to come, in any unit; the clock restarts here (after
        the conformance checks), and ``credit`` then counts each finished job's share."""
        self.started, self.work_total, self.work_done = self.clock(), work, 0.0
        if self._bar is not None:
            self._bar.reset(self._task, total=work, completed=0.0, runs=f"{self.done}/{self.total}")

    def credit(self, work: float) -> None:
        """A job finished: its planned work counts as done (call before its runs' lines)."""
        self.work_done += work
        if self._bar is not None:
            self._bar.update(self._task, advance=work)

    def eta(self) -> float:
        elapsed = self.clock() - self.started
        if self.work_total > 0:
            left = max(0.0, self.work_total - self.work_done)
            return elapsed / self.work_done * left if self.work_done > 0 else 0.0
        return elapsed / self.done * (self.total - self.done) if self.done else 0.0

    def _plain(self, status: str, label: str, headline: str, wall_s: float) -> str:
        eta = self.eta() if self.done < self.total else 0.0
        width = len(str(self.total))
        return (
            f"[{self.done:>{width}}/{self.total}] {status:<8} {label:<52} {headline:<32} "
            f"{wall_s:6.1f}s  eta {duration(eta)}"
        )

    def line(self, status: str, label: str, headline: str, wall_s: float) -> None:
        """Record one finished run."""
        self.done += 1
        text = self._plain(status, label, headline, wall_s)
        if self._bar is None:
            self.log(text)
            return
        if status not in _QUIET:
            self._bar.console.print(Text(text.rstrip(), style="red"))
        description = escape(f"{label}  {headline}".strip())
        counted = 0 if self.work_total > 0 else 1  # runs advance the bar until work is known
        runs = f"{self.done}/{self.total}"
        self._bar.update(self._task, advance=counted, description=description, runs=runs)

    def close(self) -> None:
        """Stop the live display; safe to call more than once."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Live progress for long sweeps.

At an interactive terminal a `rich` bar shows counts, elapsed and remaining time and the last
finished job; in CI logs and pipes, where a redrawn bar turns into noise, each finished job is one
plain line instead. Failed jobs are always printed as a line of their own, so they are not lost.
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
    MofNCompleteColumn,
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
    ) -> None:
        self.total, self.done, self.log = total, 0, log
        self.started = time.monotonic()
        self.live = _interactive() if live is None else live
        self._bar: RichProgress | None = None
        if self.live:
            self._bar = RichProgress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console or Console(stderr=True),
            )
            self._task = self._bar.add_task("starting", total=total)
            self._bar.start()

    def _plain(self, status: str, label: str, headline: str, wall_s: float) -> str:
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        eta = elapsed / self.done * left if self.done else 0.0
        width = len(str(self.total))
        return (
            f"[{self.done:>{width}}/{self.total}] {status:<8} {label:<52} {headline:<32} "
            f"{wall_s:6.1f}s  eta {duration(eta)}"
        )

    def line(self, status: str, label: str, headline: str, wall_s: float) -> None:
        """Record one finished job."""
        self.done += 1
        text = self._plain(status, label, headline, wall_s)
        if self._bar is None:
            self.log(text)
            return
        if status not in _QUIET:
            self._bar.console.print(Text(text.rstrip(), style="red"))
        description = escape(f"{label}  {headline}".strip())
        self._bar.update(self._task, advance=1, description=description)

    def close(self) -> None:
        """Stop the live display; safe to call more than once."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

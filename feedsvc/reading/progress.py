"""What a refresh is doing right now, for /healthz: how long it has been running and which file it reads.

The refresh marks itself with `with publisher.progress.running():` (feedsvc/building/site.py) and each file it
reads with `with reading(source):` (feedsvc/reading/scan.py). Both are cheap: two attribute writes, no lock.
A request only calls `Progress.now()`.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

_current = threading.local()  # the Progress of the refresh running in this thread, if any


class Progress:
    """Since when a refresh has been running (None when none is) and the file it is reading (None between files)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started: float | None = None
        self.file: str | None = None

    @contextmanager
    def running(self) -> Iterator["Progress"]:
        """Mark a refresh as running in this thread for the duration of the block."""
        self.started, self.file = self.clock(), None
        _current.progress = self
        try:
            yield self
        finally:
            _current.progress = None
            self.started = self.file = None

    def now(self) -> tuple[float, str | None] | None:
        """(seconds the refresh has been running, the file it reads or None), or None when no refresh runs."""
        started, file = self.started, self.file
        if started is None:
            return None
        return max(0.0, self.clock() - started), file


@contextmanager
def reading(source: str) -> Iterator[None]:
    """Note that the refresh running in this thread reads `source` (relative to the articles folder)."""
    progress = getattr(_current, "progress", None)
    if progress is None:
        yield
        return
    progress.file = source
    try:
        yield
    finally:
        progress.file = None

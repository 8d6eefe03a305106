"""The state file under a running builder, deleted (a slip, a clean-up script) or replaced while feedsvc runs.

SQLite's connections follow the file they opened, not its path: with the file deleted, the builder went on committing
builds into a file no process could open again, while a serving process started since made an empty one at the path and
answered every feed with a 503, for good. The builder now notices within a heartbeat (building/lock.py) and ends, so
that a serving process builds on the file at the path, as at a start (a file made anew: a deployment's first scan).
Nothing is written back: the write-ahead log and its index are named by the path, and a copy put there would pair with
whatever log another process has made there meanwhile (https://www.sqlite.org/walformat.html). Serving processes answer
from the last build they hold until the file at the path has one (store.StoreReader._follow_file).
"""
from __future__ import annotations

from pathlib import Path

from ..store import file_identity


class StateFile:
    """The state file as this builder opened it, told apart from what its path names later."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.identity = _identity(self.path)

    def check(self) -> str | None:
        """None while the path names the file opened (or when that cannot be told now); else one line saying what
        happened to it."""
        found = _identity(self.path)
        if found is _UNKNOWN or found == self.identity:
            return None
        if self.identity is _UNKNOWN:  # not told at the start (a stat that failed then): the file is the one found now
            self.identity = found
            return None if found is not None else f"the state file {self.path} was deleted while feedsvc ran"
        if found is None:
            return f"the state file {self.path} was deleted while feedsvc ran"
        return f"the state file {self.path} was replaced while feedsvc ran"


_UNKNOWN = (-1, -1)  # a stat that failed for another reason than the file's absence (its folder's permissions, I/O)


def _identity(path: str) -> tuple[int, int] | None:
    """store.file_identity, _UNKNOWN when it cannot be told now."""
    try:
        return file_identity(path)
    except OSError:
        return _UNKNOWN

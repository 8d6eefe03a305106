"""The state file under a running builder, deleted (a slip, a clean-up script) or replaced while feedsvc runs.

SQLite's connections follow the file they opened, not its path: with the file deleted, the builder went on committing
builds into a file no process could open again, while a serving process started since made an empty one at the path and
answered every feed with a 503, for good. The builder now notices within a heartbeat (building/lock.py), writes a
deleted file back from the copy it still holds open, and ends, so that a serving process builds on the file at the path
(serving processes follow it too: store.StoreReader._follow_file).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from ..store import connect, file_identity

log = logging.getLogger(__name__)

_LOG = ("-wal", "-shm")  # SQLite's write-ahead log and its index, beside the file (https://www.sqlite.org/walformat.html)


class StateFile:
    """The state file as this builder opened it: told apart from what its path names later, and written back from."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.identity = file_identity(self.path)
        # An idle connection that holds the file (and, once it has read, its write-ahead log) as opened: what a deleted
        # file is copied back from. It reads once now, so that it has the log open before anything can delete it.
        # Read-only: it never checkpoints, nor deletes a write-ahead log by its name as a closing writer may.
        self._held = connect(self.path, readonly=True)
        self._held.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def check(self) -> str | None:
        """None while the path names the file opened; else one line saying what happened to it (a deleted file is
        written back first, from what this process holds of it, unless another file is at the path by then)."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            found = None
        except OSError:  # cannot tell now (its folder's permissions): looked at again at the next heartbeat
            return None
        else:
            found = named.st_dev, named.st_ino
        if found == self.identity:
            # Its write-ahead log and index are there while any connection is open (this one is): gone, they were
            # deleted, and with them what the file did not hold yet; every commit after failed ("disk I/O error").
            if all(os.path.exists(self.path + part) for part in _LOG):
                return None
            if self._write_back(over=True):
                return f"the write-ahead log of the state file {self.path} was deleted while feedsvc ran: the file is written anew as this builder held it"
            return f"the write-ahead log of the state file {self.path} was deleted while feedsvc ran, and the file could not be written anew"
        if found is not None:
            return f"the state file {self.path} was replaced while feedsvc ran"
        if self._write_back():
            return f"the state file {self.path} was deleted while feedsvc ran: it is written back as this builder held it"
        return f"the state file {self.path} was deleted while feedsvc ran, and could not be written back"

    def _write_back(self, over: bool = False) -> bool:
        """Copy the file as held to its path (SQLite's online backup: one consistent snapshot), never over a file put
        there meanwhile (a hard link made in one step), or over the file held itself (over: renamed onto it, a new file
        that serving processes then read); False when it could not be."""
        temporary = f"{self.path}.{os.getpid()}.restoring"
        try:
            copy = sqlite3.connect(temporary)
            try:
                self._held.backup(copy)
            finally:
                copy.close()
            for leftover in _LOG:  # the deleted file's (held open by this process): SQLite would replay that log into
                with contextlib.suppress(FileNotFoundError):  # the file written back
                    os.unlink(self.path + leftover)
            if over:
                os.replace(temporary, self.path)
            else:
                os.link(temporary, self.path)
            return True
        except (OSError, sqlite3.Error) as exc:
            log.warning("cannot write the state file %s back: %s", self.path, exc)
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

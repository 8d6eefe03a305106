"""Articles asked for before the builder has read them (the background reading after a cold start): a small queue in
the store's SQLite file, its own table, that any serving process adds to and the builder reads and empties.

A serving process that needs an article the builder has only placed so far (an archive page, a delta, a partner's
view or an article page holding it: feedsvc/serving/variants.py) asks for its ID here and waits a bounded time for
the build that holds it; the builder's background reading (building/background.py) looks at the queue every
POLL_SECONDS, reads the files asked for at once, commits them, then answers: the rows go. A row nobody answers (a
builder stopped, or none) goes after KEEP_SECONDS, whoever looks next. Neutral: imports no stage.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from .transactions import setting_up, transaction

SCHEMA = """CREATE TABLE IF NOT EXISTS wanted (
    id TEXT PRIMARY KEY,  -- an article ID a serving process needs and found no stored item for
    asked REAL NOT NULL  -- when it was first asked for (Unix seconds)
)"""
KEEP_SECONDS = 60.0  # a want older than this is dropped unanswered: whoever asked has long given up
POLL_SECONDS = 0.02  # how often the builder looks at the queue while it reads in the background, and a waiter at the store


class Wanted:
    """The queue of wanted article IDs in one store file; a connection per thread, never waiting past a bound."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time):
        self.path, self.clock = Path(path), clock
        self._local = threading.local()

    def _conn(self, wait: float) -> sqlite3.Connection:
        """This thread's connection, waiting at most `wait` seconds for the file's write lock."""
        kept = getattr(self._local, "conn", None)
        if kept is None or kept[0] != os.getpid():
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            with setting_up(conn):
                # A serving process's few rows never checkpoint the builder's write-ahead log (hundreds of MB after a
                # cold start): that is the builder's work, and would hold a request for seconds.
                conn.execute("PRAGMA wal_autocheckpoint=0")
                conn.execute(f"PRAGMA busy_timeout={max(0, int(wait * 1000))}")
                conn.execute(SCHEMA)  # a no-op once the table is there
            kept = (os.getpid(), conn)
            self._local.conn = kept
        else:
            kept[1].execute(f"PRAGMA busy_timeout={max(0, int(wait * 1000))}")
        return kept[1]

    def ask(self, ids: Iterable[str], wait: float = 1.0) -> bool:
        """Add these IDs (those already asked for keep their time) and drop wants older than KEEP_SECONDS;
        False when the file stayed locked for `wait` seconds (the builder committing, or stopped mid-commit)."""
        now = self.clock()
        return self._write(wait, ("INSERT OR IGNORE INTO wanted VALUES (?, ?)", [(id_, now) for id_ in ids]),
                           ("DELETE FROM wanted WHERE asked < ?", [(now - KEEP_SECONDS,)]))

    def waiting(self, ids: Iterable[str]) -> set[str]:
        """Those of these IDs still asked for (not answered yet)."""
        ids = list(ids)
        if not ids:
            return set()
        query = f"SELECT id FROM wanted WHERE id IN ({','.join('?' * len(ids))})"
        return {row[0] for row in self._conn(1.0).execute(query, ids)}

    def asked(self) -> list[str]:
        """The builder's look: every ID asked for and not too old, first asked first."""
        rows = self._conn(1.0).execute("SELECT id FROM wanted WHERE asked >= ? ORDER BY asked, id",
                                       (self.clock() - KEEP_SECONDS,))
        return [row[0] for row in rows]

    def answer(self, ids: Iterable[str], wait: float = 30.0) -> None:
        """The builder has committed what it could of these IDs: their wants go, with any older than KEEP_SECONDS;
        sqlite3.OperationalError when the file stayed locked for `wait` seconds."""
        if not self._write(wait, ("DELETE FROM wanted WHERE id = ?", [(id_,) for id_ in ids]),
                           ("DELETE FROM wanted WHERE asked < ?", [(self.clock() - KEEP_SECONDS,)])):
            raise sqlite3.OperationalError(f"{self.path} stayed locked for {wait:g} s; the wants are answered at the next commit")

    def withdraw(self, ids: Iterable[str], wait: float = 0.2) -> None:
        """A serving process found these stored after all (a build landed as it asked): their wants go, if the
        file is free within `wait`; else they go after KEEP_SECONDS, as any want does. Without it a want made a
        moment after the builder's last look stays in the queue with nobody to answer it."""
        rows = [(id_,) for id_ in ids]
        if rows:
            self._write(wait, ("DELETE FROM wanted WHERE id = ?", rows))

    def _write(self, wait: float, *statements: tuple[str, list[tuple]]) -> bool:
        """Run these statements (each with its rows) in one transaction; False when the file stayed locked for
        `wait` seconds (a serving process never waits past its bound)."""
        try:
            conn = self._conn(wait)
            with transaction(conn):
                for sql, rows in statements:
                    conn.executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return False
        return True

    def count(self) -> int:
        """How many wants the queue holds (tests, /healthz)."""
        return self._conn(1.0).execute("SELECT COUNT(*) FROM wanted").fetchone()[0]

"""One SQLite write transaction as a block, for the stores that run their own (isolation_level=None).

Neutral: the build store, the search index and the wants queue use it; it imports nothing of feedsvc.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """BEGIN, the block, COMMIT; whatever ends the block early rolls the transaction back and goes on.

    Rolled back only while one is open: SIGTERM's handler (the builder's `sys.exit(0)`) may raise SystemExit just
    after COMMIT returned, and a ROLLBACK then would fail with "no transaction is active" and replace the exit with
    an OperationalError that a refresh logs and survives — a builder that ignores its TERM.
    """
    conn.execute(begin)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise

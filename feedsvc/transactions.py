"""SQLite helpers for the stores: a new connection's set-up, one write transaction as a block (for the stores that run
their own, isolation_level=None), rows asked for by many keys, and the hash a stored row's made_from is compared by.

Neutral: the build store, the state store, the search index and the wants queue use it; it imports nothing of feedsvc.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterable, Iterator

KEYS_AT_ONCE = 500  # keys bound to one query: SQLite caps the parameters of a statement (999 before 3.32)


@contextmanager
def setting_up(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A new connection, for the statements that set it up: closed at once if one fails, not left to the cyclic
    collector (a connection and its statement cache hold each other), which may close it after a fork, in the copy too,
    letting go of the copy's locks on the file (https://sqlite.org/howtocorrupt.html#_carrying_an_open_database_connection_across_a_fork_)."""
    try:
        yield conn
    except BaseException:
        conn.close()
        raise


def rows_for(conn: sqlite3.Connection, query: str, keys: Iterable, params: tuple = ()) -> Iterator[tuple]:
    """The rows of `query` for many keys: its `{marks}` stands for the keys' placeholders, after `params`; asked
    KEYS_AT_ONCE keys at a time, each chunk's rows read before the next is asked."""
    keys = list(keys)
    for start in range(0, len(keys), KEYS_AT_ONCE):
        chunk = keys[start:start + KEYS_AT_ONCE]
        yield from conn.execute(query.format(marks=",".join("?" * len(chunk))), (*params, *chunk)).fetchall()


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


def made_hash(made_from: str) -> int:
    """What is compared of a stored row's made_from (the build store's rows, the search index's): this process's str
    hash, an int where the text is about 290 bytes (a restart's first build held 200,000 of those texts at 100,000
    articles, 55 MB). Never stored: read in this process or a fork of it (storewriter.held_at in children.Ahead), which has
    its hash secret. Two texts of a row with one 64-bit hash (a change left unseen) are a 2**-64 chance."""
    return hash(made_from)

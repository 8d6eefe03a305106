"""One SQLite write transaction as a block (feedsvc/transactions.py): committed whole, rolled back on any early
end, and an exit raised as COMMIT returns (SIGTERM's handler) stays an exit."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from feedsvc.search import SearchIndexer
from feedsvc.building.storewriter import Build, StoreWriter
from feedsvc.transactions import transaction
from feedsvc.wanted import Wanted


class TermAtCommit:
    """A connection whose COMMIT is followed at once by SystemExit, as when SIGTERM arrives during it: the builder's
    handler is `sys.exit(0)`, raised when the statement returns."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql, *args):
        done = self.conn.execute(sql, *args)
        if sql == "COMMIT":
            raise SystemExit(0)
        return done

    def __getattr__(self, name):
        return getattr(self.conn, name)


def table(tmp_path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None)
    conn.execute("CREATE TABLE t (v INTEGER)")
    return conn


def rows(conn) -> list[int]:
    return [v for (v,) in conn.execute("SELECT v FROM t")]


def test_a_block_is_committed_whole_or_rolled_back_whole(tmp_path):
    conn = table(tmp_path)
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(KeyError):
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            raise KeyError("stopped midway")
    assert rows(conn) == [1] and not conn.in_transaction


def test_an_exit_raised_as_commit_returns_is_still_an_exit_and_the_rows_are_in(tmp_path):
    conn = table(tmp_path)
    with pytest.raises(SystemExit):  # not "cannot rollback - no transaction is active"
        with transaction(TermAtCommit(conn)):
            conn.execute("INSERT INTO t VALUES (1)")
    assert rows(conn) == [1]


def test_a_builder_terminated_as_its_build_commits_exits(tmp_path):
    writer = StoreWriter(tmp_path / "state.sqlite3")
    writer.conn = TermAtCommit(writer.conn)
    with pytest.raises(SystemExit):
        writer.commit(Build({}), datetime(2026, 1, 1, tzinfo=timezone.utc))


def test_the_search_index_and_the_wants_queue_keep_an_exit_too(tmp_path):
    indexer = SearchIndexer(tmp_path / "state.sqlite3")
    StoreWriter(tmp_path / "state.sqlite3")  # the schema, the index's tables with it
    indexer._conn = TermAtCommit(sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None))
    with pytest.raises(SystemExit):
        indexer.sync({}, None)
    wanted = Wanted(tmp_path / "wanted.sqlite3")
    real = wanted._conn
    wanted._conn = lambda wait: TermAtCommit(real(wait))
    with pytest.raises(SystemExit):
        wanted.withdraw(["an-id"])

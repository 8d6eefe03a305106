"""The queue of articles serving processes ask the builder for (feedsvc/wanted.py): small, answered, self-cleaning,
and never holding a request past its bound."""
from __future__ import annotations

import sqlite3
import time

from feedsvc.store import create_schema
from feedsvc.wanted import KEEP_SECONDS, Wanted


def test_a_want_is_kept_until_the_builder_answers_it(tmp_path):
    path = tmp_path / "state.sqlite3"
    create_schema(path)
    worker, builder = Wanted(path), Wanted(path)
    assert worker.ask(["b", "a"]) and worker.ask(["a", "c"])  # asked twice: one want
    assert builder.asked() == ["a", "b", "c"] and worker.waiting(["a", "c", "z"]) == {"a", "c"}
    builder.answer(["a", "b"])
    assert worker.waiting(["a", "b", "c"]) == {"c"} and builder.count() == 1


def test_a_want_nobody_answers_goes_after_a_minute(tmp_path):
    path = tmp_path / "state.sqlite3"
    now = [1_000_000.0]
    worker = Wanted(path, clock=lambda: now[0])
    worker.ask(["old"])
    now[0] += KEEP_SECONDS / 2
    worker.ask(["newer"])
    assert worker.asked() == ["old", "newer"]
    now[0] += KEEP_SECONDS / 2 + 1
    assert worker.asked() == ["newer"]  # the builder no longer reads it for anyone
    worker.ask(["another"])  # whoever writes next drops it
    assert worker.count() == 2 and worker.waiting(["old", "newer", "another"]) == {"newer", "another"}


def test_asking_waits_for_a_locked_file_only_as_long_as_it_is_told(tmp_path):
    """A builder stopped in the middle of a commit holds the file's write lock: a request gives up, it does not hang."""
    path = tmp_path / "state.sqlite3"
    create_schema(path)
    Wanted(path).ask(["x"])  # the table exists
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert Wanted(path).ask(["y"], wait=0.3) is False
        assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert Wanted(path).ask(["y"]) is True


def test_a_want_found_stored_after_all_is_withdrawn_and_a_locked_file_only_delays_it(tmp_path):
    """A request that asks a moment after the builder's last look finds its articles stored itself: it takes its
    want back, or the want would wait a minute with nobody to answer it."""
    path = tmp_path / "state.sqlite3"
    create_schema(path)
    worker = Wanted(path)
    worker.ask(["late", "other"])
    worker.withdraw(["late"])
    assert worker.asked() == ["other"]
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the builder in a commit
    try:
        started = time.monotonic()
        worker.withdraw(["other"], wait=0.1)  # given up on, not waited for
        assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert worker.asked() == ["other"]


def test_the_builders_first_look_reads_the_queue_while_a_commit_holds_the_file(tmp_path):
    """A cold start's first commit holds the store's write lock for seconds at 100,000 articles: the builder's look at
    the queue meanwhile is a read, which WAL lets through, because the queue's table is made with the store's."""
    path = tmp_path / "state.sqlite3"
    create_schema(path)
    committing = sqlite3.connect(path, isolation_level=None)
    committing.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert Wanted(path).asked() == []
        assert time.monotonic() - started < 0.5
    finally:
        committing.execute("ROLLBACK")
        committing.close()

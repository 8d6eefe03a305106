"""The state store keeps first-seen and updated times stable across restarts and processes."""
from __future__ import annotations

import multiprocessing
import os

import pytest
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.model import Article
from feedsvc.building.state import StateStore, _Moments

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def article(id_: str, content: str = "v1", **fields) -> Article:
    return Article(id=id_, source=id_ + ".txt", title="t", categories=("c",), body_html="", body_text="",
                   summary="s", lang="en", content_hash="b:" + content, **fields)  # a hash of bytes (articles.content_hash)


def test_first_seen_becomes_the_published_date_and_survives_a_restart(tmp_path):
    path = tmp_path / "state.sqlite3"
    first = StateStore(path).stamp([article("a")], T0)[0]
    again = StateStore(path).stamp([article("a")], T0 + timedelta(days=3))[0]
    assert first.published == again.published == T0


def test_unchanged_content_never_moves_updated(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    store.stamp([article("a")], T0)
    later = store.stamp([article("a")], T0 + timedelta(hours=5))[0]
    assert later.updated == later.published == T0


def test_changed_content_moves_updated_but_not_published(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    store.stamp([article("a", "v1")], T0)
    changed = store.stamp([article("a", "v2")], T0 + timedelta(hours=5))[0]
    assert changed.published == T0
    assert changed.updated == T0 + timedelta(hours=5)
    assert store.stamp([article("a", "v2")], T0 + timedelta(days=1))[0].updated == T0 + timedelta(hours=5)


def test_a_store_from_before_hashes_of_bytes_takes_them_over_without_calling_articles_updated(tmp_path):
    from dataclasses import replace

    store = StateStore(tmp_path / "s.sqlite3")
    store.stamp([replace(article("a"), content_hash="9f86d081884c7d65")], T0)  # a hash of the decoded text, as recorded before
    taken = store.stamp([article("a", "v1")], T0 + timedelta(hours=5))[0]
    assert taken.updated == taken.published == T0
    changed = store.stamp([article("a", "v2")], T0 + timedelta(hours=6))[0]
    assert (changed.published, changed.updated) == (T0, T0 + timedelta(hours=6))


def test_articles_new_and_changed_in_one_stamp_never_share_an_updated_time(tmp_path):
    """A new file and an edited one seen by one refresh, or two edits: each gets a time of its own (two entries with one
    `updated` read as duplicates), the same after a restart. The edit stepped a microsecond past now, then was capped
    back to now (when its content was seen)."""
    path = tmp_path / "s.sqlite3"
    store = StateStore(path)
    store.stamp([article("a"), article("e")], T0)
    now = T0 + timedelta(hours=1)
    stamped = store.stamp([article("a", "v2"), article("e", "v2"), article("n")], now)
    times = [a.updated for a in stamped]
    assert len(set(times)) == 3 and min(times) == now and max(times) - now < timedelta(milliseconds=1)
    assert [a.updated for a in StateStore(path).stamp([article("a", "v2"), article("e", "v2"), article("n")], now)] == times


def test_a_change_moves_updated_forward_even_when_the_file_kept_an_old_time(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    store.stamp([article("a", "v1")], T0)
    old_mtime = {"a": T0 - timedelta(days=30)}
    changed = store.stamp([article("a", "v2")], T0 + timedelta(hours=1), appeared=old_mtime)[0]
    assert changed.updated > T0


def test_front_matter_dates_win_over_the_store(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    dated = store.stamp([article("a", published=T0 - timedelta(days=9), updated=T0 - timedelta(days=2))], T0)[0]
    assert dated.published == T0 - timedelta(days=9)
    assert dated.updated == T0 - timedelta(days=2)


def test_articles_first_seen_in_one_scan_get_distinct_times_from_their_files(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    appeared = {"a": T0 - timedelta(hours=2), "b": T0 - timedelta(hours=1), "c": T0 + timedelta(hours=1)}
    stamped = {a.id: a for a in store.stamp([article("a"), article("b"), article("c"), article("d")], T0, appeared)}
    assert stamped["a"].published == T0 - timedelta(hours=2)
    assert stamped["b"].published == T0 - timedelta(hours=1)
    # A file time in the future is not trusted; two articles never share one timestamp.
    assert {stamped["c"].published, stamped["d"].published} == {T0, T0 - timedelta(microseconds=1)}


def test_a_file_appearing_in_a_running_deployment_is_dated_when_first_seen_not_by_its_old_mtime(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    store.stamp([article("old")], T0, {"old": T0 - timedelta(days=400)})  # the first scan: a back catalogue
    later = T0 + timedelta(days=2)
    copied = store.stamp([article("copied")], later, {"copied": T0 - timedelta(days=365)})[0]  # cp -p, rsync -t, tar
    assert copied.published == copied.updated == later


def test_only_the_first_scan_of_an_empty_store_orders_a_back_catalogue_by_mtime(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    appeared = {"a": T0 - timedelta(days=3), "b": T0 - timedelta(days=1)}
    stamped = {a.id: a.published for a in store.stamp([article("a"), article("b")], T0, appeared)}
    assert stamped == appeared


def test_a_burst_of_new_files_is_dated_now_in_the_order_they_were_written(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    store.stamp([article("first")], T0)
    appeared = {"x": T0 - timedelta(days=9), "y": T0 - timedelta(days=30), "z": T0 - timedelta(days=1)}
    later = T0 + timedelta(hours=1)
    stamped = {a.id: a.published for a in store.stamp([article("x"), article("y"), article("z")], later, appeared)}
    assert stamped["z"] == later and later - timedelta(seconds=1) < stamped["y"] < stamped["x"] < stamped["z"]


def test_a_change_copied_in_with_an_old_mtime_is_dated_when_seen(tmp_path):
    store = StateStore(tmp_path / "s.sqlite3")
    store.stamp([article("a", "v1")], T0)
    later = T0 + timedelta(hours=3)
    changed = store.stamp([article("a", "v2")], later, {"a": T0 - timedelta(days=30)})[0]
    assert changed.updated == later and changed.published == T0


def _stamp_many(path: str, worker: int, queue) -> None:
    store = StateStore(path)
    now = T0 + timedelta(seconds=worker)
    results = {}
    for round_ in range(20):
        stamped = store.stamp([article(f"a{i}") for i in range(50)], now + timedelta(minutes=round_))
        results.update({a.id: a.published.isoformat() for a in stamped})
    queue.put(results)


def test_several_processes_share_the_store_without_lost_dates_or_lock_errors(tmp_path):
    path = str(tmp_path / "shared.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_stamp_many, args=(path, w, queue)) for w in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    # Every process saw the same first-seen date for every article.
    assert all(r == results[0] for r in results)


def _open_at_once(path: str, barrier) -> None:
    from feedsvc.store import create_schema

    barrier.wait()
    StateStore(path)
    create_schema(path)


def test_processes_opening_a_new_state_file_at_the_same_moment_all_start(tmp_path):
    # `gunicorn -w 2 wsgi:app` on a fresh STATE_PATH: each worker sets up the file as it boots. Switching a new
    # file to WAL answered "database is locked" at once (no busy wait) to all but one of them; a worker exited.
    ctx = multiprocessing.get_context("fork")
    failed = []
    for round_ in range(20):
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open_at_once, args=(str(tmp_path / f"new-{round_}.sqlite3"), barrier)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        failed += [p.exitcode for p in procs if p.exitcode != 0]
    assert failed == []


def test_many_keys_read_the_whole_table_and_get_the_rows_a_lookup_gets(tmp_path, monkeypatch):
    import feedsvc.building.state as state

    answers = []
    for whole_from in (10_000, 3):  # looked up 500 at a time, then read whole and filtered
        monkeypatch.setattr(state, "WHOLE_FROM", whole_from)
        store = StateStore(tmp_path / f"s{whole_from}.sqlite3")
        store.stamp([article(f"a{n}") for n in range(8)] + [article("gone")], T0)
        store.claim_ids({f"a{n}": [f"a{n}.txt"] for n in range(8)})
        stamped = store.stamp([article(f"a{n}", "v2" if n % 2 else "v1") for n in range(6)], T0 + timedelta(hours=1))
        owners = store.claim_ids({f"a{n}": [f"x{n}.txt", f"a{n}.txt"] for n in range(6)} | {"new": ["new.txt"]})
        times = store.record_versions({f"k{n}": "d" for n in range(5)}, T0)
        answers.append(([(a.id, a.published, a.updated) for a in stamped], owners, times,
                         store.recorded_versions([f"k{n}" for n in range(5)] + ["none"])))
    assert answers[0] == answers[1]
    assert answers[1][1]["a1"] == "a1.txt" and answers[1][1]["new"] == "new.txt"


@given(st.lists(st.integers(min_value=0, max_value=40), max_size=60))
@settings(max_examples=300, deadline=None)
def test_the_first_claims_of_bases_that_never_rise_are_what_claiming_each_in_turn_gives(offsets):
    """A cold start claims its new articles' moments at once (claim_down): the same moments, crowded or not, as one
    claim after another, and the moments it handed out are taken for the claims that follow."""
    bases = [T0 + timedelta(microseconds=o) for o in sorted(offsets, reverse=True)]
    one_by_one, at_once = _Moments(), _Moments()
    expected = [one_by_one.claim(base) for base in bases]
    assert [m.isoformat(timespec="microseconds") for m in at_once.claim_down(bases)] == expected
    assert at_once.taken == one_by_one.taken
    assert at_once.claim(T0, step=1) == one_by_one.claim(T0, step=1)


def test_a_clock_stepped_back_dates_new_versions_now_and_the_refresh_does_not_wait_it_out(tmp_path):
    """A version more than CLOCK_STEP ahead of the clock was dated before the clock stepped back (NTP, a restored VM):
    the new bytes are dated now and published at once. Before, each new version was dated a second after the last and
    the refresh slept until then: a 120 s step back held every change for two minutes."""
    from feedsvc.building.site import FeedOptions, Publisher
    from feedsvc.building.state import CLOCK_STEP
    from feedsvc.config import load_settings
    from tests.conftest import write

    folder = tmp_path / "articles"
    write(folder, "a.md", "---\ntitle: First\ncategory: News\n---\nBody.\n")
    settings = load_settings({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "s.sqlite3"), "SETTLE_MS": 0},
                             toml_path=tmp_path / "absent.toml", environ={})
    now, slept = [T0], []
    publisher = Publisher(FeedOptions.from_settings(settings), StateStore(settings["STATE_PATH"]), clock=lambda: now[0], sleep=slept.append)
    assert publisher.refresh()
    before = publisher.snapshot.resources["feed.rss"].last_modified
    now[0] = T0 - timedelta(seconds=120)  # the clock steps back two minutes
    write(folder, "b.md", "---\ntitle: Second\ncategory: News\n---\nBody.\n")
    assert publisher.refresh()
    served = publisher.snapshot.resources["feed.rss"]
    assert b"Second" in served.body and sum(slept) <= CLOCK_STEP.total_seconds()
    assert served.last_modified == now[0].replace(microsecond=0) < before
    now[0] = T0 - timedelta(seconds=119)
    write(folder, "c.md", "---\ntitle: Third\ncategory: News\n---\nBody.\n")
    assert publisher.refresh() and publisher.snapshot.resources["feed.rss"].last_modified > served.last_modified


_moments = st.integers(min_value=-3, max_value=3).map(lambda s: T0 + timedelta(seconds=s))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.none() | _moments, st.none() | _moments, st.none() | _moments),
                max_size=8, unique_by=lambda row: row[0]))
def test_a_first_scan_is_stamped_as_any_scan_would_stamp_it(tmp_path_factory, rows):
    """stamp()'s own way for a deployment's first scan (StateStore._stamp_first: nothing to read or compare) gives the
    articles and rows the general way gives: appeared times that collide, lie ahead of now or are missing, and front
    matter dates before, at and after them."""
    folder = tmp_path_factory.mktemp("stamp")
    articles = [article(id_, published=published, updated=updated) for id_, published, updated, _ in rows]
    appeared = {id_: when for id_, _, _, when in rows if when is not None}
    now = T0 + timedelta(seconds=1)
    quick = StateStore(folder / "quick.sqlite3")
    made = quick.stamp(list(reversed(articles)), now, appeared)
    general = StateStore(folder / "general.sqlite3")
    with general._writing() as conn:
        expected = general._stamp_any(conn, sorted(articles, key=lambda a: a.id), now, appeared, _Moments(), True)
    assert made == expected
    read = "SELECT id, first_seen, content_hash, updated, seen FROM articles ORDER BY id"
    assert quick._connect().execute(read).fetchall() == general._connect().execute(read).fetchall()


def file_rows(path) -> tuple[list, list]:
    """The articles' and owners' rows as the file holds them, read by a connection of its own."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        return (conn.execute("SELECT id, first_seen, content_hash, updated FROM articles ORDER BY id").fetchall(),
                conn.execute("SELECT id, source FROM owners ORDER BY id").fetchall())


def test_a_held_first_scan_is_read_as_written_and_written_first_by_the_next_transaction(tmp_path):
    # A deployment's first build holds its owners' and stamps' rows until its feeds are committed (Publisher._build).
    held, plain = StateStore(tmp_path / "held.sqlite3"), StateStore(tmp_path / "plain.sqlite3")
    mtimes = {"a": T0 - timedelta(days=2), "b": T0 - timedelta(days=1)}
    with held.transaction(hold=True):
        owners = held.claim_ids({"a": ["a.txt"], "b": ["b.txt"]})
        stamped = held.stamp([article("a"), article("b")], T0, appeared=mtimes)
        # Read as if written, in the block (the first build's second round, its first pages read in full): the owners,
        # the first-seen times, and a second stamp that finds them recorded.
        assert held.claim_ids({"a": ["z.txt", "a.txt"]}) == {"a": "a.txt"}
        assert held.first_seen(["a", "b"]) == {k: t.isoformat(timespec="microseconds") for k, t in mtimes.items()}
        assert held.stamp([article("a"), article("b")], T0 + timedelta(hours=1)) == stamped
    assert file_rows(tmp_path / "held.sqlite3") == ([], [])  # committed, and none of them in the file yet
    with plain.transaction():
        assert plain.claim_ids({"a": ["a.txt"], "b": ["b.txt"]}) == owners
        assert plain.stamp([article("a"), article("b")], T0, appeared=mtimes) == stamped
    with held.transaction():  # the next block (the first build's pages): written first thing
        held.stamp([article("b", "v2")], T0 + timedelta(hours=2))  # and a later change written after them wins
    assert file_rows(tmp_path / "held.sqlite3")[1] == file_rows(tmp_path / "plain.sqlite3")[1] == [("a", "a.txt"), ("b", "b.txt")]
    rows = file_rows(tmp_path / "held.sqlite3")[0]
    assert rows[0] == file_rows(tmp_path / "plain.sqlite3")[0][0] and rows[1][2:] == ("b:v2", (T0 + timedelta(hours=2)).isoformat(timespec="microseconds"))
    assert not any(held._held.values()) and not held._taken


def test_a_held_block_rolled_back_is_forgotten_and_a_failed_write_of_held_rows_keeps_them_held(tmp_path):
    import sqlite3

    import pytest

    from feedsvc.building.state import StateError

    path = tmp_path / "s.sqlite3"
    store = StateStore(path)
    locker = sqlite3.connect(path, isolation_level=None)

    def locked_out(block, **kwargs):  # another process holds the write lock past the busy timeout: the block rolls back
        locker.execute("BEGIN IMMEDIATE")
        store._kept().execute("PRAGMA busy_timeout=0")
        try:
            with pytest.raises(StateError):
                with store.transaction(**kwargs):
                    block()
        finally:
            locker.execute("ROLLBACK")
            store._kept().execute("PRAGMA busy_timeout=30000")
        assert store.rolled_back

    locked_out(lambda: store.claim_ids({"a": ["a.txt"]}), hold=True)
    assert not any(store._held.values()) and file_rows(path) == ([], [])  # its caller forgets it too (rolled_back)
    with store.transaction(hold=True):
        store.claim_ids({"a": ["a.txt"]})
    locked_out(lambda: None)  # the next block fails before it could write them: held still, read still
    assert store._held["owners"] == {"a": ("a", "a.txt")} and store.claim_ids({"a": ["b.txt", "a.txt"]}) == {"a": "a.txt"}
    assert file_rows(path)[1] == [("a", "a.txt")]  # that claim wrote on a connection of its own, the held row first
    assert not any(store._held.values())


def test_a_damaged_state_file_is_told_as_damaged_with_the_way_out_not_as_unwritable(tmp_path):
    """A state file SQLite finds is no database (a disk error, a copy cut short) was told to be set "to a writable
    file", which it was; at a refresh, only "database disk image is malformed", naming neither file nor fix."""
    import pytest

    from feedsvc.building.state import StateError

    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is no SQLite database, " * 200)
    with pytest.raises(StateError) as raised:
        StateStore(path)
    said = str(raised.value)
    assert said.startswith(f"state file {path} is damaged (") and "move it aside" in said and "writable" not in said
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "state.sqlite3").mkdir()  # not a file at all: that is no damage, and the fix is another path
    with pytest.raises(StateError, match="set STATE_PATH to a writable file"):
        StateStore(tmp_path / "ro" / "state.sqlite3")


def test_a_refresh_that_meets_a_damaged_store_says_which_file_and_the_way_out(tmp_path):
    import sqlite3

    from feedsvc.building.state import damaged

    assert "is damaged (database disk image is malformed)" in damaged(sqlite3.DatabaseError("database disk image is malformed"), "s.db")
    assert damaged(sqlite3.OperationalError("database or disk is full"), "s.db") is None  # its own fix: space, a path
    assert damaged(ValueError("x"), "s.db") is None


@pytest.mark.parametrize("tables", ["CREATE TABLE articles (x TEXT)", "CREATE TABLE notes (body TEXT)",
                                    "CREATE TABLE items (id TEXT, name TEXT)"])  # a table named as one of feedsvc's
def test_another_programs_database_named_as_the_state_file_is_refused_untouched(tmp_path, tables):
    """It passed the start's checks and was added to (24 tables), and every refresh failed on it (found in review)."""
    import sqlite3

    from feedsvc.building.state import StateError, StateStore

    path = tmp_path / "theirs.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(tables)
    before = path.read_bytes()
    with pytest.raises(StateError, match="another program's SQLite database .*set STATE_PATH"):
        StateStore(path)
    assert path.read_bytes() == before


def test_a_first_scan_made_again_after_its_builder_stopped_keeps_its_articles_news_to_no_one(tmp_path):
    """A first build's rows are held until its pages are committed; a builder stopped before made the next start a first
    scan again, but the clock kept the first one's time, so every article of the catalogue was "recorded" at the second
    and came in every delta from a poll between the two (found in review)."""
    path = tmp_path / "state.sqlite3"
    articles = [Article(id=f"a{i}", source=f"a{i}.md", title=f"T{i}", categories=("News",), body_html="", body_text="",
                        summary="", lang="en", content_hash=f"b:h{i}", published=datetime(2020, 1, 1 + i, tzinfo=timezone.utc))
                for i in range(3)]
    first = StateStore(path)
    with first.transaction(hold=True):  # a feeds-first build: its rows held, never written (the process ends)
        assert [a.recorded for a in first.stamp(articles, T0)] == [None] * 3
    for minutes in (5, 10):  # the next start, a first scan again; then a restart
        assert [a.recorded for a in StateStore(path).stamp(articles, T0 + timedelta(minutes=minutes))] == [None] * 3


def test_making_the_store_leaves_no_connection_to_its_file_open(tmp_path):
    """The serving master makes the store (server.preflight), then forks the builder. A connection it left to the cyclic
    collector (a connection and its statement cache hold each other) was closed after that fork: its copy in the builder
    let go of the builder's own locks on the file, and the master then deleted the write-ahead log under the builder."""
    import gc

    path = tmp_path / "state.sqlite3"
    gc.disable()
    try:
        StateStore(path)
        held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")]
    finally:
        gc.enable()
    assert not [name for name in held if name.startswith(str(path))]


@pytest.mark.parametrize("readonly", [False, True])
def test_a_connection_that_fails_as_it_is_set_up_is_closed_at_once(tmp_path, readonly):
    """A file that is no database (or a disk error) fails the statements right after the connection opens: the
    connection was left to the cyclic collector, open until then (the same danger across a fork as above)."""
    import gc
    import sqlite3

    from feedsvc.store import connect

    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"not a database, but a file of some length " * 100)
    gc.disable()
    try:
        with pytest.raises(sqlite3.DatabaseError):
            connect(path, readonly=readonly)
        held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")]
    finally:
        gc.enable()
    assert not [name for name in held if name.startswith(str(path))]

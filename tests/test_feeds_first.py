"""A deployment's first build of a big folder commits its feeds first, and its pages and sitemaps in a build right
after (building/site.py Publisher.feeds_first); a page asked for meanwhile waits for them, a bounded time, and is
then the page or a 503, never a 404 (serving/web.py)."""
from __future__ import annotations

import itertools
import sqlite3
import threading
import time

import feedsvc.reading.scan
import feedsvc.serving.variants
from feedsvc import create_app, for_building
from feedsvc.building.builder import start_building
from feedsvc.building.storewriter import StoreWriter
from feedsvc.urls import HOME, OPML, category_path
from tests.test_coldpath import CATEGORIES, finished, many, rows, settings, stored_ids, undated

PAGES = {HOME, *(category_path(c) for c in CATEGORIES), "sitemap.xml", "robots.txt"}  # no News sitemap: 2023


def test_a_first_build_commits_its_feeds_before_its_pages_and_a_page_asked_for_meanwhile_waits_for_them(tmp_path, monkeypatch):
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)  # a big folder: placed first, as at 10,000 articles
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # none read in full before the listings say which
    folder = many(tmp_path / "articles", 60)
    state = tmp_path / "state.sqlite3"
    reader = create_app(settings(folder, state), build=False).test_client()  # a serving process on the same store
    commits, answers, waited = [], [], []
    commit = StoreWriter.commit

    def wait_for_home() -> None:  # asked in that moment, answered once the pages are in: no 503 for an early reader
        started = time.monotonic()
        answer = create_app(settings(folder, state), build=False).test_client().get("/" + HOME)
        waited.append((answer.status_code, answer.data, time.monotonic() - started))

    def committing(self, build, now):
        version = commit(self, build, now)
        commits.append((build.report.get("partial"), set(build.resources), len(build.listings), len(build.items)))
        if len(commits) == 1:  # what a serving process answers between the first build and the next
            # This builder waits for these answers, so a wait for its pages is cut short: the bounded wait's 503.
            monkeypatch.setattr(feedsvc.serving.variants, "WAIT_SECONDS", 0.05)
            answers.extend((path, reader.get("/" + path)) for path in (HOME, category_path(CATEGORIES[0]), "feed.rss", OPML,
                                                                        "feed.rss?page=2"))
            monkeypatch.setattr(feedsvc.serving.variants, "WAIT_SECONDS", 30.0)
            waiter.start()
            time.sleep(0.2)  # it has asked, and waits
        return version

    waiter = threading.Thread(target=wait_for_home)

    monkeypatch.setattr(StoreWriter, "commit", committing)
    app = for_building(settings(folder, state))
    publisher = start_building(app, release=True)
    told = []  # every other observer (metrics, search, /healthz) is told of one refresh, the whole one
    publisher.observers.append(lambda refreshed: told.append((refreshed.snapshot.partial, HOME in refreshed.snapshot.resources)))
    assert publisher.feeds_first
    assert publisher.refresh()
    assert told[0] == (False, True) and not any(partial for partial, _ in told)  # (later: the background reading)
    finished(app)
    first, second = commits[0], commits[1]
    assert first[0] is True and {"feed.rss", "feed.atom", "feed.json", OPML} <= first[1] and not PAGES & first[1]
    assert first[2:] == (0, 0)  # nor the listings' rows and the articles, which archive pages and deltas are made of
    assert second[0] is False and PAGES <= second[1] and not {"feed.rss", "feed.atom", "feed.json"} & second[1]
    assert second[2] == 1 + len(CATEGORIES) and second[3] > 0
    assert not any(commit[0] for commit in commits[2:])
    (home, home_answer), (page, page_answer), (_, feed_answer), (_, opml_answer), (_, archive_answer) = answers
    assert home_answer.status_code == page_answer.status_code == archive_answer.status_code == 503
    assert home_answer.headers["Retry-After"] == "1" and b"feeds are published" in home_answer.data
    assert feed_answer.status_code == opml_answer.status_code == 200
    assert reader.get("/").status_code == reader.get("/" + category_path(CATEGORIES[0])).status_code == 200
    assert reader.get("/no-such-page").status_code == 404  # once the build is whole, a miss is a miss
    assert reader.get("/feed.rss?page=2").status_code == 200
    waiter.join(30)
    assert waited[0][0] == 200 and waited[0][1] == reader.get("/" + HOME).data and waited[0][2] < 20

    # The same bytes as a build that makes everything at once.
    whole = create_app(settings(folder, tmp_path / "whole.sqlite3"))
    finished(whole)
    split, at_once = rows(state), rows(tmp_path / "whole.sqlite3")
    for path in ("feed.rss", "feed.atom", OPML, HOME, category_path(CATEGORIES[1]), "sitemap.xml"):
        assert undated(split[path][4]) == undated(at_once[path][4]), path
    assert stored_ids(state) == stored_ids(tmp_path / "whole.sqlite3") and len(stored_ids(state)) == 60

    def listing_items(path):
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT listing, rank, id FROM listing_items ORDER BY 1, 2, 3").fetchall()

    assert listing_items(state) == listing_items(tmp_path / "whole.sqlite3") and len(listing_items(state)) == 120


def test_a_restart_and_a_small_folder_build_everything_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    folder = many(tmp_path / "articles", 60)
    state = tmp_path / "state.sqlite3"
    app = for_building(settings(folder, state))
    start_building(app, release=True).refresh()
    finished(app)
    again = for_building(settings(folder, state))
    assert not start_building(again, release=True).feeds_first  # the store holds a build: served meanwhile
    small = for_building(settings(many(tmp_path / "few", 5), tmp_path / "small.sqlite3"))
    publisher = start_building(small, release=True)
    assert publisher.feeds_first and publisher.refresh()  # asked, but nothing was only placed: one build
    with sqlite3.connect(tmp_path / "small.sqlite3") as conn:
        reports = [row[0] for row in conn.execute("SELECT report FROM builds ORDER BY version")]
    assert reports and '"partial": true' not in reports[0] and '"partial": false' in reports[0]


def test_a_first_build_dates_its_listings_with_its_pages_after_its_feeds_are_committed(tmp_path, monkeypatch):
    # The listings' and archive pages' times date nothing a partial build serves: the feeds answer without them.
    from feedsvc.building.versions import ListingVersions

    commits, dated = [], []
    commit, times = StoreWriter.commit, ListingVersions.times
    monkeypatch.setattr(StoreWriter, "commit", lambda self, build, now: (commits.append(build.report.get("partial")),
                                                                          commit(self, build, now))[1])
    monkeypatch.setattr(ListingVersions, "times", lambda self, *args: (dated.append(list(commits)), times(self, *args))[1])
    app, publisher = first_builder(tmp_path, monkeypatch)
    assert publisher.feeds_first and publisher.refresh()
    assert dated[0] == [True]  # after the feeds' build, before the pages'
    snapshot = publisher.snapshot
    assert not snapshot.partial and set(snapshot.changed) == set(snapshot.listings) == {"", *CATEGORIES}
    assert all(len(snapshot.pages[key]) == (len(snapshot.listings[key].items) - 1) // 5 for key in snapshot.listings)  # 5 a page
    finished(app)
    reader = create_app(settings(tmp_path / "articles", tmp_path / "state.sqlite3"), build=False).test_client()
    assert reader.get("/feed.rss?page=2").status_code == 200


def test_pages_that_fail_after_the_feeds_leave_the_listings_to_be_dated_by_the_next_refresh(tmp_path, monkeypatch):
    publisher = first_builder(tmp_path, monkeypatch)[1]
    render, calls = publisher.renderer.render, []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the pages' render (_complete)
            raise OSError("disk full")
        return render(*args, **kwargs)

    publisher.renderer.render = second_fails
    assert publisher.refresh()  # the feeds are committed: the refresh succeeded, its pages are the next one's
    assert publisher.snapshot.partial and not publisher.snapshot.changed
    assert publisher.refresh()
    snapshot = publisher.snapshot
    assert not snapshot.partial and set(snapshot.changed) == {"", *CATEGORIES} and snapshot.pages.keys() == snapshot.changed.keys()


def test_archive_pages_dated_in_pages_that_failed_to_commit_are_dated_again(tmp_path, monkeypatch):
    # The pages' transaction dates the archive pages, then fails to commit (a full disk): the times it gave are in no
    # state store, and the next refresh, whose listings are the very objects they were dated for, must not keep them.
    publisher = first_builder(tmp_path, monkeypatch)[1]
    failing_transactions(monkeypatch, lambda number: number == 2)  # the feeds' build is the first, the pages' the second
    assert publisher.refresh() and publisher.snapshot.partial  # its pages are the next refresh's
    assert publisher.refresh() and not publisher.snapshot.partial
    pages = publisher.snapshot.pages
    keys = [f"page:{at + 2}:{key}" for key, times in pages.items() for at in range(len(times))]
    recorded = publisher.store.recorded_versions(keys)
    assert len(keys) > 15 and {key: when for key, (_, when) in recorded.items()} == {
        f"page:{at + 2}:{key}": when for key, times in pages.items() for at, when in enumerate(times)}


def failing_transactions(monkeypatch, fails) -> None:
    """StateStore.transaction as a full disk makes it fail: each outermost transaction `fails(number)` picks (numbered
    from 1 in the order they begin) runs on a connection whose COMMIT fails, so it is rolled back and raises StateError."""
    import os
    from contextlib import contextmanager

    from feedsvc.building.state import StateStore

    transaction, begun = StateStore.transaction, itertools.count(1)

    class FullDisk:
        """The thread's kept connection, but for its COMMIT."""

        def __init__(self, conn):
            self.conn = conn

        def __getattr__(self, name):
            return getattr(self.conn, name)

        def execute(self, sql, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return self.conn.execute(sql, *args)

    @contextmanager
    def failing(self, hold=False):
        if getattr(self._local, "batch", None) is not None or not fails(next(begun)):  # inside another: part of it
            with transaction(self, hold):
                yield
            return
        conn = self._kept()
        self._local.conn = (os.getpid(), FullDisk(conn))
        try:
            with transaction(self, hold):
                yield
        finally:
            self._local.conn = (os.getpid(), conn)

    monkeypatch.setattr(StateStore, "transaction", failing)


def first_builder(tmp_path, monkeypatch):
    """(app, Publisher) of a builder's first build of a big folder (placed first, none read in full ahead: feeds first),
    60 articles in tmp_path/articles, its store tmp_path/state.sqlite3."""
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    app = for_building(settings(many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"))
    return app, start_building(app, release=True)


def test_a_first_build_records_what_its_listings_carry_with_its_pages_and_a_deletion_is_announced(tmp_path, monkeypatch):
    # Nothing was carried before a deployment's first build, so its feeds show no tombstone: what each listing carries
    # (what a deletion is found against) is recorded after its feeds, with its pages.
    from feedsvc.building.tombstones import Tombstones

    commits, updated, ours = [], [], lambda path: str(path).startswith(str(tmp_path))  # not an earlier test's background
    commit, update = StoreWriter.commit, Tombstones.update

    def committing(self, build, now):
        if ours(self.path):
            commits.append(build.report.get("partial"))
        return commit(self, build, now)

    def updating(self, *args, **kwargs):
        if ours(self.store.path):
            updated.append(list(commits))
        return update(self, *args, **kwargs)

    monkeypatch.setattr(StoreWriter, "commit", committing)
    monkeypatch.setattr(Tombstones, "update", updating)
    app, publisher = first_builder(tmp_path, monkeypatch)
    assert publisher.feeds_first and publisher.refresh() and not publisher.snapshot.partial
    assert updated == [[True]]  # once, after the feeds' build, before the pages'
    carried = publisher.store.carried()
    assert len(carried) == 60 and all(row[1] for row in carried.values())
    finished(app)
    gone = publisher.snapshot.listings[""].items[0]
    (tmp_path / "articles" / gone.source).unlink()
    restarted = start_building(for_building(settings(tmp_path / "articles", tmp_path / "state.sqlite3")), release=True)
    assert restarted.refresh()
    assert [d.ref for d in restarted.snapshot.listings[""].deleted] == [gone.guid]


def test_what_the_listings_carry_is_recorded_again_after_a_transaction_that_recorded_it_is_rolled_back(tmp_path, monkeypatch):
    # The first build's pages' transaction, then a later refresh's, fail to commit (a full disk): the rows they wrote
    # are in no state store, and the refreshes after them must write them again.
    from tests.conftest import write

    publisher = first_builder(tmp_path, monkeypatch)[1]
    armed = []  # the next transaction of this thread fails (a refresh's), not the background's

    def fails(number: int) -> bool:
        if number == 2 or (armed and threading.current_thread() is threading.main_thread()):
            armed.clear()
            return True
        return False

    failing_transactions(monkeypatch, fails)
    assert publisher.refresh() and publisher.snapshot.partial  # 1: the feeds; 2: the pages, rolled back
    assert publisher.refresh() and not publisher.snapshot.partial  # 3
    if publisher._finisher is not None:
        publisher._finisher.join(timeout=30)  # the background's reading: its refreshes are its own
    assert len(publisher.store.carried()) == 60
    write(tmp_path / "articles", "new.txt", "News\nA new story\nThe council met again on Tuesday to vote on the budget.\n")
    armed.append(True)
    assert not publisher.refresh()  # rolled back
    assert publisher.refresh()
    assert len(publisher.store.carried()) == 61


def test_a_first_build_writes_its_owners_and_stamps_after_its_feeds_and_a_builder_that_dies_between_dates_as_it_did(tmp_path, monkeypatch):
    # Its feeds wait for none of its 2 × 60 inserts (20,000 at 10,000 articles, 200,000 at 100,000): the
    # state store holds them back (StateStore.transaction(hold=True)) until the pages' transaction, which writes them first.
    from tests.test_state import file_rows

    state, died = tmp_path / "state.sqlite3", tmp_path / "died.sqlite3"
    at_feeds, commit = [], StoreWriter.commit

    def committing(self, build, now):
        version = commit(self, build, now)
        if build.report.get("partial"):
            at_feeds.append(file_rows(state))
            with sqlite3.connect(state) as source, sqlite3.connect(died) as copy:  # the store a builder that dies now leaves
                source.backup(copy)
        return version

    monkeypatch.setattr(StoreWriter, "commit", committing)
    app, publisher = first_builder(tmp_path, monkeypatch)
    assert publisher.feeds_first and publisher.refresh() and not publisher.snapshot.partial
    assert at_feeds == [([], [])]
    articles, owners = file_rows(state)
    assert len(articles) == len(owners) == 60
    whole = create_app(settings(tmp_path / "articles", tmp_path / "whole.sqlite3"))  # a build that holds nothing back
    finished(whole)
    assert file_rows(tmp_path / "whole.sqlite3") == (articles, owners)
    finished(app)
    # The builder that takes over the store the dead one left stamps every file as a first scan again, by its mtime.
    taken_over = for_building(settings(tmp_path / "articles", died))
    after = start_building(taken_over, release=True)
    assert not after.feeds_first and after.refresh()
    finished(taken_over)
    dates = lambda p: {a.id: (a.published, a.updated) for a in p.snapshot.articles.values()}  # noqa: E731
    assert len(dates(after)) == 60 and dates(after) == dates(publisher)
    assert file_rows(died) == (articles, owners)

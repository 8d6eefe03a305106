"""A refresh's commit to the build store (building/committer.py Committer, building/storewriter.py): it writes what
changed, not the archive; each listing's order is rows a worker reads a slice of; codings and sitemaps follow the feeds."""
from __future__ import annotations

import os
import pickle
import sqlite3
import threading
import time
from datetime import datetime, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from feedsvc import create_app
from feedsvc.building.committer import Committer
from feedsvc.building.site import compress_fresh
from feedsvc.partners import Partner
from feedsvc.serving.variants import NotReadYetError
from feedsvc.building.storewriter import item_row
from tests.conftest import variant, write

CATEGORIES = ("News", "Sport", "Culture", "Tech")


def many(folder, n: int):
    for i in range(n):
        write(folder, f"{i:04d}-story.txt", f"{CATEGORIES[i % 4]}\nStory number {i}\nParagraph of story {i}, with some words.\n")
    write(folder, "tagged.md", "---\ntitle: Tagged story\ncategory: News\ntags: [alpha, beta]\nauthor: Ann Writer\n"
                               "date: 2024-01-02T00:00:00Z\n---\nText of the tagged story.\n")
    return folder


def settings(folder, state, **more):
    return {"ARTICLES_DIR": str(folder), "STATE_PATH": str(state), "SETTLE_MS": 0, **more}


def committer(app) -> Committer:
    return next(o for o in app.extensions["feedsvc"].observers if isinstance(o, Committer))


def changes(app, step) -> int:
    """Rows the builder's store connection put, changed or deleted while step() ran and its builds landed."""
    commit = committer(app)
    commit.wait(10)
    before = commit.writer.conn.total_changes
    step()
    assert commit.wait(10)
    return commit.writer.conn.total_changes - before


def stored_order(state) -> dict[str, list[tuple]]:
    with sqlite3.connect(state) as conn:
        found: dict[str, list[tuple]] = {}
        for listing, *row in conn.execute("SELECT listing, rank, id, updated, recorded, categories FROM listing_items ORDER BY listing, rank, id"):
            found.setdefault(listing, []).append(tuple(row))
    return found


def published_order(app) -> dict[str, list[tuple]]:
    return {key: [item_row(a) for a in listing.items] for key, listing in app.extensions["feedsvc"].snapshot.listings.items()}


def one_saved_file(app, folder, n: int):
    def step():
        write(folder, f"zz-new-{n}.txt", f"Sport\nA new story {n}\nIts text.\n")
        app.extensions["feedsvc"].refresh()
    return step


def test_one_saved_file_writes_as_many_rows_and_bytes_at_400_articles_as_at_40(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written, sizes = [], []
    for n in (40, 400):
        folder = many(tmp_path / f"articles-{n}", n)
        app = create_app(settings(folder, tmp_path / f"state-{n}.sqlite3", FEED_MAX_ITEMS=5))  # feeds of one size
        pub = app.extensions["feedsvc"]
        assert compress_fresh not in pub.observers  # every coding made after the commit (finish): the same count in every run
        writer, builds = committer(app).writer, []
        commit = writer.commit
        monkeypatch.setattr(writer, "commit", lambda build, now: builds.append(build) or commit(build, now))
        written.append(changes(app, one_saved_file(app, folder, n)))
        first = builds[0]  # the refresh's own build (then its codings and sitemaps)
        sizes.append(len(pickle.dumps((first.resources, first.listings, first.listing_items, first.items, first.gone))))
    # Feeds, pages and previews of the site and Sport, the sitemaps, the new article's page and item, its rows in
    # two listings and their heads, the builds and changes rows: the same few dozen, whatever the archive.
    assert written[0] == written[1] and written[1] < 80, written
    assert abs(sizes[1] - sizes[0]) < 1024, sizes  # nothing in it grows with the archive (a listing's index did)


def test_the_stored_order_is_every_listings_items_after_additions_edits_and_deletions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"
    app = create_app(settings(folder, state))
    pub = app.extensions["feedsvc"]
    assert stored_order(state) == published_order(app)
    write(folder, "zz-a.txt", "Sport\nAdded\nText.\n")
    pub.refresh()
    write(folder, "0003-story.txt", "Culture\nStory three moves to Culture\nNew text.\n")  # leaves one listing, joins another
    os.remove(folder / "0004-story.txt")
    write(folder, "tagged.md", "---\ntitle: Tagged story\ncategory: News\ntags: [beta, gamma]\nauthor: Ann Writer\n"
                               "date: 2024-01-03T00:00:00Z\n---\nText of the tagged story, edited.\n")
    pub.refresh()
    os.remove(folder / "zz-a.txt")
    pub.refresh()
    assert committer(app).wait(10)
    assert stored_order(state) == published_order(app)
    assert "tag/gamma" in stored_order(state) and "tag/alpha" not in stored_order(state)
    with sqlite3.connect(state) as conn:
        sizes = dict(conn.execute("SELECT key, size FROM listings"))
    assert sizes == {key: len(rows) for key, rows in published_order(app).items()}


def test_a_restart_over_an_unchanged_folder_rewrites_no_listing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"
    first = create_app(settings(folder, state))
    write(folder, "zz-a.txt", "Sport\nAdded\nText.\n")
    first.extensions["feedsvc"].refresh()  # the listings as deltas: their stored hash must be a whole build's
    assert committer(first).wait(10)
    with sqlite3.connect(state) as conn:
        before = dict(conn.execute("SELECT key, version FROM listings"))
    again = create_app(settings(folder, state))
    assert committer(again).wait(10)
    with sqlite3.connect(state) as conn:
        assert dict(conn.execute("SELECT key, version FROM listings")) == before


def test_a_changed_feeds_codings_and_the_sitemap_follow_its_bytes_in_a_build_of_their_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"
    app = create_app(settings(folder, state))
    commit = committer(app)
    commit.wait(10)
    write(folder, "zz-a.txt", "Sport\nA story for the codings\nText.\n")
    app.extensions["feedsvc"].refresh()
    assert commit.wait(10)
    import gzip

    import brotli

    with sqlite3.connect(state) as conn:
        for path in ("feed.rss", "feed.json", "sitemap.xml"):
            body, gz, br, version = conn.execute("SELECT body, gzip, br, version FROM resources WHERE path = ?", (path,)).fetchone()
            assert gzip.decompress(gz) == body and brotli.decompress(br) == body, path
        feed = conn.execute("SELECT version FROM resources WHERE path = 'feed.rss'").fetchone()[0]
        assert b"A story for the codings" in conn.execute("SELECT body FROM resources WHERE path = 'feed.rss'").fetchone()[0]
        assert conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] == feed + 1  # codings and sitemaps: right after
        sitemap = conn.execute("SELECT body FROM resources WHERE path = 'sitemap.xml'").fetchone()[0]
    assert sitemap == app.extensions["feedsvc"].snapshot.resources["sitemap.xml"].body


def test_a_restarted_builder_codes_the_rows_a_stopped_one_left_without_codings(tmp_path, monkeypatch):
    """A cold start commits its feeds first and codes them in the background: a builder stopped before that left
    rows without codings, which the next builder codes although nothing changed (else every gzip request makes one)."""
    import gzip

    import brotli

    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 12), tmp_path / "state.sqlite3"
    assert committer(create_app(settings(folder, state))).wait(10)
    paths = ("feed.rss", "feed.json", "category/sport/feed.atom", "sitemap.xml")
    with sqlite3.connect(state) as conn:  # as a builder stopped before its background codings leaves them
        conn.executemany("UPDATE resources SET gzip = NULL, br = NULL WHERE path = ?", [(p,) for p in paths])
        before = dict(conn.execute("SELECT path, version FROM resources WHERE path NOT LIKE 'articles/%'"))
    again = create_app(settings(folder, state))
    assert committer(again).wait(10)
    with sqlite3.connect(state) as conn:
        for path in paths:
            body, gz, br = conn.execute("SELECT body, gzip, br FROM resources WHERE path = ?", (path,)).fetchone()
            assert gz is not None and br is not None, path
            assert gzip.decompress(gz) == body and brotli.decompress(br) == body, path
        # The same rows, coded: no row put again (their versions are those of the build that made their bytes).
        assert dict(conn.execute("SELECT path, version FROM resources WHERE path NOT LIKE 'articles/%'")) == before


def test_a_worker_reads_only_the_slice_of_a_listing_a_page_needs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 40), tmp_path / "state.sqlite3"
    builder = create_app(settings(folder, state, FEED_MAX_ITEMS=5))
    worker = create_app(settings(folder, state, FEED_MAX_ITEMS=5), build=False)
    reader = worker.extensions["feedsvc.store"]
    asked: list[str] = []
    listing_ids = reader.listing_ids
    monkeypatch.setattr(reader, "listing_ids", lambda key, start, stop, *more: asked.append((key, stop - start)) or listing_ids(key, start, stop, *more))
    client = worker.test_client()
    assert client.get("/feed.json?page=3").status_code == 200
    assert asked and all(count <= 5 for _, count in asked)
    assert all(len(head) == 2 and isinstance(head[1], int) for head in reader._listings.values())  # heads and sizes only
    pub = builder.extensions["feedsvc"]
    since = datetime(2020, 1, 1, tzinfo=timezone.utc)
    partner = Partner("p", b"x" * 32, frozenset({"Sport", "News"}), True)
    variants = worker.extensions["feedsvc.variants"]
    for key in ("", "tag/alpha", "author/ann-writer"):
        for how in ({"page": 2}, {"since": since, "page": 2}, {"partner": partner}, {"partner": partner, "page": 2}):
            expected, found = variant(pub, key, "atom", **how), variants.get(key, "atom", **how)
            assert (expected is None) == (found is None), (key, how)
            assert found is None or (found.body, found.etag) == (expected.body, expected.etag), (key, how)


def test_a_worker_dates_each_archive_page_by_its_own_items_and_a_new_article_changes_only_the_newest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 14), tmp_path / "state.sqlite3"  # 15: the first page and pages 2 and 3 full
    builder = create_app(settings(folder, state, FEED_MAX_ITEMS=5))
    worker = create_app(settings(folder, state, FEED_MAX_ITEMS=5), build=False)
    client = worker.test_client()
    had = {path: client.get(path) for path in ("/feed.atom?page=2", "/feed.atom?page=3", "/feed.atom")}
    assert all(reply.status_code == 200 for reply in had.values())
    one_saved_file(builder, folder, 1)()  # a newer story: the oldest on the first page starts page 4
    assert committer(builder).wait(10)
    worker.extensions["feedsvc.store"].current(force=True)
    page2, page3 = client.get("/feed.atom?page=2"), client.get("/feed.atom?page=3")
    assert (page2.get_data(), page2.headers["Last-Modified"]) == (had["/feed.atom?page=2"].get_data(), had["/feed.atom?page=2"].headers["Last-Modified"])
    assert client.get("/feed.atom?page=2", headers={"If-Modified-Since": page2.headers["Last-Modified"]}).status_code == 304
    # Page 3's "previous" link now names page 4, not the first page: new bytes, a later date.
    assert page3.get_data() != had["/feed.atom?page=3"].get_data()
    assert page3.last_modified > had["/feed.atom?page=3"].last_modified
    assert client.get("/feed.atom?page=4").status_code == 200
    pub = builder.extensions["feedsvc"]
    variants = worker.extensions["feedsvc.variants"]
    for page in (2, 3, 4):  # the builder's own rendering (and so the static export's) dates them alike
        expected, found = variant(pub, "", "atom", page=page), variants.get("", "atom", page=page)
        assert (found.body, found.etag, found.last_modified) == (expected.body, expected.etag, expected.last_modified)


def test_an_article_not_stored_yet_is_named_in_the_not_read_yet_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 12), tmp_path / "state.sqlite3"
    builder = create_app(settings(folder, state, FEED_MAX_ITEMS=5))
    oldest = builder.extensions["feedsvc"].snapshot.listings[""].items[-1].id
    with sqlite3.connect(state) as conn:
        conn.execute("DELETE FROM items WHERE id = ?", (oldest,))  # as if only placed so far (a cold start)
    variants = create_app(settings(folder, state, FEED_MAX_ITEMS=5), build=False).extensions["feedsvc.variants"]
    with pytest.raises(NotReadYetError) as raised:
        variants.get("", "rss", page=2)
    assert raised.value.missing == [oldest]


def test_what_a_failed_background_build_left_is_committed_by_the_next_refresh_and_nothing_waits_on_it(tmp_path, monkeypatch):
    import feedsvc.building.committer

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", 3)  # the cold start's article pages and codings left to the background
    calls = []

    def broken(previews, site):  # the feeds' pages for browsers fail once, outside the build's own commit
        calls.append(len(previews))
        if len(calls) == 1:
            raise RuntimeError("a preview that cannot be rendered")
        return render_previews(previews, site)

    render_previews = feedsvc.building.committer._previews
    monkeypatch.setattr(feedsvc.building.committer, "_previews", broken)
    folder, state = many(tmp_path / "articles", 20), tmp_path / "state.sqlite3"
    app = create_app(settings(folder, state))
    commit = committer(app)
    assert commit.idle(10) and not commit.wait(0)  # no thread runs: what is left waits for the next build
    assert calls and commit.behind

    def stored() -> tuple[int, int]:
        """Article pages stored, and feeds stored without their codings (feeds' pages for browsers have none)."""
        with sqlite3.connect(state) as conn:
            pages = conn.execute("SELECT COUNT(*) FROM resources WHERE path LIKE 'articles/%'").fetchone()[0]
            return pages, conn.execute("SELECT COUNT(*) FROM resources WHERE path LIKE '%feed.%' AND path NOT LIKE '#%' "
                                       "AND gzip IS NULL").fetchone()[0]

    pages, uncoded = stored()
    assert pages < 21 and uncoded > 0
    write(folder, "zz-new.txt", "Sport\nA story after the failure\nIts text.\n")
    assert app.extensions["feedsvc"].refresh() and commit.wait(10)
    assert stored() == (22, 0)  # every article's page (21 and the new one) and every feed's codings


def test_a_row_to_code_that_the_store_no_longer_holds_is_dropped_not_tried_again(tmp_path, monkeypatch):
    import threading

    from feedsvc.resource import Rendered

    monkeypatch.chdir(tmp_path)
    app = create_app(settings(many(tmp_path / "articles", 8), tmp_path / "state.sqlite3"))
    commit = committer(app)
    assert commit.wait(10)
    gone = Rendered(b"<rss/>", "application/rss+xml", datetime.now(timezone.utc), precompress=False)
    gone.release(lambda: None)  # its bytes in no row any more: coding it raises LookupError
    with commit._lock:
        commit._recode["category/nowhere/feed.rss"] = (gone, "made from")
        commit._finishing = True
    finisher = threading.Thread(target=commit.finish, daemon=True)
    finisher.start()
    finisher.join(10)
    assert not finisher.is_alive() and commit.wait(0)  # done, not looping on it


def test_a_first_builds_codings_made_on_two_threads_are_each_resources_own():
    from feedsvc.building.committer import _code_all
    from feedsvc.resource import Rendered

    bodies = [f"<feed>{'مقال ' * n * 400}</feed>".encode() for n in range(1, 6)]
    made = [Rendered(body, "application/atom+xml", datetime(2026, 1, 1, tzinfo=timezone.utc), precompress=False) for body in bodies]
    _code_all(made)
    for res, body in zip(made, bodies):
        alone = Rendered(body, "application/atom+xml", datetime(2026, 1, 1, tzinfo=timezone.utc), precompress=False)
        assert set(res._coded) == {"gzip", "br"}
        assert (res._coded["gzip"], res._coded["br"]) == (alone.coded("gzip"), alone.coded("br"))


def test_a_whole_listings_rows_are_made_as_the_store_writes_them(tmp_path, monkeypatch):
    """A first commit puts every item of every listing (200,000 rows at 100,000 articles): the build holds the
    listing's items, and each row is made as SQLite takes it, as often as the build is written, never kept."""
    from feedsvc.building.storewriter import StoreWriter

    monkeypatch.chdir(tmp_path)
    builds, commit = [], StoreWriter.commit
    monkeypatch.setattr(StoreWriter, "commit", lambda self, build, now: builds.append(build) or commit(self, build, now))
    folder, state = many(tmp_path / "articles", 40), tmp_path / "state.sqlite3"
    app = create_app(settings(folder, state))
    assert committer(app).wait(10)
    whole, gone, rows = builds[0].listing_items[""]  # the site-wide listing, in the first build
    assert whole and not gone
    first = next(iter(rows))
    assert next(iter(rows)) == first and next(iter(rows)) is not first  # made anew as it is read: no row held
    assert len(rows) == 41 and list(rows) == list(rows) == published_order(app)[""]  # made again each time it is read
    assert stored_order(state) == published_order(app)


def test_the_refresh_reads_the_store_while_a_background_build_waits_for_the_write_lock(tmp_path, monkeypatch):
    """The refresh renders inside the state store's write transaction (the file's write lock), and a background build
    waits for that lock inside the writer's connection. The sitemaps' and the first render's reads of the store go
    through a connection of their own: through the writer's they waited for that build (SQLite holds a connection's
    mutex while it waits), until its busy timeout, 30 s, and the build failed (seen in CI: a cold start's pages)."""
    monkeypatch.chdir(tmp_path)
    folder, state = many(tmp_path / "articles", 10), tmp_path / "state.sqlite3"
    app = create_app(settings(folder, state))
    commit = committer(app)
    assert commit.wait(10)
    stored = commit.stored_body("sitemap.xml")
    assert stored and stored.startswith(b"<?xml")
    refresh = sqlite3.connect(state, isolation_level=None)
    refresh.execute("BEGIN IMMEDIATE")  # the refresh's transaction: the file's write lock
    commit.writer.conn.execute("PRAGMA busy_timeout=3000")  # a failure takes 3 s, not 30
    waiting, failed = threading.Event(), []

    def background_build():
        waiting.set()
        try:
            commit.writer.conn.execute("BEGIN IMMEDIATE")  # waits for the lock, holding the connection
            commit.writer.conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            failed.append(exc)

    build = threading.Thread(target=background_build)
    build.start()
    waiting.wait(5)
    time.sleep(0.2)  # inside its wait
    started = time.monotonic()
    assert commit.stored_body("sitemap.xml") == stored
    assert commit.seed({"sitemap.xml": None}, lambda key: "") == {}  # rows read, none made from that key
    took = time.monotonic() - started
    refresh.execute("ROLLBACK")
    build.join(10)
    assert took < 1.0 and not failed  # the build got the lock once the refresh let go of it


def test_a_build_that_cannot_be_committed_is_no_success_and_is_said_once_then_in_a_line(tmp_path, monkeypatch, caplog):
    """A store a newer feedsvc changed (a column more in `builds`): the commit fails at every refresh. The refresh is no
    success (/healthz turns stale, as serving processes still serve the last build committed), its error names the
    cause, and the log has one traceback, then one line a refresh while it fails the same way."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "articles"
    write(folder, "a.txt", "News\nFirst\nA paragraph.\n")
    state = tmp_path / "state.sqlite3"
    app = create_app({"ARTICLES_DIR": str(folder), "STATE_PATH": str(state), "SETTLE_MS": 0})
    publisher = app.extensions["feedsvc"]
    committed = publisher.last_success
    assert committed is not None
    for committer in (o for o in publisher.observers if isinstance(o, Committer)):
        committer.wait()
    with sqlite3.connect(state) as conn:
        conn.execute("ALTER TABLE builds ADD COLUMN made_by TEXT")
    with caplog.at_level("ERROR"):
        for n in range(3):
            time.sleep(1.05)  # a second apart: each version is dated at its own second
            write(folder, f"n{n}.txt", f"News\nNew {n}\nA paragraph.\n")
            assert publisher.refresh()
    assert publisher.last_success == committed
    assert publisher.last_error.startswith("the build could not be committed to the store (OperationalError:")
    tracebacks = [r for r in caplog.records if r.getMessage() == "a refresh observer failed"]
    again = [r for r in caplog.records if r.getMessage().startswith("a refresh observer failed again")]
    assert len(tracebacks) == 1 and tracebacks[0].exc_info and len(again) == 2


def test_a_full_disk_under_the_store_is_said_in_one_line_without_a_traceback(tmp_path, monkeypatch, caplog):
    """`feedsvc build` on a full disk printed a traceback before its one-line error (README: one line): SQLite's own
    words say what to do. A full disk cannot be made here without a mount: the commit fails as SQLite fails then."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "articles"
    write(folder, "a.txt", "News\nFirst\nA paragraph.\n")
    app = create_app({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0})
    publisher = app.extensions["feedsvc"]

    def full(refreshed):
        raise sqlite3.OperationalError("database or disk is full")
    publisher.observers.append(full)
    publisher.committers.append(full)  # a committer, as start_building registers the build store's
    with caplog.at_level("ERROR"):
        write(folder, "b.txt", "News\nSecond\nA paragraph.\n")
        publisher.refresh()
    said = [r for r in caplog.records if r.getMessage().startswith("a refresh observer failed")]
    # One line that names the file and the fix (found in review: "OperationalError: database or disk is full" alone)
    assert [r.getMessage() for r in said] == [f"a refresh observer failed: state file {tmp_path / 'state.sqlite3'} cannot be "
                                              "written (database or disk is full): its disk is full, or a limit on file size "
                                              "or disk quota holds it; free space there (or move STATE_PATH to a disk that "
                                              "has it)"]
    assert not said[0].exc_info and "database or disk is full): its disk is full" in publisher.last_error


def test_an_observer_that_commits_nothing_failing_leaves_the_refresh_a_success(tmp_path, monkeypatch, caplog):
    """Any observer's failure was taken for the build store's: a thread the search index or the codings could not
    start made a committed build "the build could not be committed", counted failed in /metrics, and /healthz turned
    stale while the site served that very build. Only a committer's failure makes the refresh a failed one."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "articles"
    write(folder, "a.txt", "News\nFirst\nA paragraph.\n")
    app = create_app({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0})
    publisher, client = app.extensions["feedsvc"], app.test_client()
    committer = next(o for o in publisher.observers if isinstance(o, Committer))
    seen = []

    def no_thread(refreshed):
        raise RuntimeError("can't start new thread")
    publisher.observers.insert(publisher.observers.index(committer) + 1, no_thread)
    publisher.observers.append(lambda refreshed: seen.append(refreshed.ok))
    before = publisher.last_success
    with caplog.at_level("ERROR"):
        write(folder, "b.txt", "News\nSecond\nA paragraph.\n")
        assert publisher.refresh()
    assert committer.wait(10)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("a refresh observer failed")] == \
        ["a refresh observer failed"]  # once, with its traceback
    assert publisher.last_error is None and publisher.last_success > before and seen == [True]
    counted = {s.labels["outcome"]: s.value for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
               for s in family.samples if s.name == "feedsvc_refreshes_total"}
    assert counted.get("changed") == 2 and not counted.get("failed"), counted
    health = client.get("/healthz")
    assert health.status_code == 200, health.get_json()
    # Said, though: /healthz said nothing of it while it failed every refresh (the log alone did).
    assert health.get_json()["status"] == "ok" and health.get_json()["observer_error"] == "RuntimeError: can't start new thread"

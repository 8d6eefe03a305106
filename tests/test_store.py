"""The build store (feedsvc/store.py): builds committed whole, read by thin processes, parse results kept by stat."""
from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from feedsvc import create_app
from feedsvc.formats import FORMATS
from feedsvc.partners import Partner
from feedsvc.building.committer import Committer
from feedsvc.config import load_settings
from feedsvc.reading.articles import Options, read_article
from feedsvc.building.parsed import ParsedCache
from feedsvc.store import PARSED_LAYOUT, ItemRef, StoreReader
from tests.conftest import variant, write


@pytest.fixture
def reads(monkeypatch):
    """Counts the article files actually read (parsed) in this process (folders under pool.POOL_FROM files)."""
    import feedsvc.reading.pool

    read_or_skip = feedsvc.reading.pool.read_or_skip
    seen: list[str] = []

    def counted(path, root, options, folder=None, busy=False, full=True, source=None, expect=None):
        seen.append(source.rsplit("/", 1)[-1] if source is not None else path.name)
        return read_or_skip(path, root, options, folder, busy, full, source, expect)

    monkeypatch.setattr(feedsvc.reading.pool, "read_or_skip", counted)
    return seen


def settings(folder, tmp_path, **more):
    return {"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0, **more}


def test_every_resource_the_publisher_made_is_served_from_the_store_with_the_same_bytes(sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(settings(sample_dir, tmp_path))
    snap, client = app.extensions["feedsvc"].snapshot, app.test_client()
    assert len(snap.resources) > 20
    for path in snap.resources:
        res = snap.resources[path]
        reply = client.get("/" + path, headers={"Accept-Encoding": "identity"})
        assert reply.status_code == 200 and reply.data == res.body and reply.headers["ETag"] == res.etag, path
        assert reply.headers["Last-Modified"] == res.http_date
        assert client.get("/" + path, headers={"If-None-Match": res.etag}).status_code == 304


def test_a_serving_process_that_does_not_build_never_reads_an_article_file(sample_dir, tmp_path, monkeypatch, reads):
    monkeypatch.chdir(tmp_path)
    builder = create_app(settings(sample_dir, tmp_path, FEED_MAX_ITEMS=3))
    assert len(reads) == 11
    reads.clear()
    worker = create_app(settings(sample_dir, tmp_path, FEED_MAX_ITEMS=3), build=False)
    assert "feedsvc" not in worker.extensions  # no Publisher, no scanner, no state store writes
    client = worker.test_client()
    for path in ("/", "/feed.rss", "/feed.json?page=2", "/feed.atom?since=2020-01-01T00:00:00Z", "/feeds.opml",
                 "/category/" + builder.extensions["feedsvc"].snapshot.feeds[1].key + "/"):
        assert client.get(path).status_code == 200, path
    assert reads == []


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_pages_deltas_and_partner_views_from_the_store_are_the_publishers_bytes(sample_dir, tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    builder = create_app(settings(sample_dir, tmp_path, FEED_MAX_ITEMS=3))
    pub = builder.extensions["feedsvc"]
    variants = create_app(settings(sample_dir, tmp_path, FEED_MAX_ITEMS=3), build=False).extensions["feedsvc.variants"]
    some = next(iter(pub.snapshot.articles.values())).categories[0]
    partner = Partner("p", b"x" * 32, frozenset({some}), False)
    since = datetime(2020, 1, 1, tzinfo=timezone.utc)
    asked = [("", {"page": 2}), ("", {"page": 4}), ("", {"since": since}), ("", {"since": since, "page": 2}),
             ("", {"partner": partner}), (pub.snapshot.feeds[1].key, {"page": 1, "partner": partner})]
    for key, how in asked:
        expected = variant(pub, key, fmt, **how)
        found = variants.get(key, fmt, **how)
        assert found is not None and found.body == expected.body and found.etag == expected.etag, (key, how)
        assert found.last_modified == expected.last_modified and found.headers == expected.headers
    assert variants.get("", fmt, page=99) is None and variants.get("no-such-key", fmt) is None


def test_a_reader_sees_the_new_build_and_forgets_only_what_it_changed(sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(settings(sample_dir, tmp_path))
    reader = StoreReader(tmp_path / "state.sqlite3", interval=0)
    committer = next(o for o in app.extensions["feedsvc"].observers if isinstance(o, Committer))
    committer.wait()  # the codings made after the first build are in
    kept = {path: reader.resource(path) for path in ("feed.rss", "style.css", "feeds.opml")}
    version = reader.current()
    category = app.extensions["feedsvc"].snapshot.feeds[1].category.name  # no new category: the OPML stays
    write(sample_dir, "zz-new.txt", f"{category}\nA brand new title\nBody.\n")
    app.extensions["feedsvc"].refresh()
    assert reader.current() == version + 1
    committer.wait()  # the changed feeds' codings, committed a moment later, change no other resource
    assert reader.resource("style.css") is kept["style.css"]  # unchanged: still the object in memory
    assert b"A brand new title" in reader.resource("feed.rss").body
    assert reader.resource("feeds.opml") is kept["feeds.opml"]


def test_a_build_is_seen_whole_or_not_at_all(sample_dir, tmp_path, monkeypatch):
    """A reader in another connection, looking while a build commits, never sees a new feed beside an old one."""
    monkeypatch.chdir(tmp_path)
    app = create_app(settings(sample_dir, tmp_path))
    pub = app.extensions["feedsvc"]
    conn = sqlite3.connect(f"file:{tmp_path / 'state.sqlite3'}?mode=ro", uri=True, check_same_thread=False)
    seen, stop = set(), threading.Event()

    def look() -> None:
        while not stop.is_set():
            rows = conn.execute("SELECT path, version FROM resources WHERE path IN ('feed.rss', 'feed.atom', 'feed.json')").fetchall()
            seen.add(tuple(sorted(version for _, version in rows)))

    watcher = threading.Thread(target=look)
    watcher.start()
    for n in range(5):
        write(sample_dir, f"zz-{n}.txt", f"News\nStory {n}\nBody.\n")
        pub.refresh()
    stop.set()
    watcher.join()
    assert len(seen) > 1 and all(len(set(versions)) == 1 for versions in seen), seen  # the three formats: one build


def test_a_restart_reads_no_file_when_nothing_changed_and_only_the_changed_one_otherwise(sample_dir, tmp_path, monkeypatch, reads):
    monkeypatch.chdir(tmp_path)
    first = create_app(settings(sample_dir, tmp_path))
    etags = {path: first.extensions["feedsvc"].snapshot.resources[path].etag for path in ("feed.rss", "feed.json", "")}
    assert len(reads) == 11
    reads.clear()
    again = create_app(settings(sample_dir, tmp_path))
    assert reads == []
    assert again.test_client().get("/healthz").get_json()["files_read"] == 0
    assert {path: again.extensions["feedsvc"].snapshot.resources[path].etag for path in etags} == etags
    victim = sorted(sample_dir.iterdir())[3]
    victim.write_text(victim.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    create_app(settings(sample_dir, tmp_path))
    assert reads == [victim.name]


def test_parse_results_are_not_reused_under_settings_that_change_reading(sample_dir, tmp_path, monkeypatch, reads):
    monkeypatch.chdir(tmp_path)
    create_app(settings(sample_dir, tmp_path))
    reads.clear()
    create_app(settings(sample_dir, tmp_path, SUMMARY_LENGTH=100))
    assert len(reads) == 11


def _parsed_rows(tmp_path) -> dict[str, object]:
    """source → what the state file's parsed row holds as its result (unpickled)."""
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        return {source: pickle.loads(result) for source, result in conn.execute("SELECT source, result FROM parsed")}


def test_a_parse_result_is_stored_once_as_the_items_row_it_is_but_for_its_dates(sample_dir, tmp_path, monkeypatch, reads):
    """An article's text is in the state file once (its items row), not pickled and written again as its parse result:
    that is an ItemRef, which a later process takes back as the very article the file gives."""
    monkeypatch.chdir(tmp_path)
    made = create_app(settings(sample_dir, tmp_path)).extensions["feedsvc"].scanner.parsed
    stored = _parsed_rows(tmp_path)
    assert len(stored) == 11 and all(type(result) is ItemRef for result in stored.values())
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        assert conn.execute("SELECT MAX(length(result)) FROM parsed").fetchone()[0] < 1000
    keys = (made.parser_version, made.settings_hash, made.site_hash)
    cache = ParsedCache(tmp_path / "state.sqlite3", *keys)
    options = Options.from_settings(load_settings(settings(sample_dir, tmp_path)))
    stats = {source: (os.stat(sample_dir / source).st_size, os.stat(sample_dir / source).st_mtime_ns) for source in stored}
    as_read = {source: read_article(sample_dir / source, sample_dir, options) for source in stored}
    assert cache.get_all(stats.items()) == as_read
    assert all(ParsedCache(tmp_path / "state.sqlite3", *keys).get(source, stats[source]) == as_read[source] for source in stored)
    reads.clear()
    again = create_app(settings(sample_dir, tmp_path))
    assert reads == [] and again.test_client().get("/healthz").get_json()["files_read"] == 0


def test_code_from_before_item_refs_finds_none_of_the_parse_results_that_may_be_one(sample_dir, tmp_path, monkeypatch):
    """Every parse row's version names the layout (store.PARSED_LAYOUT): a feedsvc from before it, whose version is the
    reading code's alone, finds no row here, so it reads the files rather than take a reference for a result."""
    monkeypatch.chdir(tmp_path)
    made = create_app(settings(sample_dir, tmp_path)).extensions["feedsvc"].scanner.parsed
    reading, _, layout = made.parser_version.rpartition(" ")
    assert layout == PARSED_LAYOUT and reading
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        assert {version for (version,) in conn.execute("SELECT DISTINCT parser_version FROM parsed")} == {made.parser_version}
    source = sorted(_parsed_rows(tmp_path))[0]
    stat = (os.stat(sample_dir / source).st_size, os.stat(sample_dir / source).st_mtime_ns)
    assert ParsedCache(tmp_path / "state.sqlite3", made.parser_version, made.settings_hash, made.site_hash).get(source, stat)
    assert ParsedCache(tmp_path / "state.sqlite3", reading, made.settings_hash, made.site_hash).get(source, stat) is None


def test_parse_rows_written_by_an_earlier_feedsvc_still_load():
    """A parse row's ItemRef is pickled by its class's module and name: `feedsvc.store.ItemRef`, as feedsvc has written
    it since item references began (these bytes are one, pickled by be6f866). Moved to another module, every stored
    reference would fail to load after an upgrade (AttributeError), and each refresh that reads one with it."""
    written = (b"\x80\x05\x95\x86\x00\x00\x00\x00\x00\x00\x00\x8c\rfeedsvc.store\x94\x8c\x07ItemRef\x94\x93\x94(\x8c\x03"
               b"x-1\x94\x8c\x04made\x94\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xea\x01\x02\x03\x04\x05"
               b"\x00\x00\x00\x94h\x05\x8c\x08timezone\x94\x93\x94h\x05\x8c\ttimedelta\x94\x93\x94K\x00K\x00K\x00\x87"
               b"\x94R\x94\x85\x94R\x94\x86\x94R\x94Nt\x94\x81\x94.")
    loaded = pickle.loads(written)
    assert type(loaded) is ItemRef and loaded == ItemRef("x-1", "made", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), None)
    assert pickle.loads(pickle.dumps(loaded, protocol=5)) == loaded and b"feedsvc.store" in pickle.dumps(loaded, protocol=5)


@pytest.mark.parametrize("column", ["result", "placement"])
def test_a_stored_parse_result_that_cannot_be_loaded_is_read_again_and_never_fails_a_refresh(
        sample_dir, tmp_path, monkeypatch, reads, caplog, column):
    """A parse row pickled by a feedsvc whose class has since moved (here: renamed in the bytes) or damaged on disk
    is a miss: the restart reads those two files again and publishes the same bytes, and says so once. `placement`:
    a big folder's restart, which takes the placements alone (Scanner.slim_from, lowered here)."""
    import feedsvc.reading.scan

    monkeypatch.chdir(tmp_path)
    first = create_app(settings(sample_dir, tmp_path))
    etags = {path: res.etag for path, res in first.extensions["feedsvc"].snapshot.resources.items()}
    moved, damaged = sorted(p.name for p in sample_dir.iterdir())[2:4]
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        (kept,) = conn.execute(f"SELECT {column} FROM parsed WHERE source = ?", (moved,)).fetchone()
        # An ItemRef (result) or an Article (placement) as pickled: its class named by module and name, here renamed to
        # one that does not exist, of the same length so that the pickle's frames still hold.
        module = b"feedsvc.store" if column == "result" else b"feedsvc.model"
        assert module in kept
        elsewhere = kept.replace(module, b"feedsvc.gone!")
        conn.execute(f"UPDATE parsed SET {column} = ? WHERE source = ?", (elsewhere, moved))
        conn.execute(f"UPDATE parsed SET {column} = ? WHERE source = ?", (b"\x80\x05not a pickle", damaged))
    if column == "placement":
        monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 5)
    reads.clear()
    with caplog.at_level("WARNING", logger="feedsvc.building.parsed"):
        again = create_app(settings(sample_dir, tmp_path))
    publisher = again.extensions["feedsvc"]
    assert publisher.last_error is None and sorted(reads) == sorted([moved, damaged])
    assert publisher.scanner.parsed.unreadable == 2
    said = [r.getMessage() for r in caplog.records if r.name == "feedsvc.building.parsed"]
    assert len(said) == 1 and "its file is read again" in said[0], said
    publisher.wait_reading(30)
    assert {path: res.etag for path, res in publisher.snapshot.resources.items()} == etags


def test_a_parse_result_whose_items_row_changed_or_went_is_read_again(sample_dir, tmp_path, monkeypatch, reads):
    """An ItemRef is taken back only while its items row is made from what it was: a row another build replaced (here
    by hand) or deleted gives nothing, and the file is read again, with the same feeds as a result."""
    monkeypatch.chdir(tmp_path)
    first = create_app(settings(sample_dir, tmp_path))
    etags = {path: first.extensions["feedsvc"].snapshot.resources[path].etag for path in ("feed.rss", "feed.json", "feed.atom")}
    stored = _parsed_rows(tmp_path)
    moved, gone = sorted(stored)[2], sorted(stored)[5]
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        conn.execute("UPDATE items SET made_from = made_from || ' elsewhere' WHERE id = ?", (stored[moved].id,))
        conn.execute("DELETE FROM items WHERE id = ?", (stored[gone].id,))
    reads.clear()
    again = create_app(settings(sample_dir, tmp_path))
    assert sorted(reads) == sorted([moved, gone])
    assert {path: again.extensions["feedsvc"].snapshot.resources[path].etag for path in etags} == etags


def test_an_article_whose_id_another_file_owns_is_stored_whole(tmp_path, monkeypatch, reads):
    """Two files that give the same ID: the second is skipped (the first has it), so no items row is its article but
    for its dates, and its parse result is pickled whole; a restart still reads no file."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "articles"
    write(folder, "a.md", "---\nid: same\ntitle: First\ncategory: News\n---\nText.\n")
    write(folder, "b.md", "---\nid: same\ntitle: Second\ncategory: News\n---\nOther text.\n")
    first = create_app(settings(folder, tmp_path))
    assert [a.source for a in first.extensions["feedsvc"].snapshot.articles.values()] == ["a.md"]
    stored = _parsed_rows(tmp_path)
    assert type(stored["a.md"]) is ItemRef and type(stored["b.md"]).__name__ == "Article"
    reads.clear()
    create_app(settings(folder, tmp_path))
    assert reads == []


def test_a_touched_file_with_the_same_bytes_is_read_again_and_changes_nothing(sample_dir, tmp_path, monkeypatch, reads):
    monkeypatch.chdir(tmp_path)
    app = create_app(settings(sample_dir, tmp_path))
    version = app.extensions["feedsvc.store"].current(force=True)
    victim = sorted(sample_dir.iterdir())[0]
    os.utime(victim, ns=(time.time_ns(), time.time_ns()))
    reads.clear()
    etag = app.test_client().get("/feed.rss").headers["ETag"]
    app.extensions["feedsvc"].refresh()
    assert reads == [victim.name]
    assert app.test_client().get("/feed.rss").headers["ETag"] == etag
    assert app.extensions["feedsvc.store"].current(force=True) >= version


def test_an_app_made_not_to_commit_leaves_the_build_store_alone(sample_dir, tmp_path, monkeypatch):
    """`feedsvc build` exports its own snapshot: it neither writes the build store nor keeps parse results."""
    monkeypatch.chdir(tmp_path)
    app = create_app(settings(sample_dir, tmp_path), commit=False)
    assert len(app.extensions["feedsvc"].snapshot.articles) == 11
    assert app.extensions["feedsvc.store"].build() is None


def test_listing_rows_dump_each_distinct_category_list_once(tmp_path):
    """item_row's categories column: the JSON of a list, the same text object for articles with the same categories."""
    from types import SimpleNamespace

    from feedsvc.building.storewriter import item_row

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [item_row(SimpleNamespace(id=f"a{i}", published=when, updated=when, recorded=None, categories=("News", "سياسة")))
            for i in range(2)]
    assert rows[0][4] == '["News","\\u0633\\u064a\\u0627\\u0633\\u0629"]' and rows[0][4] is rows[1][4]


def test_the_export_reads_the_store_token_without_waiting_for_a_writer(tmp_path):
    """A build's export names the store it was written from; once made, that name is read while the builder
    holds the store's write lock (a server building on it), not after it."""
    from feedsvc.building.exportfolder import store_token
    from feedsvc.store import connect, create_schema

    path = tmp_path / "state.sqlite3"
    create_schema(path)
    token = store_token(path)
    writer = connect(path)
    writer.execute("BEGIN IMMEDIATE")
    found = []
    try:
        reader = threading.Thread(target=lambda: found.append(store_token(path)), daemon=True)
        reader.start()
        reader.join(10)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert found == [token]


def test_a_new_store_file_has_large_pages_and_an_older_one_keeps_its_own(tmp_path):
    """A store is mostly feeds of hundreds of kB: 64 KiB pages write a cold start's first build in about half the
    time of SQLite's default 4 KiB (store.PAGE_SIZE). A page size is fixed once a file has pages."""
    from feedsvc.building.state import StateStore
    from feedsvc.store import PAGE_SIZE
    from feedsvc.building.storewriter import Build, StoreWriter

    def page_size(path) -> int:
        with sqlite3.connect(path) as conn:
            return conn.execute("PRAGMA page_size").fetchone()[0]

    new, old = tmp_path / "new.sqlite3", tmp_path / "old.sqlite3"
    StateStore(new)  # whichever opens a new file first sets it: the state store, or the build store's writer
    StoreWriter(new).commit(Build({}, {"feed.rss": ("e", "application/rss+xml", "2026-12-02T00:00:00+00:00", None, "[]",
                                                    os.urandom(300_000), None, None, "")}), datetime.now(timezone.utc))
    assert PAGE_SIZE == 65536 and page_size(new) == PAGE_SIZE
    assert len(StoreReader(new).resource("feed.rss").body) == 300_000
    with sqlite3.connect(old) as conn:  # a store made before: SQLite's default pages, already in WAL mode
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE before (x)")
    writer = StoreWriter(old)
    StateStore(old)
    writer.commit(Build({}, {"feed.rss": ("e", "application/rss+xml", "2026-12-02T00:00:00+00:00", None, "[]",
                                          b"<rss/>", None, None, "")}), datetime.now(timezone.utc))
    assert page_size(old) == 4096 and StoreReader(old).resource("feed.rss").body == b"<rss/>"


def test_a_store_whose_listing_rows_have_no_recorded_column_is_made_again_at_the_upgrade(sample_dir, tmp_path):
    """A store written before listing_items kept when each item was recorded (Article.recorded, for ?since= deltas):
    its build tables are made again and the next start's build writes every row, deltas and all."""
    from feedsvc.store import create_schema

    create_app(settings(sample_dir, tmp_path))
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as conn:  # the layout before: no recorded column
        conn.execute("ALTER TABLE listing_items DROP COLUMN recorded")
    create_schema(path)
    with sqlite3.connect(path) as conn:
        assert "recorded" in [row[1] for row in conn.execute("PRAGMA table_info(listing_items)")]
    client = create_app(settings(sample_dir, tmp_path), build=False).test_client()
    assert client.get("/feed.json").status_code == 503  # no build yet: the builder's next one writes every row
    create_app(settings(sample_dir, tmp_path))
    assert client.get("/feed.json?since=2000-01-01T00:00:00Z").status_code == 200


def test_a_store_whose_builds_have_no_landing_times_gets_them_at_the_upgrade_its_builds_kept(sample_dir, tmp_path):
    """A store written before each build kept when it landed and what it shows anew was dated from (builds.landed and
    dated, for ?since= deltas): the columns are added, every row kept, the stored build served at once (no build made
    again); a delta goes by `since` alone over those builds, as it did, and the next build's row has both."""
    from feedsvc.store import LANDED_AFTER, create_schema

    create_app(settings(sample_dir, tmp_path))
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as conn:  # the layout before
        conn.execute("ALTER TABLE builds RENAME TO later")
        conn.execute("CREATE TABLE builds (version INTEGER PRIMARY KEY, committed_at TEXT NOT NULL, report TEXT NOT NULL)")
        conn.execute("INSERT INTO builds SELECT version, committed_at, report FROM later")
        conn.execute("DROP TABLE later")
        builds = conn.execute("SELECT * FROM builds ORDER BY version").fetchall()
        resources = conn.execute("SELECT path, etag FROM resources ORDER BY path").fetchall()
    assert StoreReader(path).landed_after(datetime(2000, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc)) is None  # as before
    create_schema(path)
    create_schema(path)  # a second process starting on it adds nothing
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version, committed_at, report FROM builds ORDER BY version").fetchall() == builds
        assert conn.execute("SELECT COUNT(*) FROM builds WHERE landed IS NULL AND dated IS NULL").fetchone()[0] == len(builds)
        assert conn.execute("SELECT path, etag FROM resources ORDER BY path").fetchall() == resources
        # A lookup in the index, not a look at every build.
        plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {LANDED_AFTER}", (0, 0)))
        assert "COVERING INDEX builds_by_landing (landed>?)" in plan, plan
    client = create_app(settings(sample_dir, tmp_path), build=False).test_client()
    everything = client.get("/feed.json?since=2000-01-01T00:00:00Z")
    assert everything.status_code == 200 and len(json.loads(everything.data)["items"]) > 3
    assert StoreReader(path).landed_after(datetime(2000, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc)) is None
    create_app(settings(sample_dir, tmp_path))  # the next builder commits onto it
    with sqlite3.connect(path) as conn:
        landed, dated = conn.execute("SELECT landed, dated FROM builds ORDER BY version DESC LIMIT 1").fetchone()
    assert landed is not None and dated is not None and dated < landed


def test_a_serving_process_reads_the_state_file_that_replaced_the_one_it_read(sample_dir, tmp_path):
    """Its connections followed the file they opened: a state file replaced while feedsvc ran (a backup restored, or
    written back after it was deleted: building/statefile.py) was never read, its builds never served."""
    write(tmp_path / "other", "a.txt", "News\nOnly in the other store\nBody.\n")
    create_app(settings(sample_dir, tmp_path))
    other = {**settings(tmp_path / "other", tmp_path), "STATE_PATH": str(tmp_path / "other.sqlite3")}
    subprocess.run([sys.executable, "-c", f"from feedsvc import create_app; create_app({other!r})"], check=True, timeout=60,
                   cwd=tmp_path, env={**os.environ, "FEEDSVC_CONFIG": ""})  # another deployment's, made elsewhere
    for path in (tmp_path / "state.sqlite3", tmp_path / "other.sqlite3"):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    reader = StoreReader(tmp_path / "state.sqlite3", interval=0)
    assert b"Only in the other store" not in reader.resource("feed.rss").body
    for leftover in ("-wal", "-shm"):  # as a backup is restored: the file alone, its log checkpointed into it
        os.unlink(f"{tmp_path / 'state.sqlite3'}{leftover}")
    os.replace(tmp_path / "other.sqlite3", tmp_path / "state.sqlite3")
    reader.current(force=True)
    assert b"Only in the other store" in reader.resource("feed.rss").body


def test_a_state_file_not_told_at_the_builders_start_is_no_replacement(tmp_path):
    """A stat that failed as the builder started (its folder unsearchable a moment) made the next heartbeat's stat a
    "replaced" state file, and the healthy builder ended (found in review)."""
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "state.sqlite3").write_bytes(b"")
    code = f"""
import os
from feedsvc.building.statefile import StateFile
os.chmod({str(folder)!r}, 0)
held = StateFile({str(folder / "state.sqlite3")!r})
os.chmod({str(folder)!r}, 0o755)
print(held.check())
"""
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    try:
        run = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    finally:
        os.chmod(folder, 0o755)
    assert run.returncode == 0 and run.stdout.strip() == "None", run.stdout + run.stderr

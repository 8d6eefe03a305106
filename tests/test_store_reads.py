"""A serving process reads from the build store only the bytes it sends (store.StoreReader, Rendered.stored):
a 304 reads none, a gzip client only the gzip column; the cache counts what was read."""
from __future__ import annotations

import gzip
from datetime import datetime, timezone

import pytest

from feedsvc import create_app
from feedsvc.store import StoreReader
from feedsvc.building.storewriter import StoreWriter
from tests.conftest import built_app, write


@pytest.fixture
def built(sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state.sqlite3"
    create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(state), "SETTLE_MS": 0})
    return state


def worker(state, sample_dir):
    """A serving process: no Publisher, the store only."""
    return create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(state), "SETTLE_MS": 0}, build=False)


@pytest.fixture
def columns(monkeypatch):
    """The columns read from the store's resources rows, in order: (path, column)."""
    read = StoreReader._column
    seen: list[tuple[str, str]] = []

    def counted(self, path, etag, column, held):
        seen.append((path, column))
        return read(self, path, etag, column, held)

    monkeypatch.setattr(StoreReader, "_column", counted)
    return seen


def test_a_304_reads_no_bytes_and_a_gzip_client_only_the_gzip_column(built, sample_dir, columns):
    client = worker(built, sample_dir).test_client()
    tag = client.get("/feed.json", headers={"Accept-Encoding": "identity"}).headers["ETag"]
    assert columns == [("feed.json", "body")]
    columns.clear()
    app = worker(built, sample_dir)  # a fresh process: nothing in memory
    client = app.test_client()
    assert client.get("/feed.json", headers={"If-None-Match": tag}).status_code == 304
    assert columns == []
    zipped = client.get("/feed.json", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.headers["Content-Encoding"] == "gzip"
    assert columns == [("feed.json", "gzip")]
    assert client.get("/feed.json", headers={"Accept-Encoding": "gzip"}).data == zipped.data and len(columns) == 1  # kept
    plain = client.get("/feed.json", headers={"Accept-Encoding": "identity"}).data
    assert gzip.decompress(zipped.data) == plain and columns[-1] == ("feed.json", "body")


def test_the_cache_counts_the_bytes_read_and_keeps_a_resource_whose_one_coding_fits(built):
    sizes = StoreReader(built).resource("feed.rss")
    body, zipped = len(sizes.body), len(sizes.coded("gzip"))
    assert body > zipped
    # A quarter of the cache holds the gzip bytes, not the body: kept for gzip clients, never for identity ones.
    reader = StoreReader(built, cache_bytes=4 * (zipped + 1))
    assert reader.resource("feed.rss").coded("gzip") and reader.cached("feed.rss") is not None
    assert reader._bytes == zipped
    assert reader.resource("feed.rss").body and reader.cached("feed.rss") is None and reader._bytes == 0
    assert reader.resource("feed.rss").coded("gzip") and reader._bytes == zipped  # read again, counted again


def test_bytes_replaced_by_a_build_after_the_lookup_are_never_sent_under_the_old_etag(built, sample_dir, monkeypatch):
    app = worker(built, sample_dir)
    reader, client = app.extensions["feedsvc.store"], app.test_client()
    old = StoreReader(built).resource("feeds.opml")
    assert client.get("/feeds.opml", headers={"If-None-Match": old.etag}).status_code == 304  # its validators only
    before = reader.resource("feeds.opml")
    assert not before.loaded(None) and not before.loaded("gzip")
    writer = StoreWriter(built)
    from feedsvc.resource import Rendered
    from feedsvc.building.storewriter import Build, resource_row

    new = Rendered(old.body.replace(b"</opml>", b"<!-- edited --></opml>"), "text/x-opml", datetime.now(timezone.utc))
    build = Build({})
    build.resources["feeds.opml"] = resource_row(new, "edited", coded=True)
    writer.commit(build, datetime.now(timezone.utc))
    with pytest.raises(LookupError):  # the old entry cannot read bytes that are no longer its own
        before.body
    monkeypatch.setattr(reader, "interval", 3600.0)  # the worker has not looked at the version since
    assert reader.cached("feeds.opml")[0] is before
    reply = client.get("/feeds.opml", headers={"Accept-Encoding": "identity"})
    assert reply.status_code == 200 and reply.data == new.body and reply.headers["ETag"] == new.etag


def test_a_restarted_builder_takes_over_the_stored_feeds_without_reading_their_bytes(built, sample_dir, columns):
    restarted, refreshed = built_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(built), "SETTLE_MS": 0})
    snapshot = restarted.extensions["feedsvc"].snapshot
    assert refreshed.seeded > 20  # taken over from the store, not rendered
    assert columns == []  # their validators were enough: no body or coding read
    feed = snapshot.resources["feed.json"]
    assert not feed.loaded(None) and feed.body == StoreReader(built).resource("feed.json").body  # read when asked


def test_a_fresh_reader_reads_no_change_and_one_that_holds_a_resource_forgets_it_when_a_build_changes_it(built, sample_dir, monkeypatch):
    """The changes table holds what the last 200 builds changed (10,000 rows after a cold start at 10,000 articles):
    a process that holds nothing yet has nothing to forget, so its first look reads none of it."""
    looked = []
    forget = StoreReader._forget_changes
    monkeypatch.setattr(StoreReader, "_forget_changes", lambda self, *args: (looked.append(self), forget(self, *args))[1])
    reader = StoreReader(built)
    held = reader.resource("feed.rss")
    assert held is not None and reader.version > 0 and looked == []  # the first look: nothing held, nothing read
    write(sample_dir, "zz-new.txt", "News\nA new one\nIts body.\n")
    create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(built), "SETTLE_MS": 0})  # a build changes feed.rss
    reader.current(force=True)
    assert looked == [reader] and reader.resource("feed.rss") is not held and b"A new one" in reader.resource("feed.rss").body

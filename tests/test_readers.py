"""Real feed readers at the URLs a browser gets a page from: feedparser, the `reader` library and newsboat still
get the feeds, from the app and from the static export under nginx."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import feedparser
import pytest

from feedsvc.building.lock import BuildLock, lock_path
from feedsvc.preview import is_navigation
from tests.conftest import SAMPLE_ARTICLES
from tests.http_helpers import Nginx, QuietHandler, Server, fetch, free_port, wait_until_up
from tests.test_export import run_build
from tests.test_preview import CHROMIUM, FEEDS, POLITICS, READERS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(SAMPLE_ARTICLES, tmp_path_factory.mktemp("readers") / "state.sqlite3")
    yield server
    server.stop()


@pytest.mark.parametrize("path", [p for p in FEEDS if not p.endswith(".json")])  # feedparser reads no JSON Feed
def test_feedparser_reads_the_feed_where_a_browser_gets_a_page(server, path):
    assert fetch(server.base, path, headers=CHROMIUM).header("content-type") == "text/html; charset=utf-8"
    parsed = feedparser.parse(server.base + path)
    assert parsed.status == 200 and not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version in ("rss20", "atom10") and parsed.headers["content-type"].startswith("application/")
    assert parsed.entries and all(e.link.startswith(server.base + "/articles/") for e in parsed.entries)


def test_the_reader_library_subscribes_to_every_feed_and_reads_every_item(server, tmp_path):
    from reader import make_reader

    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        for path in FEEDS:
            reader.add_feed(server.base + path)
        reader.update_feeds()
        for path in FEEDS:
            feed = reader.get_feed(server.base + path)
            assert feed.last_exception is None, (path, feed.last_exception)
            assert feed.title and feed.title.startswith("feedsvc"), path
            plain = fetch(server.base, path)
            items = len(json.loads(plain.body)["items"]) if path.endswith(".json") else len(feedparser.parse(plain.body).entries)
            assert len(list(reader.get_entries(feed=feed))) == items > 0, path
    finally:
        reader.close()


# Debian 12's newsboat (2.21) reads RSS and Atom but no JSON Feed ("XML root node is NULL"): it gets the others.
NEWSBOAT_FEEDS = [p for p in FEEDS if not p.endswith(".json")] + [f"/category/{POLITICS}/feed.atom"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """nginx with deploy/nginx.conf serving a `feedsvc build` export of the sample."""
    folder = tmp_path_factory.mktemp("readers-export")
    port = free_port()
    run_build(SAMPLE_ARTICLES, folder / "export", folder / "state.sqlite3", SITE_URL=f"http://127.0.0.1:{port}")
    server = Nginx(folder / "export", folder, port=port)
    yield server
    server.stop()


def newsboat(urls: list[str], home: Path) -> sqlite3.Connection:
    """`newsboat -x reload` subscribed to urls, with its own home, config and cache; its cache, opened."""
    exe = shutil.which("newsboat")
    assert exe, "newsboat is not installed: .ci/install-deps installs it (apt-get install newsboat)"
    home.mkdir(exist_ok=True)  # a second reload keeps its cache
    (home / "urls").write_text("".join(url + "\n" for url in urls), encoding="utf-8")
    (home / "config").write_text("", encoding="utf-8")
    # Nothing of the user's: no ~/.newsboat, no XDG folders, no proxy; the servers are on loopback.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
           **{f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("CONFIG", "DATA", "CACHE", "STATE")}}
    done = subprocess.run([exe, "-u", str(home / "urls"), "-c", str(home / "cache.db"), "-C", str(home / "config"),
                           "-l", "4", "-d", str(home / "newsboat.log"), "-x", "reload"],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return sqlite3.connect(home / "cache.db")


@pytest.mark.parametrize("path", NEWSBOAT_FEEDS)
@pytest.mark.parametrize("where", ["app", "nginx"])
def test_newsboat_subscribes_where_a_browser_gets_a_page_and_gets_every_item(server, export, where, path, tmp_path):
    base = (server if where == "app" else export).base
    assert fetch(base, path, headers=CHROMIUM).header("content-type") == "text/html; charset=utf-8"
    expected = {(e.id, e.title, e.link) for e in feedparser.parse(fetch(base, path).body).entries}
    # One feed per cache: newsboat keeps one copy of an item by its guid, and every feed of a format shares them.
    cache = newsboat([base + path], tmp_path / "newsboat")
    try:
        title, = cache.execute("SELECT title FROM rss_feed WHERE rssurl = ?", (base + path,)).fetchone()
        items = set(cache.execute("SELECT guid, title, url FROM rss_item WHERE feedurl = ? AND unread = 1", (base + path,)))
    finally:
        cache.close()
    assert title.startswith("feedsvc") and len(expected) >= 5
    assert items == expected, (tmp_path / "newsboat" / "newsboat.log").read_text(encoding="utf-8", errors="replace")[-2000:]


def test_readers_polling_before_the_first_build_get_503_keep_the_feed_and_get_every_item_once_built(tmp_path):
    state = tmp_path / "state.sqlite3"
    lock = BuildLock(lock_path(str(state)))
    lock.acquire()  # another deployment's builder, busy: this server's builder waits for it, so nothing is built yet
    server = Server(SAMPLE_ARTICLES, state, ready="/feed.rss", ready_status=503)  # up, with no build yet
    reader = None
    try:
        assert fetch(server.base, "/feed.rss").header("retry-after") == "5"
        urls = [server.base + path for path in ("/feed.rss", "/feed.atom", f"/category/{POLITICS}/feed.atom")]
        assert feedparser.parse(urls[0]).status == 503
        from reader import make_reader

        reader = make_reader(str(tmp_path / "reader.sqlite"))
        for url in urls:
            reader.add_feed(url)
        reader.update_feeds()
        for url in urls:  # an error for now, the subscription kept, nothing taken for an empty feed
            feed = reader.get_feed(url)
            assert feed.last_exception is not None and "503" in feed.last_exception.value_str, (url, feed.last_exception)
            assert not list(reader.get_entries(feed=feed))
        newsboat(urls[:1], tmp_path / "newsboat").close()  # one feed a cache: newsboat keeps an item once by its guid
        os.close(lock.fd)  # the other builder is done: this server's builder takes the lock and builds
        wait_until_up(server.base, server.proc, "/feed.rss", timeout=60)
        reader.update_feeds(scheduled=False)  # now, as "update" in a reader's menu (its own schedule waits longer)
        for url in urls:
            feed = reader.get_feed(url)
            items = len(feedparser.parse(fetch(server.base, url[len(server.base):]).body).entries)
            assert feed.last_exception is None and len(list(reader.get_entries(feed=feed))) == items > 0, url
        cache = newsboat(urls[:1], tmp_path / "newsboat")  # the same subscription, reloaded
        try:
            items = {e.id for e in feedparser.parse(fetch(server.base, "/feed.rss").body).entries}
            assert {g for g, in cache.execute("SELECT guid FROM rss_item WHERE feedurl = ?", (urls[0],))} == items
        finally:
            cache.close()
    finally:
        if reader is not None:
            reader.close()
        server.stop()


class Recorder(QuietHandler):
    """Answers every GET with a tiny RSS feed and keeps the request's headers in the server's `seen`."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.server.seen.append(dict(self.headers))
        self.send_bytes(b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://x/</link></channel></rss>',
                        "application/rss+xml")


def headers_sent_by(subscribe, tmp_path: Path) -> dict[str, str]:
    """The headers of the one request subscribe(url) makes to a loopback server that records them."""
    recorder = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    recorder.seen = []
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        subscribe(f"http://127.0.0.1:{recorder.server_port}/feed.rss", tmp_path)
    finally:
        recorder.shutdown()
        recorder.server_close()
    assert len(recorder.seen) == 1, recorder.seen
    return recorder.seen[0]


def _newsboat(url: str, tmp_path: Path) -> None:
    newsboat([url], tmp_path / "newsboat").close()


def _reader(url: str, tmp_path: Path) -> None:
    from reader import make_reader

    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        reader.add_feed(url)
        reader.update_feeds()
    finally:
        reader.close()


@pytest.mark.parametrize("name, subscribe", [("newsboat", _newsboat), ("feedparser", lambda url, _: feedparser.parse(url)),
                                             ("reader", _reader)])
def test_each_reader_sends_the_headers_the_preview_tests_use_and_they_are_no_navigation(name, subscribe, tmp_path):
    # tests/test_preview.py and tests/test_nginx.py replay READERS; this keeps that table true to the readers installed.
    sent = headers_sent_by(subscribe, tmp_path)
    assert sent["User-Agent"].split("/")[0] == READERS[name]["User-Agent"].split("/")[0]
    assert sent.get("Accept") == READERS[name]["Accept"] and "Sec-Fetch-Dest" not in sent
    assert not is_navigation(sent)

"""Real feed readers at the URLs a browser gets a page from: feedparser and the `reader` library still get the feeds."""
from __future__ import annotations

import json

import feedparser
import pytest

from tests.conftest import SAMPLE_ARTICLES
from tests.http_helpers import Server, fetch
from tests.test_preview import CHROMIUM, FEEDS

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

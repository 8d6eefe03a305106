"""A feed's URL opened in a browser is a page about the feed; feed readers at the same URL get the feed, through the real app."""
from __future__ import annotations

from urllib.parse import quote

import feedparser
import pytest

from feedsvc.preview import VARY, is_navigation
from feedsvc.preview import preview_page
from tests.conftest import write

POLITICS = quote("سياسة")
FEEDS = ["/feed.rss", "/feed.atom", "/feed.json", f"/category/{POLITICS}/feed.rss"]
SITE = "http://127.0.0.1:8000"

# What each client sends when it opens a URL, copied from the requests they made to a test server.
CHROMIUM = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1",
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
                      "application/signed-exchange;v=b3;q=0.7", "Upgrade-Insecure-Requests": "1"}
FIREFOX = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1",
           "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
READERS = {
    "feedparser": {"User-Agent": "feedparser/6.0.14 +https://github.com/kurtmckee/feedparser/", "A-IM": "feed",
                   "Accept": "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
                             "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1"},
    "reader": {"User-Agent": "python-reader/3.26 (+https://github.com/lemon24/reader)", "A-IM": "feed",
               "Accept": "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,application/feed+json,"
                         "application/xml;q=0.9,application/json;q=0.9,text/xml;q=0.2,*/*;q=0.1"},
    "newsboat": {"User-Agent": "newsboat/2.21.0 (Linux x86_64)", "Accept": "*/*"},
    "curl": {"User-Agent": "curl/7.88.1", "Accept": "*/*"},
    "feedly": {"User-Agent": "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 12 subscribers; like FeedFetcher-Google)"},
    "a reader listing html as good as the feed": {"Accept": "application/rss+xml, text/html"},
    "a script's fetch() in a page": {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors", "Accept": "text/html,*/*"},
}


def test_a_browser_opening_a_feed_gets_a_right_to_left_page_with_its_items_and_how_to_subscribe(client):
    res = client.get("/feed.rss", headers=CHROMIUM)
    assert res.status_code == 200 and res.headers["Content-Type"] == "text/html; charset=utf-8"
    html = res.get_data(as_text=True)
    assert html.startswith("<!doctype html>\n<html lang=\"ar\" dir=\"rtl\">")
    assert '<h1><bdi lang="en">feedsvc</bdi></h1>' in html
    assert f'<p class="address"><code dir="ltr">{SITE}/feed.rss</code></p>' in html
    assert "To follow it, copy its address into your feed reader" in html and "انسخ عنوانها إلى قارئ الخلاصات" in html
    assert f'<a href="{SITE}/feed.atom" type="application/atom+xml">Atom</a>' in html
    assert f'<a href="{SITE}/feed.json" type="application/feed+json">JSON Feed</a>' in html
    assert f'<a href="{SITE}/feeds.opml">OPML</a>' in html and "A feed reader (an app or a web service)" in html
    # Every item of the feed, newest first, linked, dated, in its own language and direction.
    entries = feedparser.parse(client.get("/feed.rss").data).entries
    positions = [html.index(f'<a href="{e.link}">{e.title}</a>') for e in entries]
    assert positions == sorted(positions) and len(positions) == 11
    assert '<span class="item" lang="ar" dir="rtl"><a href="http://127.0.0.1:8000/articles/000_4c2ff0435fbab79d">' in html
    assert '<time dir="ltr" datetime="2026-11-20T09:30:00+00:00">2026-11-20 09:30 UTC</time>' in html


@pytest.mark.parametrize("path", FEEDS)
def test_the_page_is_the_feeds_own_with_a_policy_and_tells_caches_what_it_depends_on(client, path):
    page = client.get(path, headers=FIREFOX)
    feed = client.get(path)
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'<code dir="ltr">{SITE}{path}</code>' in page.get_data(as_text=True)
    assert page.headers["Vary"] == feed.headers["Vary"] == VARY == "Accept-Encoding, Sec-Fetch-Dest, Accept"
    assert page.headers["ETag"] != feed.headers["ETag"]
    assert page.headers["Last-Modified"] == feed.headers["Last-Modified"]  # the page changes when the feed does
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "Content-Security-Policy" not in feed.headers
    assert page.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("reader", READERS)
def test_feed_readers_get_the_feed_bytes_unchanged(client, reader):
    for path in FEEDS:
        plain = client.get(path)
        res = client.get(path, headers=READERS[reader])
        assert res.headers["Content-Type"] == plain.headers["Content-Type"] != "text/html; charset=utf-8"
        assert (res.data, res.headers["ETag"]) == (plain.data, plain.headers["ETag"]), (reader, path)
        assert res.headers["Vary"] == VARY


@pytest.mark.parametrize("accept, navigation", [
    (FIREFOX["Accept"], True),
    (CHROMIUM["Accept"], True),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Safari before Fetch Metadata
    ("text/html;q=0.5, */*", False),  # the most specific range decides (RFC 9110 §12.5.1)
    ("application/rss+xml, text/html", False),  # a tie goes to the feed
    ("*/*", False),
    ("", False),
])
def test_without_fetch_metadata_the_accept_header_tells_a_browser(accept, navigation):
    # Browsers send Sec-Fetch-Dest only to HTTPS and localhost; over plain HTTP only Accept is left.
    assert is_navigation({"Accept": accept}) is navigation


def test_fetch_metadata_decides_when_it_is_sent():
    assert is_navigation({"Sec-Fetch-Dest": "document", "Accept": "*/*"})
    assert not is_navigation({"Sec-Fetch-Dest": "iframe", "Accept": FIREFOX["Accept"]})


def test_a_revalidated_page_answers_304_and_still_varies(client):
    etag = client.get("/feed.atom", headers=CHROMIUM).headers["ETag"]
    res = client.get("/feed.atom", headers={**CHROMIUM, "If-None-Match": etag})
    assert res.status_code == 304 and res.headers["Vary"] == VARY
    # The page's tag never makes a feed reader's request a 304.
    assert client.get("/feed.atom", headers={"If-None-Match": etag}).status_code == 200


def test_the_page_is_made_once_per_version_of_the_feed(make_app, sample_dir):
    app = make_app(sample_dir)
    publisher, client = app.extensions["feedsvc"], app.test_client()
    first = preview_page(publisher.snapshot, publisher.site, "feed.rss")
    assert preview_page(publisher.snapshot, publisher.site, "feed.rss") is first  # looked up, not rendered again
    assert client.get("/feed.rss", headers=CHROMIUM).headers["ETag"] == first.etag
    publisher.refresh()  # nothing changed: same feed, same page object
    assert preview_page(publisher.snapshot, publisher.site, "feed.rss") is first
    write(sample_dir, "2026-11-28-new.md", "---\ntitle: A new story\nlang: en\ndate: 2026-11-28\ncategory: Technology\n---\nNews.\n")
    publisher.refresh()
    second = preview_page(publisher.snapshot, publisher.site, "feed.rss")
    assert second is not first and second.etag != first.etag and b"A new story" in second.body


def test_only_a_public_feeds_first_page_has_a_page(client):
    # An archive page or a delta keeps its feed bytes for everyone (README "Feeds in a browser").
    res = client.get("/feed.rss?since=2000-01-01T00:00:00Z", headers=CHROMIUM)
    assert res.status_code == 200 and res.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert client.get("/", headers=CHROMIUM).headers["Vary"] == "Accept-Encoding"


def test_every_value_on_the_page_is_escaped(make_app, articles_dir):
    write(articles_dir, "x.md", "---\ntitle: 'T <img src=x onerror=alert(1)>'\ncategory: '<script>alert(2)</script>'\n"
                                "summary: '<b>s</b>'\ndate: 2026-11-01\n---\nBody.\n")
    client = make_app(articles_dir).test_client()
    for path in ["/feed.rss", "/category/script-alert-2-script/feed.json"]:
        res = client.get(path, headers=CHROMIUM)
        html = res.get_data(as_text=True)
        assert res.status_code == 200 and res.headers["Content-Type"].startswith("text/html"), path
        assert "<img src=x" not in html and "<script>" not in html and "<b>s</b>" not in html, path
        assert "T &lt;img src=x onerror=alert(1)&gt;" in html, path


@pytest.mark.parametrize("lang, title", [
    ("ar", "أخبار — سياسة (خلاصة RSS)"), ("fa", "أخبار — سياسة \u2066(RSS feed)\u2069"), ("en", "أخبار — سياسة (RSS feed)"),
])
def test_the_pages_title_names_the_feed_in_its_language_or_isolates_the_english(make_app, articles_dir, lang, title):
    """An Arabic feed's page was titled `… (RSS feed)`: on a right-to-left page the English words' parenthesis showed on
    the wrong side. Arabic has its own words; on another right-to-left page (Persian) the English ones are a
    left-to-right isolate, as a <title> holds no <bdi>."""
    write(articles_dir, "a.md", f"---\ntitle: عنوان\ncategory: سياسة\nlang: {lang}\ndate: 2026-01-02T10:00:00Z\n---\n"
                                "نص المقال، بما يكفي من الطول للقراءة.\n")
    client = make_app(articles_dir, SITE_TITLE="أخبار", SITE_LANGUAGE=lang).test_client()
    html = client.get(f"/category/{quote('سياسة')}/feed.rss", headers=CHROMIUM).get_data(as_text=True)
    assert f"<title>{title}</title>" in html

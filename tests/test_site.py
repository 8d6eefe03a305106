"""The publisher renders everything once per refresh and keeps serving the last good snapshot."""
from __future__ import annotations

import gzip

import brotli

from tests.conftest import FIXED_NOW, write

GOOD = "Technology\nA good article\nIts only paragraph.\n"


def test_refresh_renders_every_feed_in_every_format(make_publisher, sample_dir):
    pub = make_publisher(sample_dir)
    assert pub.refresh()
    paths = set(pub.snapshot.resources)
    assert {"feed.rss", "feed.atom", "feed.json"} <= paths
    for feed in pub.snapshot.feeds:
        for fmt in ("rss", "atom", "json"):
            assert feed.path(fmt) in paths


def test_compressed_bodies_are_made_once_and_decompress_to_the_body(make_publisher, sample_dir):
    pub = make_publisher(sample_dir)
    pub.refresh()
    res = pub.snapshot.resources["feed.rss"]
    assert gzip.decompress(res.coded("gzip")) == res.body
    assert brotli.decompress(res.coded("br")) == res.body
    assert res.etag.startswith('"') and res.etag.endswith('"')


def test_one_bad_file_never_empties_or_breaks_a_feed(make_publisher, articles_dir):
    write(articles_dir, "good.txt", GOOD)
    write(articles_dir, "bad.md", "---\ntitle: [unclosed\n---\nbody\n")
    write(articles_dir, "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    pub = make_publisher(articles_dir)
    assert pub.refresh()
    assert [a.title for a in pub.snapshot.articles.values()] == ["A good article"]
    assert sorted(s.source for s in pub.snapshot.skipped) == ["bad.md", "binary.txt"]
    assert b"A good article" in pub.snapshot.resources["category/technology/feed.rss"].body
    assert b"unclosed" not in pub.snapshot.resources["feed.atom"].body


def test_a_failed_refresh_keeps_serving_the_last_good_feeds(make_publisher, articles_dir, tmp_path):
    write(articles_dir, "good.txt", GOOD)
    pub = make_publisher(articles_dir)
    assert pub.refresh()
    before = pub.snapshot
    articles_dir.rename(tmp_path / "moved-away")
    assert not pub.refresh()
    assert pub.snapshot is before
    assert "does not exist" in pub.last_error
    (tmp_path / "moved-away").rename(articles_dir)
    assert pub.refresh()
    assert pub.last_error is None


def test_an_exception_inside_rendering_is_caught_and_reported(make_publisher, articles_dir, monkeypatch):
    write(articles_dir, "good.txt", GOOD)
    pub = make_publisher(articles_dir)
    pub.refresh()
    before = pub.snapshot

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pub.renderer, "render", explode)
    write(articles_dir, "second.txt", GOOD.replace("A good", "Another"))
    assert not pub.refresh()
    assert pub.snapshot is before and "disk on fire" in pub.last_error


def test_embargoed_articles_have_no_page_until_their_time(make_publisher, articles_dir):
    write(articles_dir, "later.md", "---\ntitle: Later\ncategory: News\ndate: 2026-12-01 00:00\n---\nSoon.\n")
    write(articles_dir, "now.md", "---\ntitle: Now\ncategory: News\ndate: 2026-11-01 00:00\n---\nToday.\n")
    snap = make_publisher(articles_dir).build(FIXED_NOW)
    assert list(snap.articles) == ["now"]
    assert snap.next_release.isoformat() == "2026-12-01T00:00:00+00:00"

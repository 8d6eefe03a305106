"""A builder that starts on a kept state costs a restart plus what changed: its first render takes over the feeds
and pages the build store holds as they were made (building/render.py Renderer.seed, builder.py Committer.seed),
so an unchanged feed is neither rendered nor written again, by a restarted builder or by `feedsvc build`."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from feedsvc import create_app
from feedsvc.building import render
from feedsvc.building.committer import Committer
from feedsvc.formats import FORMATS
from feedsvc.urls import listing_page
from tests.conftest import built_app, write
from tests.test_export import entries, run_build

CATEGORIES = ("News", "Sport", "Culture", "Tech")


def many(folder: Path, n: int) -> Path:
    for i in range(n):
        write(folder, f"{i:03d}-story.txt", f"{CATEGORIES[i % 4]}\nStory number {i}\nParagraph of story {i}, with some words.\n")
    write(folder, "tagged.md", "---\ntitle: Tagged story\ncategory: News\ntags: [alpha, beta]\nauthor: Ann Writer\n"
                               "date: 2024-01-02T00:00:00Z\n---\nText of the tagged story.\n")
    return folder


def settings(folder: Path, state: Path, **more) -> dict:
    return {"ARTICLES_DIR": str(folder), "STATE_PATH": str(state), "SETTLE_MS": 0, "FEED_MAX_ITEMS": 50, **more}


def started(folder: Path, state: Path, **more):
    """A builder's app made (its first refresh committed and its background builds done)."""
    return started_as(folder, state, **more)[0]


def started_as(folder: Path, state: Path, **more):
    """started(), and what its first refresh did (Refreshed)."""
    app, refreshed = built_app(settings(folder, state, **more))
    assert next(o for o in app.extensions["feedsvc"].observers if isinstance(o, Committer)).wait(10)
    return app, refreshed


@pytest.fixture
def rendered(monkeypatch) -> list[str]:
    """The URL paths of the feeds and listing pages rendered from here on, in this process."""
    made: list[str] = []
    feed = render.Renderer._undated_feed
    page = render.render_category

    def undated_feed(self, fmt, f):
        made.append(f.path(fmt))
        return feed(self, fmt, f)

    def category(f, site):
        made.append(listing_page(f.key))
        return page(f, site)

    monkeypatch.setattr(render.Renderer, "_undated_feed", undated_feed)
    monkeypatch.setattr(render, "render_category", category)
    return made


def served(app) -> dict[str, tuple]:
    """Every resource but the article pages (made on request) as (ETag, Last-Modified, bytes)."""
    resources = app.extensions["feedsvc"].snapshot.resources
    return {path: (res.etag, res.last_modified, res.body) for path, res in resources.ready.items()}


def test_a_restart_on_a_kept_state_renders_no_unchanged_feed_and_serves_the_same_bytes(tmp_path, rendered):
    folder, state = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"
    before = served(started(folder, state))
    assert rendered  # the first start rendered every feed
    rendered.clear()
    again, refreshed = started_as(folder, state)
    assert rendered == []
    assert refreshed.seeded >= len(again.extensions["feedsvc"].snapshot.feeds) * len(FORMATS)
    assert served(again) == before


def test_a_restart_with_one_changed_file_renders_only_the_feeds_that_hold_it(tmp_path, rendered):
    folder, state = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"
    started(folder, state)
    write(folder, "tagged.md", (folder / "tagged.md").read_text(encoding="utf-8").replace("Text of", "New text of"))
    rendered.clear()
    again = started(folder, state)
    snap = again.extensions["feedsvc"].snapshot
    holding = [feed for feed in snap.feeds if any(a.source == "tagged.md" for a in feed.items)]
    assert {feed.key for feed in holding} == {"", "news", "tag/alpha", "tag/beta", "author/ann-writer"}
    assert sorted(rendered) == sorted([feed.path(fmt) for feed in holding for fmt in FORMATS]
                                      + [listing_page(feed.key) for feed in holding if feed.key])
    # What it took over is what a process that renders everything serves: the same bytes at the same times.
    took_over = served(again)
    no_seed = create_app(settings(folder, state), refresh=False)
    no_seed.extensions["feedsvc"].renderer.seed = None
    no_seed.extensions["feedsvc"].refresh()
    assert served(no_seed) == took_over


def test_a_stored_feed_made_with_other_settings_is_rendered_again(tmp_path, rendered):
    folder, state = many(tmp_path / "articles", 12), tmp_path / "state.sqlite3"
    started(folder, state, SITE_URL="https://old.example")
    rendered.clear()
    again, refreshed = started_as(folder, state, SITE_URL="https://new.example")
    assert refreshed.seeded == 0
    assert "feed.rss" in rendered
    body = again.extensions["feedsvc"].snapshot.resources["feed.rss"].body
    assert b"https://new.example" in body and b"https://old.example" not in body


def test_a_build_on_a_kept_state_with_one_changed_file_renders_and_writes_only_what_it_touches(tmp_path, rendered):
    folder, state, out = many(tmp_path / "articles", 30), tmp_path / "state.sqlite3", tmp_path / "export"
    run_build(folder, out, state, FEED_MAX_ITEMS=50)
    assert "0 files written" in run_build(folder, out, state, FEED_MAX_ITEMS=50)
    had = entries(out)
    rendered.clear()
    assert "0 files written" in run_build(folder, out, state, FEED_MAX_ITEMS=50)
    assert rendered == []  # a build with nothing changed renders nothing
    write(folder, "tagged.md", (folder / "tagged.md").read_text(encoding="utf-8").replace("Text of", "New text of"))
    run_build(folder, out, state, FEED_MAX_ITEMS=50)
    holding = {"", "news", "tag/alpha", "tag/beta", "author/ann-writer"}
    feeds = {f"{prefix}feed.{fmt}" for key in holding for fmt in FORMATS
             for prefix in ([""] if not key else [f"category/{key}/" if "/" not in key else f"{key}/"])}
    assert {path for path in rendered if "feed." in path} == feeds
    now = entries(out)
    moved = {now[name][0] for name in now if name in had and now[name][1] != had[name][1]}
    assert moved, "the changed article's files were written"
    untouched = {"category/sport/feed.rss", "category/culture/feed.atom", "feed.opml", "style.css"}
    assert not untouched & moved


def test_a_build_on_a_kept_state_holds_placements_and_loads_only_the_full_articles_it_renders(tmp_path, monkeypatch, caplog):
    """A rebuild of a big folder takes each unchanged file's placement from the parse store (no text unpickled), and
    the full article only for what it renders: first pages, the changed article, the archive pages that hold it."""
    import feedsvc.reading.scan
    from feedsvc.building.parsed import ParsedCache
    from tests.test_export import assert_served_alike, served as serving

    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    folder, state, out = many(tmp_path / "articles", 60), tmp_path / "state.sqlite3", tmp_path / "export"
    for i, path in enumerate(sorted(folder.iterdir())):  # dated years ago: none in the News sitemap's two days
        os.utime(path, (1_600_000_000 + i * 3600,) * 2)
    run_build(folder, out, state, FEED_MAX_ITEMS=5)
    caches: list[ParsedCache] = []
    made = ParsedCache.__init__

    def noted(self, *args, **kwargs):
        made(self, *args, **kwargs)
        caches.append(self)
    monkeypatch.setattr(ParsedCache, "__init__", noted)
    # The oldest article: on the oldest archive page of the site-wide feed and of News, rendered again here.
    write(folder, "000-story.txt", (folder / "000-story.txt").read_text(encoding="utf-8").replace("Paragraph", "New paragraph"))
    caplog.set_level(logging.INFO, "feedsvc.building.site")
    caplog.clear()
    said = run_build(folder, out, state, FEED_MAX_ITEMS=5)
    assert "(written whole)" not in said
    assert caches[0].read == 1  # the changed file alone
    # and the refresh says so: this process held none of the files, but only one changed since the store's last build
    assert [r.getMessage().split(", ")[1:3] for r in caplog.records if r.getMessage().startswith("refresh:")] == [
        ["1 changed files (60 unchanged", "from the store)"]]
    # Full results: the first pages' (20) and those of the two archive pages rendered (5 each, per format), not those
    # of all 60 unchanged files.
    assert 20 <= caches[0].loaded < 60
    assert b"New paragraph" in (out / "feed.atom.page-2").read_bytes()  # rendered in this process from full articles
    assert assert_served_alike(out, serving(state, folder, FEED_MAX_ITEMS=5)) == len(entries(out))


def test_a_restart_while_a_file_is_being_written_keeps_its_previous_version_published(tmp_path):
    """A file open for writing is held back, the previous version staying published; a builder that started meanwhile
    (a restart, a takeover after the builder was killed) held no version of it, and the article left every feed, its
    page and its category's feed 404, until the writer closed it."""
    folder, state = many(tmp_path / "articles", 3), tmp_path / "state.sqlite3"
    write(folder, "solo.txt", "Solo\nThe complete story\nIts whole text, as published.\n")
    started(folder, state, SETTLE_MS=300)
    with open(folder / "solo.txt", "w", encoding="utf-8") as writer:
        writer.write("Solo\nThe complete st")  # half saved, the writer still at work
        writer.flush()
        restarted = started(folder, state, SETTLE_MS=300).test_client()
        assert "The complete story" in restarted.get("/feed.json").get_data(as_text=True)
        assert restarted.get("/category/solo/feed.json").status_code == 200
        assert "Its whole text, as published." in restarted.get("/articles/solo").get_data(as_text=True)
        writer.write("ory, revised\nIts new text.\n")
    app = started(folder, state, SETTLE_MS=300)
    assert "The complete story, revised" in app.test_client().get("/feed.json").get_data(as_text=True)

"""A fresh process's sitemaps take over the stored files' entries (building/sitemaps.py `stored`): it makes only the
entries of what changed, and its files are the bytes of sitemaps made whole, whatever the store holds."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from feedsvc.building import sitemaps as sitemaps_module
from feedsvc.building.sitemaps import Sitemaps
from feedsvc.model import Article, Site, stable_id
from tests.conftest import FIXED_NOW, write
from tests.test_export import run_build

SITE = Site("News", "http://127.0.0.1:8000", "All the news", "Desk", "en", 60)
IDS = ["a-1", "b_2", "c.3", "d~4", "خبر-5", "e f", "g&h", "x%41", "i:j"]  # plain ones, then ones a URL quotes or XML escapes


def article(n: int, minutes: int, id_: str | None = None, seconds: float = 0) -> Article:
    """A published article n, dated minutes after FIXED_NOW (plus seconds, which a sitemap's lastmod leaves out)."""
    moment = FIXED_NOW + timedelta(minutes=minutes, seconds=seconds)
    id_ = id_ or f"story-{n}"
    return Article(id=id_, source=f"{id_}.txt", title=f"Story {n}", categories=("News",), body_html="<p>Body</p>",
                   body_text="Body", summary="Body", lang="en", content_hash=str(n), published=moment, updated=moment,
                   guid=stable_id(id_))


def sections(minute: int) -> list[tuple[str, datetime]]:
    return [(f"{SITE.url}/", FIXED_NOW + timedelta(minutes=minute)), (f"{SITE.url}/category/news/", FIXED_NOW)]


def made(sitemaps: Sitemaps, live: list[Article], minute: int, monkeypatch) -> tuple[dict[str, bytes], list[str]]:
    """Its files for these articles (newest first), and the <loc> of every entry it made to get them."""
    locs = []
    entry = sitemaps_module.url_entry
    monkeypatch.setattr(sitemaps_module, "url_entry", lambda loc, lastmod: (locs.append(loc), entry(loc, lastmod))[1])
    try:
        return sitemaps.render(sections(minute), live, FIXED_NOW), locs
    finally:
        monkeypatch.setattr(sitemaps_module, "url_entry", entry)


def taking_over(files: dict[str, bytes], **limits) -> Sitemaps:
    """A fresh process's Sitemaps over a store that holds these files."""
    fresh = Sitemaps(SITE, **limits)
    fresh.stored = files.get
    return fresh


def test_a_fresh_process_makes_only_the_entries_of_what_changed_and_the_same_bytes(monkeypatch):
    before = [article(n, n) for n in range(40, 0, -1)]  # newest first
    stored, _ = made(Sitemaps(SITE), before, 1, monkeypatch)
    edited = replace(before[5], updated=before[5].updated + timedelta(hours=1))
    now = [article(41, 41), *before[:5], edited, *before[6:20], *before[21:]]  # one new, one edited, one gone
    files, locs = made(taking_over(stored), now, 2, monkeypatch)
    assert files == Sitemaps(SITE).render(sections(2), now, FIXED_NOW)
    assert sorted(locs) == sorted([f"{SITE.url}/articles/story-41", f"{SITE.url}/articles/story-35",
                                   *(url for url, _ in sections(2))])
    # and a later refresh of that process goes on from what it took
    later = [article(42, 42), *now]
    assert made(taking_over(stored), later, 3, monkeypatch)[0] == Sitemaps(SITE).render(sections(3), later, FIXED_NOW)


def test_past_one_file_the_children_are_taken_over_too(monkeypatch):
    before = [article(n, n) for n in range(23, 0, -1)]
    stored, _ = made(Sitemaps(SITE, max_urls=5), before, 1, monkeypatch)
    assert "sitemap-5.xml" in stored
    now = [article(24, 24), *before]
    files, locs = made(taking_over(stored, max_urls=5), now, 2, monkeypatch)
    assert files == Sitemaps(SITE, max_urls=5).render(sections(2), now, FIXED_NOW)
    assert len(locs) == 1 + len(sections(2))


def test_what_this_code_would_not_write_is_never_taken(monkeypatch):
    live = [article(n, n) for n in range(12, 0, -1)]
    stored, _ = made(Sitemaps(SITE), live, 1, monkeypatch)
    whole = Sitemaps(SITE).render(sections(1), live, FIXED_NOW)
    body = stored["sitemap.xml"]
    for other in [body.replace(b"Z</lastmod>", b"+00:00</lastmod>", 3),  # another date form
                  body.replace(b"</url>\n  <url>", b"</url>\n\n  <url>", 1),  # another layout
                  body.replace(b"T00:0", b"T00:5"),  # other dates
                  body.replace(b"-01T", b"-41T"),  # a date no build writes
                  body.replace(b"127.0.0.1:8000", b"example.test"),  # another site
                  body[:-3], b"", b"<html/>"]:
        assert made(taking_over({"sitemap.xml": other}), live, 1, monkeypatch)[0] == whole
    assert made(taking_over({}), live, 1, monkeypatch)[0] == whole  # a store that holds none


def test_an_entry_dated_within_a_second_is_taken_over_as_its_lastmod_has_whole_seconds(monkeypatch):
    """A file without a `date:` is dated when first seen, with microseconds, and a <lastmod> has whole seconds:
    compared whole, no such entry was ever taken over (10,000 made again by every `feedsvc build` of the benchmark)."""
    live = [article(2, 2, seconds=0.5), article(1, 1, seconds=0.999999), article(0, 0)]
    stored, _ = made(Sitemaps(SITE), live, 1, monkeypatch)
    files, locs = made(taking_over(stored), live, 1, monkeypatch)
    assert files == stored and not [loc for loc in locs if "/articles/" in loc], locs
    later = [replace(live[0], updated=live[0].updated + timedelta(seconds=0.6)), *live[1:]]  # into the next second
    files, locs = made(taking_over(stored), later, 1, monkeypatch)
    assert files == Sitemaps(SITE).render(sections(1), later, FIXED_NOW)
    assert [loc for loc in locs if "/articles/" in loc] == [f"{SITE.url}/articles/story-2"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 30), st.booleans()), max_size=9, unique_by=lambda t: t[0]),
       st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 30), st.booleans()), max_size=9, unique_by=lambda t: t[0]),
       st.sampled_from([None, 3]), st.sampled_from(["http://127.0.0.1:8000", "https://example.test/نشر"]))
def test_whatever_was_stored_the_files_are_those_made_whole(before, after, max_urls, url):
    """Any two article sets, IDs that need quoting or not, one file or children, a site URL that needs quoting or
    not: the files a fresh process makes over the first set's files are those of sitemaps made whole."""
    site = replace(SITE, url=url)
    limits = {} if max_urls is None else {"max_urls": max_urls}

    def live(rows):
        found = [article(n, minutes, id_, seconds=0.5 if odd else 0) for n, (id_, minutes, odd) in enumerate(rows)]
        return sorted(found, key=lambda a: (a.published, a.id), reverse=True)

    stored = Sitemaps(site, **limits).render(sections(1), live(before), FIXED_NOW)
    fresh = Sitemaps(site, **limits)
    fresh.stored = stored.get
    assert fresh.render(sections(2), live(after), FIXED_NOW) == Sitemaps(site, **limits).render(sections(2), live(after), FIXED_NOW)


@pytest.mark.parametrize("dated", [True, False], ids=["date", "first-seen"])
def test_feedsvc_build_again_with_one_file_changed_makes_its_entry_and_the_sections_only(articles_dir, tmp_path, monkeypatch,
                                                                                         dated):
    """With a `date:` in each file, and without: then each is dated when first seen, with microseconds."""
    for n in range(30):
        when = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=n)
        date = f"date: {when.isoformat()}\n" if dated else ""
        write(articles_dir, f"s{n:02}.md", f"---\ntitle: Story {n}\ncategory: C{n % 3}\n{date}---\n"
                                           f"Body of story {n}, long enough to read.\n")
    out, state = tmp_path / "out", tmp_path / "state.db"
    run_build(articles_dir, out, state)
    if not dated:  # its change dated in a later second than its first sight: else its <lastmod> is the same, taken over
        time.sleep(1.05 - time.time() % 1)
    write(articles_dir, "s29.md", (articles_dir / "s29.md").read_text(encoding="utf-8") + "One more line.\n")
    locs = []
    entry = sitemaps_module.url_entry
    monkeypatch.setattr(sitemaps_module, "url_entry", lambda loc, lastmod: (locs.append(loc), entry(loc, lastmod))[1])
    run_build(articles_dir, out, state)
    articles = [loc for loc in locs if "/articles/" in loc]
    assert len(articles) == 1 and len(locs) < 10, locs  # the changed article's entry, then the home and categories
    assert articles[0].endswith("/articles/s29")

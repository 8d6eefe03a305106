"""A brief bad save (a file saved empty, a front-matter typo) never unpublishes: while a published article's file reads
as broken, its last good version stays published byte for byte (no update, no WebSub ping, no tombstone) and the skip
is reported as any other; across a restart and a builder taking over too (reading/scan.py Kept). A file that leaves
publication on purpose (a draft, an embargo, deleted, renamed, another id) leaves as it always did."""
from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest

from feedsvc.building.committer import Committer
from feedsvc.reading import scan as scan_module
from feedsvc.reading.articles import Options
from feedsvc.reading.folder import Folder, Unreadable
from feedsvc.reading.scan import Scanner
from tests.conftest import FIXED_NOW, built_app, variant, write
from tests.test_tombstones import tombstones

GOOD = "---\ntitle: Vote count\ncategory: Politics\ndate: {when}\n{extra}---\nThe count, as published.\n"
TYPO = "---\ntitle: Vote count\ncategory: Politics\ndate: [2026-11-28\n---\nThe count, as published.\n"
POLITICS_RSS = "category/politics/feed.rss"
LOG_NOTE = "the article's last good version stays published until the file is fixed or deleted"


def story(folder: Path, name: str, title: str, hours_ago: int, extra: str = "", category: str = "Politics") -> Path:
    when = (FIXED_NOW - timedelta(hours=hours_ago)).isoformat()
    return write(folder, name, f"---\ntitle: {title}\ncategory: {category}\ndate: {when}\n{extra}---\nBody of {title}.\n")


def vote(folder: Path, extra: str = "", hours_ago: int = 10, title: str = "Vote count") -> Path:
    when = (FIXED_NOW - timedelta(hours=hours_ago)).isoformat()
    return write(folder, "vote.md", GOOD.format(when=when, extra=extra).replace("Vote count", title))


@pytest.fixture
def desk(articles_dir):
    """Five stories; with FEED_MAX_ITEMS=2 `vote` is on the first page of Politics (its feeds ping the hub when it
    changes) and on page 2 of the site-wide feed, the oldest, complete (an archive page: served for a day)."""
    story(articles_dir, "old.md", "Old story", 11)
    vote(articles_dir)
    story(articles_dir, "mid.md", "Middle story", 3, category="Sport")
    story(articles_dir, "new-1.md", "New story 1", 2)
    story(articles_dir, "new-2.md", "New story 2", 1, category="Sport")
    return articles_dir


class Site:
    """A publisher whose clock the test moves, and the WebSub pings it would send."""

    def __init__(self, make_publisher, folder: Path):
        self.now = FIXED_NOW
        self.pub = make_publisher(folder, FEED_MAX_ITEMS=2)
        self.pub.clock = lambda: self.now
        self.pings: list[list[str]] = []
        self.pub.listeners.append(self.pings.append)
        assert self.pub.refresh()
        self.pings.clear()  # the first build tells the hub of every feed

    def later(self, **delta) -> None:
        self.now += timedelta(**delta or {"minutes": 1})
        assert self.pub.refresh()

    def served(self) -> dict:
        """Every resource (article pages too) as (ETag, Last-Modified, bytes), and each feed's page 2 in each format."""
        snapshot = self.pub.snapshot
        found = {path: (res.etag, res.last_modified, res.body) for path, res in
                 ((path, snapshot.resources[path]) for path in snapshot.resources)}
        for key in snapshot.listings:
            for fmt in ("rss", "atom", "json"):
                page = variant(self.pub, key, fmt, page=2)
                found[f"{key or 'site'}:{fmt}:page-2"] = None if page is None else page.body
        return found

    def titles(self, path: str = "feed.atom") -> list[str]:
        return [e.title for e in feedparser.parse(self.pub.snapshot.resources[path].body).entries]

    def skipped(self) -> dict[str, str]:
        return {s.source: s.reason for s in self.pub.snapshot.skipped}


def test_an_article_saved_broken_then_empty_stays_published_byte_for_byte_and_its_fix_is_published(
        make_publisher, desk, caplog):
    site = Site(make_publisher, desk)
    before = site.served()
    assert "articles/vote" in before and before["site:atom:page-2"] is not None
    assert b"Vote count" in before["site:atom:page-2"]  # an archive page, served for a day once complete
    caplog.set_level(logging.WARNING, "feedsvc")
    for broken, reason in ((TYPO, "front matter is not valid YAML"), ("", "empty or whitespace-only file")):
        caplog.clear()
        write(desk, "vote.md", broken)
        site.later()
        assert site.served() == before  # every feed, page, archive page and the article's own page, as they were
        assert list(site.skipped()) == ["vote.md"] and site.skipped()["vote.md"].startswith(reason)
        said = [r.getMessage() for r in caplog.records if "vote.md" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith(f"skipped vote.md: {reason}") and said[0].endswith(LOG_NOTE)
        assert tombstones(site.pub.snapshot.resources["feed.atom"].body) == {}
        assert site.pings == []  # the hub is told of nothing: nothing changed
        site.later()  # looked at again, unchanged: said once
        assert not [r for r in caplog.records if "vote.md" in r.getMessage()][1:]
    vote(desk, title="Vote count, corrected")
    site.later()
    assert "Vote count, corrected" in site.titles(POLITICS_RSS) and site.skipped() == {}
    assert b"Vote count, corrected" in site.pub.snapshot.resources["articles/vote"].body
    assert [url.split("/", 3)[3] for url in site.pings[-1]] == [POLITICS_RSS, "category/politics/feed.atom",
                                                                "category/politics/feed.json"]


@pytest.mark.parametrize("change", ["draft: true", "published: false", "status: draft", "a draft with no title",
                                    "embargoed again", "deleted", "renamed", "another id"])
def test_a_kept_article_whose_file_then_leaves_publication_leaves_as_it_always_did(make_publisher, desk, change):
    site = Site(make_publisher, desk)
    guid = next(e.id for e in feedparser.parse(site.pub.snapshot.resources["category/politics/feed.atom"].body).entries
                if e.title == "Vote count")
    write(desk, "vote.md", "")  # a bad save first: kept
    site.later()
    assert "Vote count" in site.titles(POLITICS_RSS) and "vote" in site.pub.snapshot.articles
    if change == "deleted":
        (desk / "vote.md").unlink()
    elif change == "renamed":
        (desk / "vote.md").rename(desk / "vote-2026.md")
        (desk / "vote-2026.md").write_text(GOOD.format(when=FIXED_NOW.isoformat(), extra=""), encoding="utf-8")
    elif change == "another id":
        vote(desk, "id: vote-2026\n")
    elif change == "embargoed again":
        vote(desk, hours_ago=-48)
    elif change == "a draft with no title":
        write(desk, "vote.md", "---\ncategory: Politics\ndraft: true\n---\nNot ready.\n")
    else:
        vote(desk, change + "\n")
    site.later()
    assert "vote" not in site.pub.snapshot.articles and "articles/vote" not in site.pub.snapshot.resources
    rss = feedparser.parse(site.pub.snapshot.resources[POLITICS_RSS].body)
    assert guid not in {e.id for e in rss.entries}  # for RSS, leaving the feed is how a deletion is said
    # Tombstones as before: a file skipped for a flag of another system (or a draft that cannot be read) holds its entry
    # until it is deleted; a draft, an embargo, a deletion, a rename or a new id is announced.
    held = change in ("published: false", "status: draft", "a draft with no title")
    assert (guid in tombstones(site.pub.snapshot.resources["feed.atom"].body)) is not held


def test_a_file_that_was_never_published_keeps_nothing(make_publisher, desk):
    """Never read good, embargoed, or a copy repeating another's id: skipped, nothing published, nothing later either."""
    story(desk, "next-week.md", "Next week", -24 * 7)  # embargoed
    story(desk, "z-copy.md", "Vote count, a copy", 10, "id: vote\n")  # vote.md owns the id (first in path order)
    site = Site(make_publisher, desk)
    write(desk, "vote.md", TYPO)  # kept: the one published
    write(desk, "never.md", TYPO)
    write(desk, "next-week.md", "")
    write(desk, "z-copy.md", "")
    site.later()
    assert set(site.skipped()) == {"vote.md", "never.md", "next-week.md", "z-copy.md"}
    assert [a.source for a in site.pub.snapshot.articles.values() if a.id == "vote"] == ["vote.md"]
    (desk / "vote.md").unlink()  # the owner gone: the copy's last good text does not take its id over
    site.later(days=8)  # the embargo is over: its last good text is not released while its file is broken
    assert not {"vote", "next-week", "never"} & site.pub.snapshot.articles.keys()
    assert set(site.skipped()) == {"never.md", "next-week.md", "z-copy.md"}


def test_a_published_file_that_cannot_be_read_for_a_moment_stays_published(articles_dir, monkeypatch):
    """Its permissions or an I/O error (folder.Unreadable), as a broken file: kept, said once, read again at each look."""
    write(articles_dir, "a.txt", "News\nA story\nIts text.\n")
    scanner = Scanner(articles_dir, Options(site_url="http://127.0.0.1:8000"), settle=0, published=lambda article: True)
    first = scanner.scan()
    read = Folder.read
    monkeypatch.setattr(Folder, "read", lambda self, source, *args: Unreadable(source, "permission denied", "fix it")
                        if source == "a.txt" else read(self, source, *args))
    write(articles_dir, "a.txt", "News\nA story\nIts text, edited.\n")
    broken = scanner.scan()
    assert broken.articles == first.articles and not broken.came and not broken.went
    assert [str(s) for s in broken.skipped] == ["a.txt: permission denied; fix it"]
    assert not scanner.scan().changed  # unreadable as it was: nothing changed
    monkeypatch.setattr(Folder, "read", read)
    fixed = scanner.scan()
    assert [a.body_text for a in fixed.articles] == ["Its text, edited."] and fixed.skipped == ()


def started(folder: Path, state: Path, **more):
    """A builder's app (a restart, or a builder taking over the store), its first refresh committed."""
    app, _ = built_app({"ARTICLES_DIR": str(folder), "STATE_PATH": str(state), "SETTLE_MS": 0, "FEED_MAX_ITEMS": 2, **more})
    assert next(o for o in app.extensions["feedsvc"].observers if isinstance(o, Committer)).wait(10)
    return app


PATHS = ("/feed.atom", "/feed.rss", "/feed.json", "/feed.atom?page=2", "/feed.json?page=2", "/category/politics/feed.atom",
         "/articles/vote", "/sitemap.xml")


def answers(app, paths: tuple[str, ...] = PATHS) -> dict[str, tuple]:
    """Each path as the app answers it: (status, ETag, Last-Modified, bytes)."""
    client = app.test_client()
    found = {}
    for path in paths:
        reply = client.get(path, headers={"Accept-Encoding": "identity"})
        found[path] = (reply.status_code, reply.headers.get("ETag"), reply.headers.get("Last-Modified"), reply.data)
    return found


def test_a_restart_keeps_the_last_good_version_published_while_the_file_stays_broken(desk, tmp_path, monkeypatch):
    """From the parse store: a builder that starts (a restart, or one taking over) while the file is broken, or finds it
    broken since the last one stopped, serves the same bytes; once fixed, the fix."""
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state.sqlite3"
    app = started(desk, state)
    before = answers(app)
    assert before["/articles/vote"][0] == 200 and b"Vote count" in before["/feed.atom?page=2"][3]
    write(desk, "vote.md", TYPO)  # while it runs
    publisher = app.extensions["feedsvc"]
    assert publisher.refresh() and next(o for o in publisher.observers if isinstance(o, Committer)).wait(10)
    assert answers(app) == before
    app = started(desk, state)  # a restart, or a builder taking over, while it is broken
    assert answers(app) == before and app.test_client().get("/healthz").get_json()["skipped"] == 1
    write(desk, "vote.md", "")  # saved empty while no builder runs
    app = started(desk, state)
    assert answers(app) == before and app.test_client().get("/healthz").get_json()["skipped"] == 1
    assert tombstones(answers(app)["/feed.atom"][3]) == {}
    vote(desk, title="Vote count, corrected")
    fixed = answers(started(desk, state))
    assert b"Vote count, corrected" in fixed["/feed.atom?page=2"][3] and b"Vote count, corrected" in fixed["/articles/vote"][3]
    write(desk, "vote.md", TYPO)  # broken while no builder runs, its last good version the corrected one
    app = started(desk, state)
    assert answers(app) == fixed and app.test_client().get("/healthz").get_json()["skipped"] == 1


def test_a_big_folder_held_as_placements_keeps_a_broken_files_last_good_version_too(tmp_path, monkeypatch):
    """A restart of a big folder holds most articles as placements (their text in the parse store): one of them saved
    empty is kept whole, from the parse store, and a restart after that takes it kept from there, reading no file."""
    from feedsvc.building.parsed import ParsedCache

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(scan_module, "PLACE_FROM", 10)
    folder, state = tmp_path / "articles", tmp_path / "state.sqlite3"
    for i in range(30):
        path = write(folder, f"s{i:02d}.txt", f"News\nStory {i}\nParagraph of story {i}.\n")
        os.utime(path, (1_600_000_000 + i * 3600,) * 2)  # s02 on an archive page, never on a first page
    assert started(folder, state, FEED_MAX_ITEMS=5).extensions["feedsvc"].wait_reading(30)  # a cold start, read in full
    app = started(folder, state, FEED_MAX_ITEMS=5)  # a restart: every article a placement from the parse store
    publisher = app.extensions["feedsvc"]
    assert "s02.txt" in publisher.scanner._slim
    paths = ("/articles/s02", "/feed.atom?page=2", "/category/news/feed.json?page=2")
    before = answers(app, paths)
    assert before["/articles/s02"][0] == 200 and b"Paragraph of story 2." in before["/feed.atom?page=2"][3]
    write(folder, "s02.txt", "")
    assert publisher.refresh() and next(o for o in publisher.observers if isinstance(o, Committer)).wait(10)
    assert answers(app, paths) == before
    caches: list[ParsedCache] = []
    made = ParsedCache.__init__
    monkeypatch.setattr(ParsedCache, "__init__", lambda self, *args, **kwargs: (made(self, *args, **kwargs), caches.append(self))[0])
    restarted = started(folder, state, FEED_MAX_ITEMS=5)
    assert answers(restarted, paths) == before and caches[0].read == 0
    assert [s.source for s in restarted.extensions["feedsvc"].snapshot.skipped] == ["s02.txt"]

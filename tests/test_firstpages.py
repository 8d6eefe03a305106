"""A cold start commits what the feeds need first, the article pages right after in the background
(feedsvc/building/builder.py Committer); a page asked for meanwhile is rendered from the stored article (variants.py),
or, for an article a big folder's first scan only placed and has not read in full yet, is a 503 with
Retry-After (tests/test_coldpath.py)."""
from __future__ import annotations

import functools
import pickle
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

import feedsvc.building.builder
import feedsvc.building.committer
import feedsvc.building.site
from feedsvc import create_app
from feedsvc.store import ItemRef
from tests.conftest import write
from tests.http_helpers import Server, fetch

CATEGORIES = ("economy", "sport", "tech", "culture")


def many(folder, n: int):
    for i in range(n):
        write(folder, f"{i:04d}-story.txt", f"{CATEGORIES[i % 4]}\nStory number {i}\nParagraph of story {i}, with some words.\n\nAnd a second one.\n")
    return folder


def settings(folder, state, **more):
    return {"ARTICLES_DIR": str(folder), "STATE_PATH": str(state), "SETTLE_MS": 0, **more}


def rows(state) -> dict:
    """Every stored resource: path → what a request gets (bytes, codings, validators, headers), not when it was committed."""
    with sqlite3.connect(state) as conn:
        return {row[0]: row[1:] for row in conn.execute(
            "SELECT path, etag, media_type, max_age, headers, body, gzip, br, made_from FROM resources")}


def committer(app):
    return next(o for o in app.extensions["feedsvc"].observers if isinstance(o, feedsvc.building.committer.Committer))


def one_moment(monkeypatch):
    """Every build of every deployment in the test dated at one moment: two deployments built across a second's
    boundary would differ in their feeds' own dates (Atom <updated>, RSS <lastBuildDate>), and nothing else."""
    now = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)  # after every file's mtime
    monkeypatch.setattr(feedsvc.building.site, "Publisher", functools.partial(feedsvc.building.site.Publisher, clock=lambda: now))


def test_a_cold_start_commits_the_feeds_first_and_ends_with_the_bytes_of_one_full_build(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = many(tmp_path / "articles", 40)
    one_moment(monkeypatch)
    whole = create_app(settings(folder, tmp_path / "whole.sqlite3"))
    assert committer(whole).wait(10)
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", 5)
    monkeypatch.setattr(feedsvc.building.committer, "PAGES_PER_BUILD", 7)
    split = create_app(settings(folder, tmp_path / "split.sqlite3"))
    assert committer(split).wait(10)
    with sqlite3.connect(tmp_path / "split.sqlite3") as conn:
        builds = conn.execute("SELECT version, report FROM builds ORDER BY version").fetchall()
        first = {path for (path,) in conn.execute("SELECT path FROM changes WHERE version = ?", (builds[0][0],))}
    assert len(builds) == 1 + 1 + 6  # the feeds' build, the parse results', then 40 pages 7 to a build
    assert not any(p.startswith("articles/") for p in first)
    assert {"feed.rss", "feed.atom", "feed.json", "feeds.opml", "", "style.css"} <= first
    assert '"pages_pending": 40' in builds[0][1] and '"pages_pending": 0' in builds[-1][1]
    assert rows(tmp_path / "split.sqlite3") == rows(tmp_path / "whole.sqlite3")
    with sqlite3.connect(tmp_path / "split.sqlite3") as conn:  # parse results come in a build of their own, second
        assert conn.execute("SELECT COUNT(*) FROM parsed").fetchone()[0] == 40
        assert {path for (path,) in conn.execute("SELECT path FROM changes WHERE version = ?", (builds[1][0],))} == set()
        stored = [pickle.loads(result) for (result,) in conn.execute("SELECT result FROM parsed")]
    assert all(type(result) is ItemRef for result in stored)  # each the items row the feeds' build put (store.ItemRef)
    with sqlite3.connect(tmp_path / "whole.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM builds").fetchone()[0] == 1  # few new pages: one build, as before


def test_an_article_page_not_committed_yet_is_rendered_from_the_stored_article(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = many(tmp_path / "articles", 12)
    one_moment(monkeypatch)
    whole = create_app(settings(folder, tmp_path / "whole.sqlite3"))
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", 0)
    finish = feedsvc.building.committer.Committer.finish
    monkeypatch.setattr(feedsvc.building.committer.Committer, "finish", lambda self: None)  # the background pages wait
    builder = create_app(settings(folder, tmp_path / "state.sqlite3"))
    worker = create_app(settings(folder, tmp_path / "state.sqlite3"), build=False).test_client()
    pages = [p for p in whole.extensions["feedsvc"].snapshot.resources if p.startswith("articles/")]
    assert len(pages) == 12 and not any(p.startswith("articles/") for p in rows(tmp_path / "state.sqlite3"))
    for path in pages:
        expected = whole.extensions["feedsvc"].snapshot.resources[path]
        reply = worker.get("/" + path, headers={"Accept-Encoding": "identity"})
        assert reply.status_code == 200 and reply.data == expected.body and reply.headers["etag"] == expected.etag, path
        assert reply.headers["Content-Security-Policy"]
        assert worker.get("/" + path, headers={"If-None-Match": expected.etag}).status_code == 304
        assert worker.get("/" + path, headers={"Accept-Encoding": "br"}).headers["Content-Encoding"] == "br"
    assert worker.get("/articles/no-such-article").status_code == 404
    import brotli  # the feeds' codings come with the pages' first build; a worker makes one asked for meanwhile
    assert rows(tmp_path / "state.sqlite3")["feed.rss"][6] is None
    reply = worker.get("/feed.rss", headers={"Accept-Encoding": "br"})
    assert reply.headers["Content-Encoding"] == "br" and brotli.decompress(reply.data) == rows(tmp_path / "whole.sqlite3")["feed.rss"][4]
    assert worker.get("/articles/" + pages[0][len("articles/"):] + "/x").status_code == 404
    finish(committer(builder))
    stored = rows(tmp_path / "state.sqlite3")
    for path in pages:
        assert stored[path][0] == whole.extensions["feedsvc"].snapshot.resources[path].etag
        reply = worker.get("/" + path, headers={"Accept-Encoding": "identity"})
        served = builder.extensions["feedsvc"].snapshot.resources[path]
        assert reply.headers["etag"] == served.etag and reply.headers["Last-Modified"] == served.http_date


def test_a_refresh_while_pages_are_pending_still_ends_with_every_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = many(tmp_path / "articles", 30)
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", 3)
    monkeypatch.setattr(feedsvc.building.committer, "PAGES_PER_BUILD", 4)
    finish = feedsvc.building.committer.Committer.finish
    monkeypatch.setattr(feedsvc.building.committer.Committer, "finish", lambda self: None)
    app = create_app(settings(folder, tmp_path / "state.sqlite3"))
    write(folder, "9999-late.txt", "sport\nA late story\nIt came during the first build.\n")
    (folder / "0000-story.txt").unlink()
    app.extensions["feedsvc"].refresh()
    one = committer(app)
    assert len(one._deferred) == 30  # the 29 still pending and the new one
    finish(one)
    snap = app.extensions["feedsvc"].snapshot
    stored = rows(tmp_path / "state.sqlite3")
    pages = {p for p in stored if p.startswith("articles/")}
    assert pages == {p for p in snap.resources if p.startswith("articles/")} and len(pages) == 30
    assert all(stored[p][0] == snap.resources[p].etag for p in pages)


@pytest.mark.e2e
def test_serve_answers_every_feed_and_every_article_page_while_the_pages_are_still_being_committed(tmp_path):
    folder = many(tmp_path / "articles", feedsvc.building.committer.FIRST_PAGES + 700)
    state = tmp_path / "state.sqlite3"
    server = Server(folder, state, workers=2)
    try:
        assert fetch(server.base, "/feed.rss").status == 200
        ids = [f"{i:04d}-story" for i in range(0, feedsvc.building.committer.FIRST_PAGES + 700, 37)]
        first = {}
        for id_ in ids:
            reply = fetch(server.base, f"/articles/{id_}")
            deadline = time.monotonic() + 60
            while reply.status == 503 and time.monotonic() < deadline:  # placed only, still being read (test_coldpath.py)
                assert reply.headers["retry-after"] == "1"
                time.sleep(0.2)
                reply = fetch(server.base, f"/articles/{id_}")
            assert reply.status == 200, id_
            first[id_] = reply.headers["etag"]
        deadline = time.monotonic() + 60
        while True:
            with sqlite3.connect(state) as conn:
                report = conn.execute("SELECT report FROM builds ORDER BY version DESC LIMIT 1").fetchone()[0]
            if '"pages_pending": 0' in report:
                break
            assert time.monotonic() < deadline, "the article pages were never all committed"
            time.sleep(0.1)
        with sqlite3.connect(state) as conn:
            assert conn.execute("SELECT COUNT(*) FROM builds").fetchone()[0] >= 2  # the feeds first, then the pages
        for id_ in ids:
            assert fetch(server.base, f"/articles/{id_}").headers["etag"] == first[id_], id_
    finally:
        server.stop()

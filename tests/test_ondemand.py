"""Made on demand (issue 10.3): in the seconds after a cold start, a request that needs an article the builder has
only placed asks for it (feedsvc/wanted.py), the builder's background reading reads it first
(Publisher.finish_reading), and the request gets, within its bound, the bytes any later request gets; past the
bound (a builder stopped) a 503 with Retry-After, never a hang."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest

import feedsvc.reading.scan
import feedsvc.serving.variants
from feedsvc import create_app
from feedsvc.building.site import Publisher
from feedsvc.reading.articles import is_placed
from feedsvc.wanted import Wanted
from tests.conftest import variant, write
from tests.http_helpers import Server, fetch, run_feedsvc
from tests.test_coldpath import committer, finished, many, settings


def wants(state: Path) -> int:
    """How many wants the queue holds."""
    return Wanted(state).count()


@pytest.fixture
def held(tmp_path, monkeypatch):
    """A cold start of 60 articles whose background reading has not begun: (builder app, worker client, start it)."""
    yield from holding(tmp_path, monkeypatch, many(tmp_path / "articles", 60))


def holding(tmp_path, monkeypatch, folder: Path):
    """held's cold start, of this folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    finish_reading = Publisher.finish_reading
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the background waits for start()
    app = create_app(settings(folder, tmp_path / "state.sqlite3"))
    assert committer(app).wait(30)
    worker = create_app(settings(folder, tmp_path / "state.sqlite3"), build=False).test_client()
    publisher = app.extensions["feedsvc"]
    threads = []

    def start(after: float = 0.3) -> threading.Thread:
        """The builder's background reading, `after` seconds from now (a request is waiting by then)."""
        thread = threading.Timer(after, finish_reading, args=(publisher, publisher.scanner.placed))
        thread.start()
        threads.append(thread)
        return thread

    yield app, worker, start
    for thread in threads:
        thread.join(30)


def test_requests_for_placed_articles_wait_for_the_builder_to_read_them_first(held, tmp_path, caplog):
    app, worker, start = held
    publisher = app.extensions["feedsvc"]
    listing = publisher.snapshot.listings[""]
    placed = [a for a in listing.items if is_placed(a)]
    newest, middle = placed[0], placed[10]  # the newest's file sorts last: read last by the background, but first when asked for
    assert newest.source == max(publisher.scanner.placed)
    assert json.loads(worker.get("/healthz").data)["left_to_read"] == len(publisher.scanner.placed) == 40
    page = (len(listing.items) - 1 - listing.items.index(newest)) // 5 + 2  # archive pages count from the oldest (paging.py)
    since = datetime(2000, 1, 1, tzinfo=timezone.utc)
    paths = [f"/feed.rss?page={page}", f"/articles/{middle.id}", "/feed.json?since=2000-01-01T00:00:00Z&page=10"]
    replies = {}

    def ask(path: str) -> None:
        replies[path] = worker.get(path, headers={"Accept-Encoding": "identity"})

    askers = [threading.Thread(target=ask, args=(path,)) for path in paths]
    with caplog.at_level(logging.INFO, logger="feedsvc.building.background"):
        for asker in askers:
            asker.start()
        deadline = time.monotonic() + 20
        while wants(tmp_path / "state.sqlite3") < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
        background = start(0)  # once they have asked
        for asker in askers:
            asker.join(30)
    assert [replies[path].status_code for path in paths] == [200, 200, 200]
    archive, article, delta = (replies[path] for path in paths)
    ids = {e.link.rsplit("/", 1)[1] for e in feedparser.parse(archive.data).entries}
    ids |= {middle.id} | {item["url"].rsplit("/", 1)[1] for item in json.loads(delta.data)["items"]}
    assert newest.id in ids
    asked = sorted({publisher.snapshot.articles[id_].source for id_ in ids} & {a.source for a in placed})
    assert len(asked) == 11  # the archive page's 5, the delta page's 5 and the article: all placed
    first = [r.getMessage() for r in caplog.records if r.name == "feedsvc.building.background" and "placed files" in r.getMessage()][0]
    assert first == f"reading 11 placed files asked for first: {' '.join(asked[:3])}"  # before any other
    background.join(30)
    finished(app)
    assert json.loads(worker.get("/healthz").data)["left_to_read"] == 0 and wants(tmp_path / "state.sqlite3") == 0
    # The same bytes as once everything is read (the builder's own pages).
    assert archive.data == variant(publisher, "", "rss", page=page).body
    assert article.data == publisher.snapshot.resources[f"articles/{middle.id}"].body
    assert delta.data == variant(publisher, "", "json", page=10, since=since).body
    again = worker.get(paths[0], headers={"Accept-Encoding": "identity"})
    assert again.data == archive.data and again.headers["ETag"] == archive.headers["ETag"]


def test_an_id_no_article_has_is_a_404_once_the_builder_answers(held):
    app, worker, start = held
    background = start()
    assert worker.get("/articles/no-such-article").status_code == 404  # not a 503: the builder said there is none
    background.join(30)
    finished(app)


def test_an_article_in_a_sub_folder_is_made_on_demand_too(tmp_path, monkeypatch):
    # Its ID is its path, a "/" in it: its page was a 404 until the background committed it (found in review).
    folder = many(tmp_path / "articles", 30)
    for i in range(30):
        os.makedirs(folder / f"d{i % 3}", exist_ok=True)
        os.replace(folder / f"{i:04d}-story.{'md' if i % 3 == 1 else 'txt'}", folder / f"d{i % 3}" / f"{i:04d}-story.{'md' if i % 3 == 1 else 'txt'}")
    app, worker, start = next(held := holding(tmp_path, monkeypatch, folder))
    publisher = app.extensions["feedsvc"]
    placed = [a for a in publisher.snapshot.listings[""].items if is_placed(a)]
    assert placed and all("/" in a.id for a in placed)
    background = start()
    reply = worker.get(f"/articles/{placed[-1].id}", headers={"Accept-Encoding": "identity"})
    assert reply.status_code == 200, reply.data
    background.join(30)
    finished(app)
    assert reply.data == publisher.snapshot.resources[f"articles/{placed[-1].id}"].body
    held.close()


def test_with_no_builder_reading_a_request_is_a_503_after_its_bound(held, tmp_path, monkeypatch):
    app, worker, start = held
    monkeypatch.setattr(feedsvc.serving.variants, "WAIT_SECONDS", 0.5)
    oldest = app.extensions["feedsvc"].snapshot.listings[""].items[-1]
    reply = worker.get(f"/articles/{oldest.id}")
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
    assert wants(tmp_path / "state.sqlite3") == 1  # the want stays for the builder, or goes after a minute
    start(0).join(30)
    finished(app)
    assert worker.get(f"/articles/{oldest.id}").status_code == 200 and wants(tmp_path / "state.sqlite3") == 0


# --- real server processes -----------------------------------------------------------------------

def story_folder(folder: Path, n: int) -> Path:
    """n short articles in two categories, the oldest last by name (so the background reads them last)."""
    for i in range(n):
        path = write(folder, f"{i:05d}.txt", f"{('economy', 'sport')[i % 2]}\nStory {i}\nThe story numbered {i}, in a few words.\n")
        os.utime(path, (1_700_000_000 - 600 * i,) * 2)
    return folder


def healthz(server: Server) -> dict:
    return json.loads(fetch(server.base, "/healthz").body)


@pytest.mark.e2e
def test_a_cold_start_answers_archive_and_article_pages_on_demand_and_a_stopped_builder_only_delays(tmp_path):
    folder = story_folder(tmp_path / "articles", 2400)  # past scan.PLACE_FROM: placed first, read in the background
    server = Server(folder, tmp_path / "feedsvc.sqlite3", workers=2, env={"FEEDSVC_FEED_MAX_ITEMS": "10"})
    identity = {"Accept-Encoding": "identity"}
    try:
        builder = healthz(server)["builder"]["pid"]  # the first build is in: the feeds answer
        os.kill(builder, signal.SIGSTOP)  # the background reading stops where it is
        try:
            assert healthz(server)["left_to_read"] > 1000  # all but the 1,000 newest (scan.FIRST_GUESS), read with the placement
            oldest, older = "02399", "02398"
            answers = []

            def wait_for_it() -> None:
                started = time.monotonic()
                answers.append((fetch(server.base, f"/articles/{oldest}", headers=identity), time.monotonic() - started))

            waiter = threading.Thread(target=wait_for_it)
            waiter.start()
            time.sleep(0.3)
            # Meanwhile the feeds are answered as ever, by either worker: the wait holds one request thread, no more.
            assert [fetch(server.base, "/feed.rss").status for _ in range(4)] == [200] * 4 and waiter.is_alive()
            waiter.join(30)
            stopped, waited = answers[0]
            assert stopped.status == 503 and stopped.header("retry-after") == "1"
            assert feedsvc.serving.variants.WAIT_SECONDS - 0.1 < waited < 20  # bounded, not hung
            check = run_feedsvc("check", str(folder))  # reads the folder itself: complete meanwhile
            assert check.returncode == 0 and f"{folder}: 2400 articles publishable now, 0 files skipped" in check.stdout
            replies = {}

            def ask(path: str) -> None:
                reply = fetch(server.base, path, headers=identity)
                # The builder, resumed on a loaded machine (CI's clean clone), may take past WAIT_SECONDS to read the
                # article: its 503 says when to ask again, and a reader does. A delay, never a failure.
                for _ in range(4):
                    if reply.status != 503 or reply.header("retry-after") is None:
                        break
                    time.sleep(int(reply.header("retry-after")))
                    reply = fetch(server.base, path, headers=identity)
                replies[path] = reply

            paths = ["/feed.rss?page=2", "/feed.atom?page=3", f"/articles/{older}", f"/articles/{oldest}"]  # page 2: the oldest
            askers = [threading.Thread(target=ask, args=(path,)) for path in paths]
            for asker in askers:
                asker.start()
            time.sleep(0.2)  # they have asked
        finally:
            os.kill(builder, signal.SIGCONT)
        for asker in askers:
            asker.join(30)
        assert {path: reply.status for path, reply in replies.items()} == {path: 200 for path in paths}
        assert feedparser.parse(replies["/feed.rss?page=2"].body).entries[-1].link.endswith(f"/articles/{oldest}")
        deadline = time.monotonic() + 120
        while healthz(server)["left_to_read"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert healthz(server)["left_to_read"] == 0
        assert wants(server.state) == 0  # every want answered
        for path in paths:  # made on demand: the bytes the finished build gives
            later = fetch(server.base, path, headers=identity)
            assert later.status == 200 and later.body == replies[path].body, path
            assert later.header("etag") == replies[path].header("etag"), path
        assert run_feedsvc("check", str(folder)).stdout == check.stdout
    finally:
        server.stop()

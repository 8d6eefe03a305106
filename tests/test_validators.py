"""Last-Modified is when a resource's bytes last changed: recorded once, the same in every worker and after
restarts, never later than now, never backwards, and a second later for every new ETag (issue 11 item 10)."""
from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import feedparser
import pytest

from feedsvc.config import load_settings
from feedsvc.building.site import FeedOptions, Publisher
from feedsvc.building.state import StateStore
from tests.conftest import FIXED_NOW, variant, write

FIRST = FIXED_NOW - timedelta(seconds=1)  # bytes never served before are dated a second back
STORY = "News\n{title}\nA paragraph about {title}.\n"
FEEDS = ["feed.rss", "feed.atom", "feed.json", "category/news/feed.rss", "category/news/feed.atom", "feeds.opml", ""]


class Clock:
    """A clock the test moves; waiting on it (the publisher's sleep) moves it too."""

    def __init__(self, now: datetime = FIXED_NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def publisher(folder, state, clock: Clock) -> Publisher:
    settings = load_settings({"ARTICLES_DIR": str(folder), "STATE_PATH": str(state), "SETTLE_MS": 0}, environ={})
    return Publisher(FeedOptions.from_settings(settings), StateStore(state), clock=clock, sleep=clock.sleep)


@pytest.fixture
def folder(articles_dir):
    for n in range(3):
        write(articles_dir, f"a{n}.txt", STORY.format(title=f"Story {n}"))
    return articles_dir


def validators(pub, path):
    res = pub.snapshot.resources[path]
    return res.etag, res.last_modified


def test_two_publishers_sharing_a_store_serve_identical_bytes_etags_and_times(folder, tmp_path):
    a = publisher(folder, tmp_path / "s.db", Clock())
    a.refresh()
    b = publisher(folder, tmp_path / "s.db", Clock(FIXED_NOW + timedelta(minutes=7, seconds=13)))
    b.refresh()
    for path in set(a.snapshot.resources) | {"style.css", "feed.xsl"}:
        ra, rb = a.snapshot.resources[path], b.snapshot.resources[path]
        assert (ra.body, ra.etag, ra.http_date) == (rb.body, rb.etag, rb.http_date), path
    write(folder, "late.txt", STORY.format(title="Late"))
    b.clock.now += timedelta(minutes=1)
    b.refresh()  # one worker sees the change first and records it ...
    a.clock.now = b.clock.now + timedelta(seconds=40)
    a.refresh()  # ... the other, later, takes its time and so its bytes
    for path in FEEDS:
        assert validators(a, path) == validators(b, path), path
    assert a.snapshot.resources["feed.atom"].body == b.snapshot.resources["feed.atom"].body


def test_a_restart_serves_the_same_validators(folder, tmp_path):
    first = publisher(folder, tmp_path / "s.db", Clock())
    first.refresh()
    again = publisher(folder, tmp_path / "s.db", Clock(FIXED_NOW + timedelta(days=2)))
    again.refresh()
    for path in FEEDS + ["style.css", "feed.xsl", "articles/a1"]:
        assert validators(first, path) == validators(again, path), path


@pytest.mark.parametrize("change", ["backdated addition", "deletion", "edit", "addition in the same second"])
def test_every_change_of_the_bytes_moves_last_modified_a_second_or_more_and_never_past_now(folder, tmp_path, change):
    clock = Clock()
    pub = publisher(folder, tmp_path / "s.db", clock)
    pub.refresh()
    before = {path: validators(pub, path) for path in FEEDS}
    if change != "addition in the same second":
        clock.now += timedelta(minutes=5)
    if change == "backdated addition":
        write(folder, "old.md", "---\ntitle: From the archive\ncategory: News\ndate: 2019-05-01\n---\nOld.\n")
    elif change == "deletion":
        (folder / "a0.txt").unlink()
    elif change == "edit":
        write(folder, "a1.txt", STORY.format(title="Story 1, corrected"))
    else:
        write(folder, "same-second.txt", STORY.format(title="Same second"))
    pub.refresh()
    for path in FEEDS:
        etag, modified = validators(pub, path)
        if path in ("feeds.opml", ""):  # the list of feeds, the home page: only if their bytes moved
            assert (etag == before[path][0]) == (modified == before[path][1]), path
            continue
        assert etag != before[path][0], path
        assert modified >= before[path][1] + timedelta(seconds=1), path  # If-Modified-Since has whole seconds
        assert modified <= clock(), path  # served only once its time has come
    atom = feedparser.parse(pub.snapshot.resources["feed.atom"].body).feed
    assert datetime.fromisoformat(atom.updated) == pub.snapshot.resources["feed.atom"].last_modified


def test_unchanged_bytes_keep_their_time_while_changed_ones_move(folder, tmp_path):
    clock = Clock()
    pub = publisher(folder, tmp_path / "s.db", clock)
    write(folder, "sport.txt", "Sport\nCup final\nA story.\n")
    pub.refresh()
    sport = validators(pub, "category/sport/feed.rss")
    clock.now += timedelta(hours=1)
    write(folder, "more.txt", STORY.format(title="More news"))
    pub.refresh()
    assert validators(pub, "category/sport/feed.rss") == sport
    assert validators(pub, "category/news/feed.rss")[1] == clock()


def test_a_future_updated_date_never_dates_a_feed_or_an_item_in_the_future(folder, tmp_path):
    clock = Clock()
    write(folder, "typo.md", "---\ntitle: Typo\ncategory: News\ndate: 2026-11-01\nupdated: 2099-01-01\n---\nText.\n")
    pub = publisher(folder, tmp_path / "s.db", clock)
    pub.refresh()
    for path in FEEDS:
        assert pub.snapshot.resources[path].last_modified <= clock(), path
    assert pub.snapshot.articles["typo"].updated == clock()  # clamped to when its content was recorded
    rss = feedparser.parse(pub.snapshot.resources["feed.rss"].body)
    assert parsedate_to_datetime(rss.feed.updated) <= clock()
    later = publisher(folder, tmp_path / "s.db", Clock(FIXED_NOW + timedelta(days=30)))
    later.refresh()
    assert later.snapshot.articles["typo"].updated == FIXED_NOW  # and stays so, in every worker
    assert validators(later, "feed.atom") == validators(pub, "feed.atom")


def test_static_files_have_a_real_time_that_stays(folder, tmp_path):
    pub = publisher(folder, tmp_path / "s.db", Clock())
    pub.refresh()
    for name in ("style.css", "feed.xsl"):
        assert pub.snapshot.resources[name].last_modified == FIRST
    pub.clock.now += timedelta(days=1)
    write(folder, "more.txt", STORY.format(title="More"))
    pub.refresh()
    assert all(pub.snapshot.resources[n].last_modified == FIRST for n in ("style.css", "feed.xsl"))


def test_archive_pages_and_deltas_move_when_their_listing_changes(folder, tmp_path):
    clock = Clock()
    settings = load_settings({"ARTICLES_DIR": str(folder), "STATE_PATH": str(tmp_path / "s.db"), "SETTLE_MS": 0,
                              "FEED_MAX_ITEMS": 2}, environ={})
    pub = Publisher(FeedOptions.from_settings(settings), StateStore(settings["STATE_PATH"]), clock=clock, sleep=clock.sleep)
    for n in range(3, 6):
        write(folder, f"a{n}.txt", STORY.format(title=f"Story {n}"))
    pub.refresh()
    since = FIXED_NOW - timedelta(days=1)
    page2, delta = variant(pub, "", "rss", page=2), variant(pub, "", "atom", since=since)
    clock.now += timedelta(minutes=3)
    oldest = min(pub.snapshot.articles.values(), key=lambda a: a.published)
    (folder / oldest.source).unlink()  # it was on the archive page
    pub.refresh()
    page2_after, delta_after = variant(pub, "", "rss", page=2), variant(pub, "", "atom", since=since)
    assert page2_after.etag != page2.etag and page2_after.last_modified == clock()
    assert delta_after.etag != delta.etag and delta_after.last_modified == clock() > delta.last_modified
    assert variant(pub, "", "rss", page=2).last_modified == page2_after.last_modified  # stable between changes


@pytest.mark.e2e
def test_a_newsboat_like_reader_sees_every_change_of_a_served_feed(articles_dir, tmp_path):
    """libcurl readers send If-None-Match and If-Modified-Since, and drop a 200 whose Last-Modified is not newer."""
    import time

    from tests.http_helpers import Server, fetch

    for n in range(3):
        write(articles_dir, f"a{n}.txt", STORY.format(title=f"Story {n}"))
    server = Server(articles_dir, tmp_path / "state.sqlite3", workers=2)

    def poll(held: dict) -> tuple:
        """Conditional GETs as newsboat makes them, until it takes a 200 (or 10 s pass).

        libcurl's time condition drops a 200 whose Last-Modified is not newer than the one held: that is
        what a worker not yet refreshed answers, and the reader asks again at its next poll.
        """
        deadline = time.monotonic() + 10
        while True:
            reply = fetch(server.base, "/feed.rss", headers={"If-None-Match": held["etag"], "If-Modified-Since": held["lm"]})
            modified = reply.header("Last-Modified") or held["lm"]  # a 304 need not repeat it
            assert parsedate_to_datetime(modified) <= parsedate_to_datetime(reply.header("Date"))  # RFC 9110 §8.8.2.1
            taken = reply.status == 200 and parsedate_to_datetime(modified) > parsedate_to_datetime(held["lm"])
            if taken or time.monotonic() > deadline:
                return reply
            time.sleep(0.1)

    def accept(reply, held: dict) -> None:
        assert reply.status == 200, "the change never reached the reader"
        assert parsedate_to_datetime(reply.header("Last-Modified")) > parsedate_to_datetime(held["lm"])
        held.update(etag=reply.header("ETag"), lm=reply.header("Last-Modified"))

    try:
        first = fetch(server.base, "/feed.rss")
        held = {"etag": first.header("ETag"), "lm": first.header("Last-Modified")}
        assert parsedate_to_datetime(held["lm"]) <= parsedate_to_datetime(first.header("Date"))
        assert fetch(server.base, "/feed.rss", headers={"If-None-Match": held["etag"], "If-Modified-Since": held["lm"]}).status == 304
        old_lm = held["lm"]
        write(articles_dir, "old.md", "---\ntitle: Backdated story\ncategory: News\ndate: 2019-05-01\n---\nOld.\n")
        reply = poll(held)
        accept(reply, held)
        assert b"Backdated story" in reply.body
        assert fetch(server.base, "/feed.rss", headers={"If-Modified-Since": old_lm}).status == 200  # IMS-only readers too
        (articles_dir / "a1.txt").unlink()
        reply = poll(held)
        accept(reply, held)
        assert b"Story 1" not in reply.body
        write(articles_dir, "typo.md", "---\ntitle: Typo\ncategory: News\ndate: 2026-01-01\nupdated: 2099-01-01\n---\nText.\n")
        reply = poll(held)
        accept(reply, held)
        assert b"2099" not in reply.body
        # Every worker comes to answer with the same validators; static files have a real, stable time.
        deadline = time.monotonic() + 10
        while True:
            seen = {(r.header("ETag"), r.header("Last-Modified")) for r in (fetch(server.base, "/feed.rss") for _ in range(8))}
            if seen == {(held["etag"], held["lm"])} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert seen == {(held["etag"], held["lm"])}
        static = {fetch(server.base, "/style.css").header("Last-Modified") for _ in range(4)}
        assert len(static) == 1 and "1970" not in static.pop()
    finally:
        server.stop()


def test_a_worker_takes_the_time_another_worker_recorded_later_for_the_same_bytes(folder, tmp_path):
    clock = Clock()
    a = publisher(folder, tmp_path / "s.db", clock)
    a.refresh()
    ours = a.snapshot.resources["feed.atom"]
    digest = a.renderer._cache["feed.atom"][2]
    # Another worker, behind on the folder, recorded other bytes and then caught up with these.
    store = StateStore(tmp_path / "s.db")
    store.record_versions({"feed.atom": "older-view"}, FIXED_NOW + timedelta(seconds=30))
    store.record_versions({"feed.atom": digest}, FIXED_NOW + timedelta(seconds=31))
    clock.now += timedelta(minutes=1)
    a.refresh()  # the periodic full walk: nothing changed in the folder
    healed = a.snapshot.resources["feed.atom"]
    assert healed.last_modified == FIXED_NOW + timedelta(seconds=31) > ours.last_modified
    assert b"<updated>2026-11-29T12:00:31+00:00</updated>" in healed.body
    assert a.snapshot.resources["style.css"].last_modified == FIRST
    # The same for a listing's time, which dates its archive pages and deltas.
    store.record_versions({"listing:": "older-view"}, FIXED_NOW + timedelta(seconds=40))
    store.record_versions({"listing:": a.versions.digests[""]}, FIXED_NOW + timedelta(seconds=41))
    a.refresh()
    assert variant(a, "", "atom", since=FIXED_NOW - timedelta(days=9)).last_modified == FIXED_NOW + timedelta(seconds=41)

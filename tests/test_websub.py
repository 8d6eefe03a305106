"""WebSub: feeds advertise the hub and themselves; a refresh that changes feeds pings the hub."""
from __future__ import annotations

import heapq
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from feedsvc.serving.websub import AGAIN_AFTER, SENDERS, HubNotifier, HubRefused, Unsent, post_publish
from tests.conftest import write
from tests.http_helpers import free_port


class Hub:
    """A WebSub hub on loopback that records publish pings; it answers each once its gate is open."""

    def __init__(self):
        self.pings: list[dict] = []
        self.gate = threading.Event()
        self.gate.set()
        self.received = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                hub.pings.append(parse_qs(self.rfile.read(length).decode()))
                hub.received.set()
                hub.gate.wait(10)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hub():
    h = Hub()
    yield h
    h.close()


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_websub_thread_outlives_a_test():
    yield
    assert [t.name for t in threading.enumerate() if t.name == "websub"] == []


def notifier_of(app) -> HubNotifier:
    return app.extensions["feedsvc.websub"]


def test_every_feed_advertises_the_hub_and_itself(make_app, articles_dir, hub):
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    client = make_app(articles_dir, WEBSUB_HUB=hub.url).test_client()
    for path in ("/feed.atom", "/category/news/feed.atom", "/feed.rss"):
        res = client.get(path)
        body = res.get_data(as_text=True)
        assert f'href="{hub.url}" rel="hub"' in body and 'rel="self"' in body, path
        assert res.headers["Link"] == f'<{hub.url}>; rel="hub", <http://127.0.0.1:8000{path}>; rel="self"'
    doc = json.loads(client.get("/feed.json").data)
    assert doc["hubs"] == [{"type": "WebSub", "url": hub.url}]


def test_only_the_feeds_the_hub_hears_of_advertise_it_not_their_archive_pages_or_deltas(make_app, articles_dir, hub):
    """WebSub's topic is the self URL, and the hub is told only of the first pages: a page or delta that advertised it
    would have subscribers that never hear of a change (https://www.w3.org/TR/websub/#publishing)."""
    for i in range(5):
        write(articles_dir, f"{i}.txt", f"News\nTitle {i}\nBody {i}.\n")
    client = make_app(articles_dir, WEBSUB_HUB=hub.url, FEED_MAX_ITEMS=2).test_client()
    assert "Link" in client.get("/feed.atom").headers
    for path in ("/feed.atom?page=2", "/feed.atom?page=3", "/feed.rss?since=2000-01-01T00:00:00Z",
                 "/category/news/feed.atom?page=2", "/feed.json?page=2"):
        res = client.get(path)
        assert res.status_code == 200 and "Link" not in res.headers, path
        body = res.get_data(as_text=True)
        assert hub.url not in body and ('rel="self"' in body or '"feed_url"' in body), path


def test_a_refresh_that_changes_feeds_pings_the_hub_for_each(make_app, articles_dir, hub):
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir, WEBSUB_HUB=hub.url)
    assert notifier_of(app).drain(timeout=10)
    assert len(hub.pings) == 6  # the first build: site-wide and News, three formats
    hub.pings.clear()
    write(articles_dir, "tech.txt", "Tech\nA tech story\nBody.\n")
    app.extensions["feedsvc"].refresh()
    assert notifier_of(app).drain(timeout=10)
    urls = sorted(p["hub.url"][0] for p in hub.pings)
    assert all(p["hub.mode"] == ["publish"] for p in hub.pings)
    assert urls == sorted(f"http://127.0.0.1:8000/{path}" for path in (
        "feed.rss", "feed.atom", "feed.json", "category/tech/feed.rss", "category/tech/feed.atom", "category/tech/feed.json"))
    hub.pings.clear()
    app.extensions["feedsvc"].refresh()  # nothing changed: no ping
    assert notifier_of(app).drain(timeout=10)
    assert hub.pings == [] and notifier_of(app).sent == 12


def test_a_refresh_tells_the_hub_only_of_feeds_whose_bytes_changed(make_app, articles_dir):
    """An edit of a body public feeds leave out (PUBLIC_CONTENT="summary") changes the Atom and JSON feeds (their item's
    updated date) but no RSS feed's bytes or ETag: each RSS feed rendered again was told to the hub all the same."""
    article = "---\ntitle: T\ncategory: News\ntags: [energy]\nauthor: Ann\nsummary: Short.\ndate: 2026-01-01T00:00:00Z\n---\n{}\n"
    write(articles_dir, "a.md", article.format("The body."))
    app = make_app(articles_dir, PUBLIC_CONTENT="summary")
    told: list[str] = []
    app.extensions["feedsvc"].listeners.append(told.extend)  # what the WebSub notifier is handed, without a hub
    client = app.test_client()
    feeds = [f"{listing}feed.{fmt}" for listing in ("", "category/news/", "tag/energy/", "author/ann/")
             for fmt in ("rss", "atom", "json")]
    before = {path: client.get("/" + path).headers["ETag"] for path in feeds}
    write(articles_dir, "a.md", article.format("The body, corrected at length."))
    app.extensions["feedsvc"].refresh()
    changed = {path for path in feeds if client.get("/" + path).headers["ETag"] != before[path]}
    assert changed == {path for path in feeds if not path.endswith(".rss")}  # the case: RSS carries no updated date
    assert sorted(told) == sorted(f"http://127.0.0.1:8000/{path}" for path in changed)


def test_a_restart_tells_the_hub_only_of_feeds_whose_bytes_changed_meanwhile(make_app, articles_dir, hub):
    # Every restart pinged every feed in every format (each deploy made the hub and its subscribers fetch them all):
    # the first build of a process had nothing before it to compare with, and now has the store's.
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    write(articles_dir, "b.txt", "Sport\nA match\nBody.\n")
    first = make_app(articles_dir, WEBSUB_HUB=hub.url)
    assert notifier_of(first).drain(timeout=10) and len(hub.pings) == 9
    notifier_of(first).close()
    hub.pings.clear()
    again = make_app(articles_dir, WEBSUB_HUB=hub.url)  # a restart, nothing changed
    assert notifier_of(again).drain(timeout=10) and hub.pings == []
    notifier_of(again).close()
    write(articles_dir, "c.txt", "Sport\nAnother match\nBody.\n")  # changed while no process ran
    third = make_app(articles_dir, WEBSUB_HUB=hub.url)
    assert notifier_of(third).drain(timeout=10)
    assert sorted(p["hub.url"][0] for p in hub.pings) == sorted(f"http://127.0.0.1:8000/{path}" for path in (
        "feed.rss", "feed.atom", "feed.json", "category/sport/feed.rss", "category/sport/feed.atom", "category/sport/feed.json"))


def test_a_refresh_returns_while_the_hub_has_not_answered(make_app, articles_dir, hub):
    hub.gate.clear()  # the hub takes every ping and answers none until the test says so
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir, WEBSUB_HUB=hub.url)
    pub = app.extensions["feedsvc"]
    assert hub.received.wait(10)  # the first build's first ping is on the wire
    write(articles_dir, "b.txt", "News\nAnother\nBody.\n")
    assert pub.refresh()  # had it waited for the hub, it would still be waiting: the gate opens only below
    assert "b" in pub.snapshot.articles
    assert notifier_of(app).sent == 0
    hub.gate.set()
    assert notifier_of(app).drain(timeout=10)
    # The first build's six feeds, each once: the second refresh changed them all again; those still queued are sent
    # once, those on the wire (up to SENDERS) again (the hub must fetch them anew).
    assert {p["hub.url"][0].rsplit("/", 1)[-1] for p in hub.pings} == {"feed.rss", "feed.atom", "feed.json"}
    assert len({p["hub.url"][0] for p in hub.pings}) == 6 and 7 <= len(hub.pings) == notifier_of(app).sent <= 6 + SENDERS


def test_a_hub_that_is_down_costs_a_refresh_nothing(make_app, articles_dir):
    down = f"http://127.0.0.1:{free_port()}/hub"  # nothing listens there
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir, WEBSUB_HUB=down)
    pub = app.extensions["feedsvc"]
    write(articles_dir, "b.txt", "News\nAnother\nBody.\n")
    assert pub.refresh()
    assert "b" in pub.snapshot.articles
    assert notifier_of(app).drain(timeout=10)  # every first ping failed; retries are planned for later
    assert notifier_of(app).sent == 0


def flaky(failures: int, calls: list):
    """A post that the hub refuses `failures` times, recording when each call came (by the fake clock)."""

    def post(hub, url, timeout):
        calls.append(url)
        if len(calls) <= failures:
            raise OSError("hub down")

    return post


def test_a_failed_ping_is_retried_after_one_then_two_seconds():
    clock, calls = Clock(), []
    notifier = HubNotifier("http://127.0.0.1:9/hub", first_delay=1.0, post=flaky(2, calls), clock=clock, background=False)
    notifier.notify(["http://127.0.0.1:8000/feed.rss"])
    assert notifier.send_due() == 1.0 and len(calls) == 1  # refused; the retry is due in one second
    clock.now += 0.999
    assert notifier.send_due() == pytest.approx(0.001) and len(calls) == 1
    clock.now += 0.001
    assert notifier.send_due() == 2.0 and len(calls) == 2  # refused again: twice the delay
    clock.now += 2.0
    assert notifier.send_due() is None and len(calls) == 3 and notifier.sent == 1


def test_a_hub_that_keeps_refusing_is_tried_again_hourly_once_the_attempts_are_spent():
    """Given up after the last attempt, a ping waited for the next start (weeks, for a server that runs on)."""
    clock, calls = Clock(), []
    notifier = HubNotifier("http://127.0.0.1:9/hub", attempts=3, post=flaky(4, calls), clock=clock, background=False)
    notifier.notify(["http://127.0.0.1:8000/feed.rss"])
    assert notifier.send_due() == 1.0
    clock.now += 1.0
    assert notifier.send_due() == 2.0
    clock.now += 2.0
    assert notifier.send_due() == AGAIN_AFTER and len(calls) == 3 and notifier.given_up == 1  # the attempts spent
    clock.now += AGAIN_AFTER
    assert notifier.send_due() == AGAIN_AFTER and len(calls) == 4  # refused again: an hour more
    clock.now += AGAIN_AFTER
    assert notifier.send_due() is None and len(calls) == 5 and notifier.sent == 1 and notifier.given_up == 1


@pytest.mark.parametrize("status, refused", [(404, True), (400, True), (410, True), (408, False), (429, False), (500, False)])
def test_a_hub_answering_a_4xx_refuses_for_good_and_a_408_429_or_5xx_for_now(status, refused):
    """urllib raises its HTTPError for every 4xx, which went past the refusal for good: a real hub's 404 was retried
    hourly for ever (the test of the refusal faked its post)."""
    hub = MovedHub()
    try:
        target = hub.server.RequestHandlerClass

        def do_post(handler):
            handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        target.do_POST = do_post
        with pytest.raises(OSError) as info:
            post_publish(hub.url, "http://127.0.0.1:8000/feed.rss", 5)
        assert isinstance(info.value, HubRefused) is refused
    finally:
        hub.close()


def test_a_ping_the_hub_refuses_for_good_is_not_tried_again_nor_kept(tmp_path):
    """A 4xx (an unknown topic, a feed of an old SITE_URL) is never taken: kept and retried, it was sent for ever."""
    hub, refused = Hub(), []

    def post(hub_url, url, timeout):
        refused.append(url)
        raise HubRefused("hub answered 404")

    notifier = HubNotifier(hub.url, post=post, clock=Clock(), background=False)
    try:
        notifier.keep_in(Unsent(tmp_path / "state.sqlite3"))
        notifier.notify(["http://127.0.0.1:8000/old/feed.rss"])
        assert notifier.send_due() is None and refused == ["http://127.0.0.1:8000/old/feed.rss"] and notifier.given_up == 1
        assert Unsent(tmp_path / "state.sqlite3").all() == []
    finally:
        notifier.close()
        hub.close()


def test_a_newer_change_to_a_feed_waiting_for_a_retry_is_sent_at_once_and_only_once():
    clock, calls = Clock(), []
    notifier = HubNotifier("http://127.0.0.1:9/hub", post=flaky(1, calls), clock=clock, background=False)
    notifier.notify(["http://127.0.0.1:8000/feed.rss"])
    assert notifier.send_due() == 1.0
    notifier.notify(["http://127.0.0.1:8000/feed.rss", "http://127.0.0.1:8000/feed.atom"])  # already queued: once
    assert notifier.send_due() == 1.0 and calls == ["http://127.0.0.1:8000/feed.rss", "http://127.0.0.1:8000/feed.atom"]
    clock.now += 1.0
    assert notifier.send_due() is None and notifier.sent == 2


def test_notify_returns_while_a_ping_is_on_the_wire_and_close_ends_the_thread():
    entered, release = threading.Event(), threading.Event()

    def slow_hub(hub, url, timeout):
        entered.set()
        release.wait(10)

    notifier = HubNotifier("http://127.0.0.1:9/hub", post=slow_hub)
    notifier.notify([f"http://127.0.0.1:8000/{i}" for i in range(100)])
    assert entered.wait(10)  # the first ping is being sent, and notify() has already returned
    notifier.notify(["http://127.0.0.1:8000/one-more"])  # nor does a second notify wait
    release.set()
    notifier.close()
    assert len(notifier._threads) == SENDERS and not any(thread.is_alive() for thread in notifier._threads)
    notifier.notify(["http://127.0.0.1:8000/after-close"])  # ignored: nothing starts again
    assert [t for t in threading.enumerate() if t.name == "websub"] == []


class MovedHub(Hub):
    """A hub that answers a POST to /old-<status> with that redirect to /hub, where it takes the ping."""

    def __init__(self):
        super().__init__()
        hub, taken = self, self.server.RequestHandlerClass.do_POST

        def do_post(handler):
            if handler.path.startswith("/old-"):
                handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                hub.redirected = True
                handler.send_response(int(handler.path[5:]))
                handler.send_header("Location", "/hub")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            taken(handler)

        def do_get(handler):  # urllib's own redirect of a POST: the form is lost
            hub.pings.append({"GET": [handler.path]})
            handler.send_response(200)
            handler.end_headers()

        self.server.RequestHandlerClass.do_POST = do_post
        self.server.RequestHandlerClass.do_GET = do_get
        self.redirected = False


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_hub_that_redirects_gets_the_ping_at_its_new_address(status):
    """urllib followed a 301, 302 or 303 with a GET without the form: the hub never heard of the change, and the 200 of
    the GET counted the ping as sent."""
    hub = MovedHub()
    try:
        post_publish(hub.url.replace("/hub", f"/old-{status}"), "http://127.0.0.1:8000/feed.rss", 5)
        assert hub.redirected and hub.pings == [{"hub.mode": ["publish"], "hub.url": ["http://127.0.0.1:8000/feed.rss"]}]
    finally:
        hub.close()


def test_a_303_says_the_hub_took_the_ping():
    hub = MovedHub()
    try:
        post_publish(hub.url.replace("/hub", "/old-303"), "http://127.0.0.1:8000/feed.rss", 5)  # no error, no GET
        assert hub.redirected and hub.pings == []
    finally:
        hub.close()


def test_pings_the_hub_did_not_take_are_kept_for_the_next_process(tmp_path, hub):
    """A stop during the retries, or a hub down past the last attempt, lost the change for good: a restart compares its
    first build with the bytes served before, which were already the new ones."""
    calls = []
    first = HubNotifier(hub.url, post=flaky(99, calls), clock=Clock(), background=False)
    first.notify(["http://127.0.0.1:8000/feed.rss"])  # queued before the store is known: kept too
    first.keep_in(Unsent(tmp_path / "state.sqlite3"))
    first.notify(["http://127.0.0.1:8000/feed.atom"])
    assert first.send_due() == 1.0 and len(calls) == 2  # both refused
    first.close()  # a stop, the retries still planned
    assert Unsent(tmp_path / "state.sqlite3").all() == ["http://127.0.0.1:8000/feed.atom", "http://127.0.0.1:8000/feed.rss"]
    again = HubNotifier(hub.url)  # the next process, the hub back
    try:
        again.keep_in(Unsent(tmp_path / "state.sqlite3"))
        assert again.drain(timeout=10) and sorted(p["hub.url"][0] for p in hub.pings) == [
            "http://127.0.0.1:8000/feed.atom", "http://127.0.0.1:8000/feed.rss"]
        assert Unsent(tmp_path / "state.sqlite3").all() == []  # taken: nothing left for the one after
    finally:
        again.close()


def test_a_slow_hub_takes_several_pings_at_once():
    """One ping at a time, each waiting for a hub that answers in seconds, took minutes over a change's hundred feeds."""
    on_wire, most, lock = [0], [0], threading.Lock()

    def slow(hub, url, timeout):
        with lock:
            on_wire[0] += 1
            most[0] = max(most[0], on_wire[0])
        threading.Event().wait(0.2)
        with lock:
            on_wire[0] -= 1

    notifier = HubNotifier("http://127.0.0.1:9/hub", post=slow)
    try:
        notifier.notify([f"http://127.0.0.1:8000/{i}/feed.rss" for i in range(12)])
        assert notifier.drain(timeout=10) and notifier.sent == 12 and most[0] == SENDERS
    finally:
        notifier.close()


def test_feedsvc_build_keeps_what_the_hub_did_not_take_for_the_next_build(tmp_path, articles_dir):
    from click.testing import CliRunner

    from feedsvc.cli import main

    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    state = tmp_path / "state.sqlite3"

    def build(hub_url: str) -> str:
        env = {"FEEDSVC_STATE_PATH": str(state), "FEEDSVC_CONFIG": "", "FEEDSVC_SETTLE_MS": "0", "FEEDSVC_WEBSUB_HUB": hub_url}
        result = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "out"), "--articles", str(articles_dir)], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    hub = Hub()
    down = hub.url
    hub.close()  # nothing listens there now
    said = build(down)
    assert "did not take 6 of 6 feeds" in said and "the next build, or `serve`, tells it" in said
    assert len(Unsent(state).all()) == 6
    hub = Hub()
    try:
        build(hub.url)  # nothing changed: only what the first build left unsent
        assert sorted(p["hub.url"][0].rsplit("/", 1)[-1] for p in hub.pings) == ["feed.atom"] * 2 + ["feed.json"] * 2 + ["feed.rss"] * 2
        assert Unsent(state).all() == []
    finally:
        hub.close()


_BUILDER = """
import json, sys
from feedsvc import for_building
from feedsvc.building.builder import run_builder
from feedsvc.building.lock import BuildLock, lock_path
app = for_building(json.loads(sys.argv[1]))
lock = BuildLock(lock_path(app.extensions["feedsvc.state_path"]))
lock.acquire()
app.extensions["feedsvc.lock"] = lock
run_builder(app)
assert app.extensions["feedsvc.websub"].drain(timeout=20)
print("drained", flush=True)
"""


def test_the_builder_sends_what_a_process_before_it_left_unsent(tmp_path, articles_dir, hub):
    """The dedicated builder (serve, gunicorn) takes the unsent pings over after its first build: a stop during the
    retries, a takeover, a build whose hub was down."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    state = tmp_path / "state.sqlite3"
    left = "http://127.0.0.1:8000/category/gone-quiet/feed.atom"
    Unsent(state).add([left])
    settings = {"ARTICLES_DIR": str(articles_dir), "STATE_PATH": str(state), "SETTLE_MS": 0, "WEBSUB_HUB": hub.url,
                "WATCH": False}
    done = subprocess.run([sys.executable, "-c", _BUILDER, json.dumps(settings)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_CONFIG": ""})
    assert done.returncode == 0 and "drained" in done.stdout, done.stderr[-2000:]
    assert left in [p["hub.url"][0] for p in hub.pings] and Unsent(state).all() == []


def test_a_ping_taken_while_another_sender_waits_to_keep_it_is_not_left_kept(tmp_path):
    """One sender took the queued URL to keep it and waited for the write lock (a commit held it) while another sent
    the same URL and removed it first: the hub had it, yet it stayed kept and was sent again at the next start."""
    import sqlite3
    import time

    path = tmp_path / "state.sqlite3"
    keep, sent = Unsent(path), []
    notifier = HubNotifier("http://127.0.0.1:9/hub", post=lambda hub, url, timeout: sent.append(url))
    try:
        notifier.notify([f"http://127.0.0.1:8000/{k}/feed.rss" for k in range(SENDERS)])
        assert notifier.drain(10)  # every sender thread is running
        notifier.keep_in(keep)
        for round_ in range(3):
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # a commit of the builder's holds the write lock
            holder.execute("CREATE TABLE IF NOT EXISTS held (x)")
            notifier.notify([f"http://127.0.0.1:8000/x{round_}/feed.rss"])
            time.sleep(0.3)
            holder.execute("COMMIT")
            holder.close()
            assert notifier.drain(10)
        assert keep.all() == [] and all(f"http://127.0.0.1:8000/x{r}/feed.rss" in sent for r in range(3))
    finally:
        notifier.close()


@pytest.mark.parametrize("old, new, followed", [
    ("http://hub.example/hub", "https://hub.example/hub", True), ("http://hub.example:8080/a", "http://hub.example:8080/b", True),
    ("http://127.0.0.1:18905/hub", "http://127.0.0.1:18906/internal-admin", False),  # another service on the host
    ("http://hub.example/hub", "http://other.example/hub", False), ("http://hub.example/hub", "ftp://hub.example/hub", False),
    ("https://hub.example/hub", "http://hub.example/hub", False), ("http://hub.example/hub", "http://hub.example:x/hub", False),
])
def test_a_redirect_is_followed_to_the_same_host_and_port_only(old, new, followed):
    from feedsvc.serving.websub import _same_place

    assert _same_place(old, new) is followed


def test_a_hub_redirecting_to_another_host_is_not_followed():
    """A hub, or what answers at its address, could make feedsvc POST to any address it reaches (loopback, the private
    network): a redirect is followed on the hub's own host only."""
    hub = MovedHub()
    try:
        elsewhere = hub.url.replace("127.0.0.1", "localhost")
        target = hub.server.RequestHandlerClass

        def do_post(handler, taken=target.do_POST):
            if handler.path == "/away":
                handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                handler.send_response(307)
                handler.send_header("Location", elsewhere)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            taken(handler)

        target.do_POST = do_post
        with pytest.raises(OSError, match="another host"):
            post_publish(hub.url.replace("/hub", "/away"), "http://127.0.0.1:8000/feed.rss", 5)
        assert hub.pings == []
    finally:
        hub.close()


def test_a_ping_queued_again_while_the_last_is_written_stays_kept_at_close(tmp_path):
    """Taken by the hub, its removal waiting to be written, queued again, then close(): the batch kept and removed it at
    once (the removal was filtered by what was pending, which close() had emptied), and the stop lost the change."""
    path = tmp_path / "state.sqlite3"
    keep = Unsent(path)
    notifier = HubNotifier("http://127.0.0.1:9/hub", post=lambda hub, url, timeout: None, clock=Clock(), background=False)
    notifier.keep_in(keep)
    notifier.notify(["http://127.0.0.1:8000/feed.rss"])
    with notifier._keeping:  # a sender writes (a commit holds the lock): what the hub took waits to be forgotten
        with notifier._wake:
            _, attempt, url = heapq.heappop(notifier._due)
            notifier._pending.discard(url)
        notifier._send(url, attempt)  # taken
        notifier.notify(["http://127.0.0.1:8000/feed.rss"])  # changed again
    notifier.close()
    assert keep.all() == ["http://127.0.0.1:8000/feed.rss"]


def test_a_state_file_that_cannot_be_opened_keeps_nothing_and_breaks_nothing(tmp_path):
    """Unsent.all() iterated the None a failed statement gives: the builder's start and feedsvc build crashed with a
    TypeError exactly when the state file could not be read (locked past the busy timeout)."""
    keep = Unsent(tmp_path / "no-such-folder" / "state.sqlite3")
    assert keep.all() == [] and not keep.add(["http://127.0.0.1:8000/feed.rss"])
    notifier = HubNotifier("http://127.0.0.1:9/hub", post=lambda hub, url, timeout: None, clock=Clock(), background=False)
    notifier.keep_in(keep)
    notifier.notify(["http://127.0.0.1:8000/feed.rss"])
    assert notifier.send_due() is None and notifier.sent == 1


class RawHub:
    """A hub on loopback that answers each connection with `answer(connection)`, whatever that sends."""

    def __init__(self, answer):
        import socket

        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hub"
        self.stop = threading.Event()

        def serve():
            while not self.stop.is_set():
                try:
                    connection, _ = self.listener.accept()
                except OSError:
                    return
                threading.Thread(target=answer, args=(connection, self.stop), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.stop.set()
        self.listener.close()


def _drip(connection, stop):
    """An answer a byte every 0.3 s, for ever: each read comes within urllib's timeout."""
    connection.recv(65536)
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.wait(0.3):
        try:
            connection.sendall(b"X")
        except OSError:
            return


def _garbage(connection, stop):
    connection.recv(65536)
    connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    connection.close()


def test_a_hub_that_drips_its_answer_is_given_up_at_the_deadline():
    """urllib's timeout is each read's: a hub sending a byte every few seconds held a sender, and feedsvc build, for ever."""
    import time

    hub = RawHub(_drip)
    try:
        started, raised = time.perf_counter(), []

        def ping():
            try:
                post_publish(hub.url, "http://127.0.0.1:8000/feed.rss", 1.5)
            except OSError as exc:
                raised.append(exc)

        sender = threading.Thread(target=ping, daemon=True)
        sender.start()
        sender.join(10)
        assert not sender.is_alive() and time.perf_counter() - started < 4  # before: still waiting, for ever
        assert len(raised) == 1 and "did not answer within" in str(raised[0])
    finally:
        hub.close()


def test_a_hub_answering_no_http_is_a_failure_and_its_sender_goes_on():
    """http.client's BadStatusLine is no OSError: it escaped the sender thread, which died, and with four dead no ping was
    sent again for the life of the process (and feedsvc build exited with a traceback)."""
    hub = RawHub(_garbage)
    try:
        with pytest.raises(OSError, match="no HTTP"):
            post_publish(hub.url, "http://127.0.0.1:8000/feed.rss", 5)
        notifier = HubNotifier(hub.url, first_delay=60)
        try:
            notifier.notify([f"http://127.0.0.1:8000/{n}/feed.rss" for n in range(6)])
            assert notifier.drain(timeout=10) and notifier.sent == 0
            assert all(thread.is_alive() for thread in notifier._threads)  # each failed ping is a retry, not a dead sender
        finally:
            notifier.close()
    finally:
        hub.close()


def test_a_proxy_that_drips_its_tunnel_answer_is_given_up_at_the_deadline(monkeypatch):
    """The deadline noted a connection only once connected, after a proxy's CONNECT and the TLS handshake, both of which
    read from it: a proxy answering its CONNECT a byte at a time held the ping for ever."""
    import time

    proxy = RawHub(_drip)  # answers the CONNECT "HTTP/1.1 200 OK", then a byte every 0.3 s
    monkeypatch.setenv("https_proxy", proxy.url.removesuffix("/hub"))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    try:
        started, raised = time.perf_counter(), []

        def ping():
            try:
                post_publish("https://hub.example/hub", "http://127.0.0.1:8000/feed.rss", 1.5)
            except OSError as exc:
                raised.append(exc)

        sender = threading.Thread(target=ping, daemon=True)
        sender.start()
        sender.join(10)
        assert not sender.is_alive() and time.perf_counter() - started < 4 and len(raised) == 1
    finally:
        proxy.close()


def test_a_sender_that_fails_unexpectedly_retries_the_ping_it_took():
    """An exception of no kind a ping's failure raises escaped the sender with its URL taken off the queue: never sent."""
    clock, calls = Clock(), []

    def post(hub, url, timeout):
        calls.append(url)
        if len(calls) == 1:
            raise AttributeError("'NoneType' object has no attribute 'read'")  # as a socket shut under a read can

    notifier = HubNotifier("http://127.0.0.1:9/hub", post=post, clock=clock, background=False)
    notifier.notify(["http://127.0.0.1:8000/feed.rss"])
    assert notifier.send_due() == 1.0  # a retry, in a second
    clock.now += 1.0
    assert notifier.send_due() is None and notifier.sent == 1 and len(calls) == 2


def _slow_tunnel(connection, stop):
    """A proxy that answers CONNECT after 1.2 s, then says nothing: the TLS handshake waits."""
    connection.recv(65536)
    if stop.wait(1.2):
        return
    connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    stop.wait(30)


def test_a_tls_handshake_through_a_slow_tunnel_ends_at_the_deadline(monkeypatch):
    """The handshake had the time the connection was given when made, whatever the tunnel had used since (3.7 s for a
    2 s deadline); the socket noted is detached as TLS wraps it, so shutting it could not end the handshake."""
    import time

    proxy = RawHub(_slow_tunnel)
    monkeypatch.setenv("https_proxy", proxy.url.removesuffix("/hub"))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    try:
        started = time.perf_counter()
        with pytest.raises(OSError):
            post_publish("https://hub.example/hub", "http://127.0.0.1:8000/feed.rss", 1.5)
        assert time.perf_counter() - started < 2.3  # 1.2 + 1.5 s before
    finally:
        proxy.close()

"""WebSub: feeds advertise the hub and themselves; a refresh that changes feeds pings the hub."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from feedsvc.websub import HubNotifier
from tests.conftest import write
from tests.http_helpers import free_port


class Hub:
    """A WebSub hub on loopback that records publish pings."""

    def __init__(self):
        self.pings: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                hub.pings.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub():
    h = Hub()
    yield h
    h.close()


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


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


def test_a_refresh_that_changes_feeds_pings_the_hub_for_each(make_app, articles_dir, hub):
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir, WEBSUB_HUB=hub.url)
    assert wait_for(lambda: len(hub.pings) >= 6)  # the first build: site-wide and News, three formats
    hub.pings.clear()
    write(articles_dir, "tech.txt", "Tech\nA tech story\nBody.\n")
    app.extensions["feedsvc"].refresh()
    assert wait_for(lambda: len(hub.pings) >= 6)
    urls = sorted(p["hub.url"][0] for p in hub.pings)
    assert all(p["hub.mode"] == ["publish"] for p in hub.pings)
    assert urls == sorted(f"http://127.0.0.1:8000/{path}" for path in (
        "feed.rss", "feed.atom", "feed.json", "category/tech/feed.rss", "category/tech/feed.atom", "category/tech/feed.json"))
    hub.pings.clear()
    app.extensions["feedsvc"].refresh()  # nothing changed: no ping
    time.sleep(0.2)
    assert hub.pings == []


def test_a_hub_that_is_down_does_not_slow_or_break_refreshes(make_app, articles_dir):
    down = f"http://127.0.0.1:{free_port()}/hub"  # nothing listens there
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir, WEBSUB_HUB=down)
    pub = app.extensions["feedsvc"]
    write(articles_dir, "b.txt", "News\nAnother\nBody.\n")
    started = time.monotonic()
    assert pub.refresh()
    assert time.monotonic() - started < 1.0
    assert "b" in pub.snapshot.articles


def test_a_failed_ping_is_retried_with_growing_delays():
    attempts = []

    def flaky(hub, url, timeout):
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise OSError("hub down")

    notifier = HubNotifier("http://127.0.0.1:9/hub", first_delay=0.05, post=flaky)
    notifier.notify(["http://127.0.0.1:8000/feed.rss"])
    assert wait_for(lambda: notifier.sent == 1)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) == 3 and gaps[1] > gaps[0] * 1.5


def test_a_ping_never_waits_on_the_hub():
    release = threading.Event()
    notifier = HubNotifier("http://127.0.0.1:9/hub", post=lambda *a: release.wait(5))
    started = time.monotonic()
    notifier.notify([f"http://127.0.0.1:8000/{i}" for i in range(100)])
    assert time.monotonic() - started < 0.1
    release.set()

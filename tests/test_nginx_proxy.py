"""deploy/nginx-proxy.conf in front of `feedsvc serve`, both real processes: what to put in front on the internet."""
from __future__ import annotations

import json
import socket
import time
from urllib.parse import quote

import pytest

from tests.conftest import SAMPLE_ARTICLES
from tests.http_helpers import MEDIA_TYPES, NginxProxy, Server, check_feed_http, fetch

pytestmark = pytest.mark.e2e

KEY = "agency-key-0123456789abcdef"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    folder = tmp_path_factory.mktemp("proxied")
    partners = json.dumps([{"name": "Agency", "key_env": "AGENCY_KEY", "categories": "all"}])
    app = Server(SAMPLE_ARTICLES, folder / "state.sqlite3", env={
        "FEEDSVC_PARTNERS": partners, "AGENCY_KEY": KEY, "FEEDSVC_PROXY_HOPS": "1", "FEEDSVC_RATE_LIMIT": "60",
        "FEEDSVC_RATE_LIMIT_EXEMPT": "[]"})  # the readers here are on loopback too
    work = folder / "nginx"
    work.mkdir()
    proxy = NginxProxy(f"127.0.0.1:{app.port}", work, header_timeout="2s")
    yield app, proxy
    proxy.stop()
    app.stop()


def test_feeds_pass_through_the_proxy_with_the_apps_http_rules(proxied):
    app, proxy = proxied
    plain = check_feed_http(proxy.base, "/feed.atom", MEDIA_TYPES["atom"])
    assert plain.header("etag") == fetch(app.base, "/feed.atom").header("etag")


def test_the_proxy_closes_a_connection_whose_header_never_ends(proxied):
    _, proxy = proxied
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as slow:
        slow.sendall(b"GET /feed.rss HTTP/1.1\r\nHost: x\r\nUser-Ag")
        started = time.monotonic()
        answer = slow.recv(100)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 10  # client_header_timeout (2 s here, 10 s as shipped)


def test_rate_limits_see_the_clients_address_not_a_forged_one(proxied):
    _, proxy = proxied
    # A new made-up X-Forwarded-For each time: nginx appends the real address, the one PROXY_HOPS = 1 trusts,
    # so the budget runs out all the same.
    statuses = [fetch(proxy.base, "/feed.json", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status for i in range(100)]
    assert 429 in statuses


def test_the_proxys_log_has_no_key_and_readable_paths(proxied):
    _, proxy = proxied
    fetch(proxy.base, f"/partners/feed.rss?key={KEY}")
    fetch(proxy.base, "/feeds.opml", headers={"Referer": f"https://elsewhere.example/reader?key={KEY}"})
    fetch(proxy.base, "/category/" + quote("سياسة") + "/")
    time.sleep(0.3)
    log = proxy.access_log.read_text(encoding="utf-8")
    assert KEY not in log
    assert '"GET /partners/feed.rss HTTP/1.1"' in log and '"https://elsewhere.example/reader"' in log
    assert "/category/سياسة/" in log

"""Attacks on the HTTP contract, each performed against `feedsvc serve` running as a real process."""
from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import sqlite3
import time
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SAMPLE_ARTICLES, write
from tests.http_helpers import Server, fetch

pytestmark = pytest.mark.e2e

KEY = "agency-key-0123456789abcdef"
POLITICS = "/category/" + quote("سياسة") + "/feed.rss"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacked")
    partners = json.dumps([{"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["سياسة"]}])
    srv = Server(SAMPLE_ARTICLES, folder / "state.sqlite3", env={"FEEDSVC_PARTNERS": partners, "AGENCY_KEY": KEY})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A server whose budgets are three requests a minute, public and partner."""
    folder = tmp_path_factory.mktemp("tight")
    partners = json.dumps([{"name": "Agency", "key_env": "AGENCY_KEY", "categories": ["سياسة"]}])
    srv = Server(SAMPLE_ARTICLES, folder / "state.sqlite3", env={
        "FEEDSVC_PARTNERS": partners, "AGENCY_KEY": KEY, "FEEDSVC_RATE_LIMIT": "3", "FEEDSVC_PARTNER_RATE_LIMIT": "3",
        "FEEDSVC_RATE_LIMIT_EXEMPT": "[]"})  # this test client is on loopback, which is exempt by default
    yield srv
    srv.stop()


@pytest.mark.parametrize("query", [
    "?page=%C2%B2",  # ² (superscript two): str.isdigit() says yes, int() says no
    "?page=%D9%A3",  # ٣ (Arabic-Indic three): int() would take it as 3
    "?page=%EF%BC%92",  # ２ (full-width two)
    "?page=" + "9" * 1000,  # no int() of a thousand digits
    "?since=%EF%BC%92026-11-29T08:00:00Z",
    "?since=2026-11-29T08:00:00%D9%A0Z",
    "?page=2&since=%D9%A2%D9%A0%D9%A2%D9%A6-11-29T08:00:00Z",
], ids=lambda query: query[:40])
def test_non_ascii_digits_in_page_or_since_are_a_400_with_the_fix(server, query):
    res = fetch(server.base, "/feed.atom" + query)
    assert res.status == 400, (query, res.status, res.body[:200])
    assert b"expected" in res.body and b"Traceback" not in res.body and len(res.body) < 300


def test_past_its_budget_a_client_gets_429_before_anything_is_parsed_or_looked_up(tight):
    for _ in range(3):
        assert fetch(tight.base, "/feed.rss").status == 200
    # Each of these would be a 404, a 400 or a freshly rendered page if it were handled before the charge.
    for query in ("?page=999", "?page=%C2%B2", "?since=nonsense", "?since=2026-11-29T08:00:00Z", "?since=2026-11-28T08:00:00Z&page=2"):
        res = fetch(tight.base, "/feed.json" + query)
        assert res.status == 429 and int(res.header("retry-after")) >= 1, (query, res.status)


def test_past_its_budget_a_partner_gets_429_before_its_views_are_looked_up(tight):
    auth = {"Authorization": f"Bearer {KEY}"}
    for _ in range(3):
        assert fetch(tight.base, "/partners/feed.json", headers=auth).status == 200
    # An unlicensed category (403), a missing page (404), a delta (rendered per request): all 429 now.
    for path in ("/partners/category/technology/feed.json", "/partners/feed.json?page=99",
                 "/partners/feed.atom?since=2026-11-01T00:00:00Z", "/partners/feed.rss?page=%C2%B2"):
        assert fetch(tight.base, path, headers=auth).status == 429, path


def test_fifty_slow_clients_leave_normal_requests_fast(server):
    """Half a request header on 50 connections (slowloris): a normal request still answers at p99 < 100 ms."""
    slow = []
    try:
        for _ in range(50):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            conn.sendall(b"GET /feed.rss HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag")  # ... and nothing more
            slow.append(conn)
        times = []
        for _ in range(100):
            started = time.perf_counter()
            res = fetch(server.base, "/feed.rss")
            times.append(time.perf_counter() - started)
            assert res.status == 200
        times.sort()
        p99 = times[98]
        assert p99 < 0.100, f"p99 {p99 * 1000:.1f} ms with 50 slow clients connected"
        # The slow clients are still connected and are answered once their request is complete.
        slow[0].sendall(b"ent: slow\r\n\r\n")
        assert slow[0].recv(12).startswith(b"HTTP/1.1 200")
    finally:
        for conn in slow:
            conn.close()


def wait_for_log(server, text: str, timeout: float = 5) -> str:
    """The server's output once it contains text (the access log is written as requests end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = server.output()
        if text in output:
            return output
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never reached the log:\n{server.output()[-2000:]}")


def test_a_partner_key_never_reaches_the_access_log_through_referer_or_basic_auth(server):
    basic = base64.b64encode(f"{KEY}:x".encode()).decode()
    fetch(server.base, "/feed.rss?marker=referer", headers={"Referer": f"{server.base}/partners/feed.rss?key={KEY}#{KEY}"})
    fetch(server.base, "/feed.atom?marker=basic", headers={"Authorization": f"Basic {basic}"})
    fetch(server.base, f"/partners/feed.json?key={KEY}")
    output = wait_for_log(server, '"GET /partners/feed.json')
    assert f"{server.base}/partners/feed.rss" in output  # the Referer is kept, without its query
    assert KEY not in output and "marker" not in output


def test_arabic_paths_are_logged_as_readable_utf8(server):
    assert fetch(server.base, POLITICS).status == 200
    output = wait_for_log(server, '"GET /category/سياسة/feed.rss HTTP/1.1" 200')
    assert "Ø" not in output  # no mojibake (UTF-8 read as latin-1)


def test_a_user_agent_in_utf8_is_logged_readable_and_its_stray_bytes_shown(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall("GET /feed.rss HTTP/1.1\r\nHost: x\r\nUser-Agent: قارئ/1.0 \u202e\r\nConnection: close\r\n\r\n".encode()
                    .replace(b"1.0 ", b"1.0 \xff"))
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    output = wait_for_log(server, '"قارئ/1.0 \\xff\\u202e"')
    assert "Ø" not in output and "\u202e" not in output


def test_control_characters_in_a_path_are_escaped_in_the_log(server):
    assert fetch(server.base, "/x%0A127.0.0.1%20-%20-%20fake%1B[31mred%E2%80%AEevil").status == 404
    output = wait_for_log(server, "/x\\x0a127.0.0.1 - - fake\\x1b[31mred\\u202eevil")
    assert "\x1b" not in output and "\u202e" not in output and "\n127.0.0.1 - - fake" not in output


def test_a_declared_body_past_the_limit_is_a_413_before_it_is_sent(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"GET /feed.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        assert raw.recv(65536).startswith(b"HTTP/1.1 413")  # not waiting for 100,000 bytes that never come


def test_a_path_that_is_not_utf8_is_logged_with_its_bytes_shown(server):
    assert fetch(server.base, "/bad%FF%FEpath").status in (400, 404)
    wait_for_log(server, "/bad\\xff\\xfepath")


def test_a_new_article_is_published_while_slow_clients_wait(tmp_path):
    """The scheduler and watcher keep working under the asyncio worker."""
    folder = tmp_path / "articles"
    write(folder, "a.txt", "News\nFirst title\nBody one.\n")
    srv = Server(folder, tmp_path / "state.sqlite3")
    try:
        conn = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        conn.sendall(b"GET /feed.rss HTTP/1.1\r\n")
        write(folder, "b.txt", "News\nSecond title\nBody two.\n")
        deadline = time.monotonic() + 10
        while b"Second title" not in fetch(srv.base, "/feed.rss").body:
            assert time.monotonic() < deadline, "the saved article was not published"
            time.sleep(0.1)
        conn.close()
    finally:
        srv.stop()


def test_ten_thousand_made_up_user_agents_cannot_forge_subscriber_counts(tmp_path):
    """Made-up aggregators are pooled as "other", a real Inoreader is still recorded, a forged Feedly count is dropped."""
    srv = Server(SAMPLE_ARTICLES, tmp_path / "state.sqlite3", env={"FEEDSVC_RATE_LIMIT": "0"})
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:  # pipelined, 500 at a time
            for batch in range(20):
                raw.sendall(b"".join(f"HEAD /feed.rss HTTP/1.1\r\nHost: x\r\nUser-Agent: Reader{i}/1.0 "
                                     f"(+https://r{i}.example; {i % 97 + 1} subscribers)\r\n\r\n".encode()
                                     for i in range(batch * 500, batch * 500 + 500)))
                answered = b""
                while answered.count(b"HTTP/1.1 200") < 500:
                    answered += raw.recv(1 << 16)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        for agent in ("Mozilla/5.0 (compatible; inoreader.com; 12 subscribers)",
                      "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 42 subscribers; like FeedFetcher-Google)",
                      "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 8400000 subscribers; like FeedFetcher-Google)"):
            conn.request("GET", "/feed.rss", headers={"User-Agent": agent})
            assert conn.getresponse().read()
        conn.close()
        text = fetch(srv.base, "/metrics").body.decode()
    finally:
        srv.stop()
    counts = {s.labels["aggregator"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
              if s.name == "feedsvc_feed_subscribers" and s.labels["feed"] == "/feed.rss"}
    assert counts["inoreader"] == 12 and counts["feedly"] == 42
    assert set(counts) == {"inoreader", "feedly", "other"}  # ten thousand names, one label


def healthz(srv) -> dict:
    return json.loads(fetch(srv.base, "/healthz").body)


def healthz_when(srv, holds, timeout: float = 15) -> dict:
    """/healthz's body once holds(body) is true, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = healthz(srv)
        if holds(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"/healthz never got there: {body}")


def test_healthz_shows_no_absolute_path_of_the_server(tmp_path):
    folder = tmp_path / "articles"
    write(folder, "a.txt", "News\nTitle\nBody.\n")
    srv = Server(folder, tmp_path / "state.sqlite3", env={"FEEDSVC_REFRESH_SECONDS": "1"})
    try:
        shutil.rmtree(folder)  # every refresh now fails, naming the folder
        body = healthz_when(srv, lambda b: b["last_error"])
    finally:
        srv.stop()
    assert str(tmp_path) not in json.dumps(body, ensure_ascii=False)
    assert "ARTICLES_DIR" in body["last_error"], body
    # Not "ok" beside the error while the last good build is served (then "stale" after three intervals)
    assert body["status"] in ("failing", "stale"), body


def test_a_stuck_refresh_says_so_in_healthz_and_for_how_long(tmp_path):
    """A refresh waiting on the state store (another process holds its write lock) is reported while it waits."""
    folder = tmp_path / "articles"
    write(folder, "a.txt", "News\nTitle\nBody.\n")
    srv = Server(folder, tmp_path / "state.sqlite3", env={"FEEDSVC_REFRESH_SECONDS": "1"})
    lock = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    try:
        # A refresh a second: on a loaded machine one may be under way (0.6 s seen), which is no stuck one
        healthz_when(srv, lambda b: b["refreshing"] is None)
        lock.execute("BEGIN EXCLUSIVE")
        write(folder, "b.txt", "News\nSecond\nBody two.\n")  # a new article: its first-seen time must be written
        stuck = healthz_when(srv, lambda b: b["refreshing"] and b["refreshing"]["stuck"])
        assert stuck["status"] == "stuck" and stuck["refreshing"]["seconds"] > 1 and stuck["articles"] == 1
        lock.execute("ROLLBACK")
        done = healthz_when(srv, lambda b: b["articles"] == 2 and b["refreshing"] is None)
        assert done["status"] == "ok"
    finally:
        lock.close()
        srv.stop()

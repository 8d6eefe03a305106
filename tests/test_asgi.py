"""feedsvc/serving/asgi.py: the real Flask app as gunicorn's asyncio worker calls it, one request at a time."""
from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from feedsvc.serving.asgi import MAX_BODY, WSGIOnThreads, wsgi_environ


def scope(path: bytes, method: str = "GET", headers: list | None = None, query: bytes = b"") -> dict:
    return {"type": "http", "http_version": "1.1", "method": method, "scheme": "http", "path": path.decode("utf-8", "replace"),
            "raw_path": path, "query_string": query, "root_path": "", "headers": headers or [],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}


def call(app, request: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Run one request through the ASGI app; the status, headers and body it sent."""
    sent = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(request, receive, send))
    start, *bodies = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, b"".join(m.get("body", b"") for m in bodies)


@pytest.fixture
def asgi(make_app, sample_dir):
    app = WSGIOnThreads(make_app(sample_dir), threads=2)
    yield app
    app.executor.shutdown()


def test_a_feed_is_served_with_its_headers_and_bytes(asgi):
    status, headers, body = call(asgi, scope(b"/feed.atom", headers=[(b"accept-encoding", b"identity")]))
    assert status == 200 and headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert body.startswith(b"<?xml") and headers["etag"].startswith('"')


def test_an_arabic_path_reaches_the_app_as_a_wsgi_server_gives_it(asgi):
    status, _, body = call(asgi, scope(("/category/" + quote("سياسة") + "/feed.rss").encode()))
    assert status == 200 and "زيارة مسؤول أمني روسي".encode() in body


def test_a_path_that_is_not_utf8_is_a_404_not_an_error(asgi):
    assert call(asgi, scope(b"/bad%FF%FEpath"))[0] == 404


def test_head_sends_no_body(asgi):
    status, headers, body = call(asgi, scope(b"/feed.rss", method="HEAD"))
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_a_large_body_is_refused_before_the_app_sees_it(asgi):
    assert call(asgi, scope(b"/feed.rss", method="POST"), b"x" * (MAX_BODY + 1))[0] == 413
    assert call(asgi, scope(b"/feed.rss", method="POST"), b"x")[0] == 405


def test_a_declared_length_past_the_limit_is_refused_before_any_body_is_waited_for(asgi):
    """It waited for the body, which a client may never send; gunicorn then logged a 500."""
    sent = []

    async def receive():
        raise AssertionError("the body was waited for")

    async def send(message):
        sent.append(message)

    asyncio.run(asgi(scope(b"/feed.rss", headers=[(b"content-length", str(MAX_BODY + 1).encode())]), receive, send))
    assert sent[0]["status"] == 413 and b"too large" in sent[1]["body"]


def test_a_body_the_client_stopped_sending_is_a_400_the_app_never_sees(asgi):
    """The app was called with the part that came, as if it were the whole request."""
    sent, incoming = [], [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(asgi(scope(b"/feed.rss", headers=[(b"content-length", b"10")]), receive, send))
    assert sent[0]["status"] == 400 and b"incomplete" in sent[1]["body"]


def test_the_environ_follows_pep_3333():
    environ = wsgi_environ(scope(b"/a%20b/%D8%B3", headers=[(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"5.6.7.8"),
                                                           (b"content-type", b"text/plain")], query=b"page=2"), b"")
    assert environ["PATH_INFO"] == "/a b/" + "س".encode("utf-8").decode("latin-1")  # bytes as latin-1
    assert environ["QUERY_STRING"] == "page=2" and environ["CONTENT_TYPE"] == "text/plain"
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.2.3.4,5.6.7.8"
    assert environ["REMOTE_ADDR"] == "127.0.0.1" and environ["SERVER_PORT"] == "8000"


def test_every_answer_says_the_date_of_its_own_second_never_a_cached_earlier_one(asgi, monkeypatch):
    """gunicorn caches its Date for up to a second; a Last-Modified recorded since must not be later (RFC 9110 §8.8.2.1)."""
    from email.utils import parsedate_to_datetime

    import feedsvc.serving.asgi as module

    for now in (1_796_032_514.99, 1_796_032_515.01):  # either side of a second's turn
        monkeypatch.setattr(module.time, "time", lambda now=now: now)
        status, headers, _ = call(asgi, scope(b"/feed.rss"))
        assert status == 200 and parsedate_to_datetime(headers["date"]).timestamp() == int(now)
    status, headers, _ = call(asgi, scope(b"/no/such/thing"))
    assert status == 404 and list(headers).count("date") == 1

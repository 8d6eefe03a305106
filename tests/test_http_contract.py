"""The tests' own HTTP contract check catches a server that breaks it (so a passing server test means something)."""
from __future__ import annotations

import gzip
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from tests.http_contract import contract_problems, document_kind

FEED = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>t</title></channel></rss>'


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def careless_feed(environ, start_response):
    """A feed server that gets most of HTTP wrong: no 304s, one ETag for every coding, a body on HEAD."""
    coded = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
    body = gzip.compress(FEED, mtime=0) if coded else FEED
    headers = [("Content-Type", "text/xml"), ("ETag", '"same"'), ("Last-Modified", "Sat, 28 Nov 2026 10:00:00 GMT"),
               ("Content-Length", str(len(body)))]
    if coded:
        headers.append(("Content-Encoding", "gzip"))
    start_response("200 OK", headers)
    return [body]


@pytest.fixture
def careless_server():
    server = make_server("127.0.0.1", 0, careless_feed, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_server_that_breaks_the_contract_is_caught_on_every_count(careless_server):
    problems = "\n".join(contract_problems(careless_server, "/feed.rss"))
    for expected in (
        "Content-Type 'text/xml' is not application/rss+xml",
        "names charset None, not utf-8",
        "If-None-Match with the ETag: 200",
        "If-Modified-Since with Last-Modified: 200",
        "HEAD sent",
        "gzip: no Vary: Accept-Encoding",
        "gzip: ETag '\"same\"' is the plain body's",
        "Accept-Encoding: br got Content-Encoding None",
    ):
        assert expected in problems


def test_a_server_that_is_not_serving_the_feed_is_one_problem():
    def missing(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]

    server = make_server("127.0.0.1", 0, missing, handler_class=Quiet)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        assert contract_problems(f"http://127.0.0.1:{server.server_port}", "/feed.rss") == ["GET /feed.rss answered 404, not 200"]
    finally:
        thread.join(timeout=5)
        server.server_close()


@pytest.mark.parametrize("body, kind", [
    (FEED, "rss"), (b'<?xml version="1.0"?>\n<!-- c -->\n<feed xmlns="http://www.w3.org/2005/Atom"/>', "atom"),
    (b'  {"version": "https://jsonfeed.org/version/1.1"}', "json"), (b"<html></html>", "unknown"),
])
def test_a_documents_kind_is_told_from_its_first_element(body, kind):
    assert document_kind(body) == kind

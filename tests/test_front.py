"""feedsvc/serving/front.py: hot resources answered on the event loop give what the Flask path gives, byte for byte.

Each request is sent twice to the same real app over the same build store: through WSGIOnThreads alone (Flask
answers everything) and through serving.on_threads (the front first), as gunicorn's asyncio worker calls them.
"""
from __future__ import annotations

import io
import logging
import sqlite3
import threading
import time
from urllib.parse import quote

import pytest
from gunicorn.config import Config

from feedsvc.building.committer import Committer
from feedsvc.serving.accesslog import ACCESS_LOG_FORMAT, AccessLog
from feedsvc.serving.asgi import WSGIOnThreads
from feedsvc.serving.ratelimit import RateLimiter
from feedsvc.server import on_threads
from tests.conftest import write
from tests.test_asgi import call, scope

POLITICS = quote("سياسة").encode()
HOT_PATHS = [b"/feed.rss", b"/feed.atom", b"/feed.json", b"/category/" + POLITICS + b"/feed.rss",
             b"/category/" + POLITICS + b"/", b"/feeds.opml", b"/feeds-all.opml", b"/", b"/style.css", b"/favicon.ico",
             b"/sitemap.xml", b"/sitemap-news.xml", b"/robots.txt", b"/articles/000_4c2ff0435fbab79d"]
READER = b"application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.8, */*;q=0.1"


class Both:
    """One app behind Flask alone and behind the front; ask() sends a request to both and returns both answers."""

    def __init__(self, app):
        self.app = app
        self.flask = WSGIOnThreads(app, threads=2)
        self.fronted = on_threads(app)
        self.front = self.fronted.front

    def ask(self, path: bytes, method: str = "GET", headers: list | None = None, query: bytes = b"") -> tuple:
        headers = headers or []
        request = scope(path, method, headers if any(h[0] == b"accept" for h in headers) else [(b"accept", READER), *headers], query)
        return call(self.flask, request), call(self.fronted, request)

    def fronted_only(self, path: bytes, method: str = "GET", headers: list | None = None,
                     client: str = "127.0.0.1") -> tuple[int, dict, bytes, bool]:
        """The fronted answer, and whether the front gave it (not Flask)."""
        request = scope(path, method, [(b"accept", READER), *(headers or [])])
        request["client"] = (client, 40000)
        before = self.front.answered
        status, headers, body = call(self.fronted, request)
        return status, headers, body, self.front.answered == before + 1

    def close(self) -> None:
        self.flask.executor.shutdown()
        self.fronted.executor.shutdown()


@pytest.fixture
def both(make_app, sample_dir):
    pair = Both(make_app(sample_dir, RATE_LIMIT=0))  # budgets have their own tests below
    yield pair
    pair.close()


def _same(flask: tuple, fronted: tuple) -> None:
    """Status, body and every header but Date equal, in the same order; Date is there once."""
    (status, headers, body), (f_status, f_headers, f_body) = flask, fronted
    assert (f_status, f_body) == (status, body)
    assert [h for h in f_headers.items() if h[0] != "date"] == [h for h in headers.items() if h[0] != "date"]
    assert "date" in f_headers


def test_hot_resources_get_the_flask_paths_headers_and_bytes_in_every_coding_and_condition(both):
    for path in HOT_PATHS:  # the first request of each loads it (and its codings) into memory through Flask
        for coding in (b"identity", b"gzip", b"br"):
            both.ask(path, headers=[(b"accept-encoding", coding)])
    answered = both.front.answered
    asked = 0
    for path in HOT_PATHS:
        for coding in (b"identity", b"gzip", b"br", b"gzip, deflate, br", b"br;q=0.5, gzip;q=0.9", b""):
            flask, fronted = both.ask(path, headers=[(b"accept-encoding", coding)] if coding else [])
            _same(flask, fronted)
            asked += 1
            etag, modified = flask[1]["etag"].encode(), flask[1]["last-modified"].encode()
            for conditions in ([(b"if-none-match", etag)], [(b"if-none-match", b"W/" + etag)],
                               [(b"if-none-match", b'"other", ' + etag)], [(b"if-none-match", b"*")],
                               [(b"if-none-match", b'"other"')], [(b"if-modified-since", modified)],
                               [(b"if-modified-since", b"Sat, 01 Jan 2000 00:00:00 GMT")],
                               [(b"if-none-match", b'"other"'), (b"if-modified-since", modified)],
                               [(b"if-none-match", etag), (b"if-modified-since", modified)],
                               # an empty tag (valid, never ours), a tag of our hash with more after it, and a date
                               # past what a datetime holds (ignored): each was a 500 on both paths
                               [(b"if-none-match", b'""')], [(b"if-none-match", b'W/"", ' + etag)],
                               [(b"if-none-match", etag[:-1] + b'-gzip-more"')],
                               [(b"if-modified-since", b"Fri, 31 Dec 9999 23:59:59 -1200")]):
                for method in ("GET", "HEAD"):
                    _same(*both.ask(path, method, [(b"accept-encoding", coding), *conditions]))
                    asked += 1
            assert flask[0] == 200
    assert both.front.answered - answered == asked  # every one of them answered on the loop, none by Flask


def test_if_match_and_if_unmodified_since_go_to_flask_and_get_its_answer(both):
    """The front leaves the rare preconditions to Flask (web.precondition_failed): the same 200, 304 or 412."""
    path = b"/feed.rss"
    both.ask(path)
    etag = both.ask(path)[0][1]["etag"].encode()
    for conditions, status in (([(b"if-match", b'"other"')], 412), ([(b"if-match", etag)], 200),
                               ([(b"if-unmodified-since", b"Sat, 01 Jan 2000 00:00:00 GMT")], 412),
                               ([(b"if-match", etag), (b"if-none-match", etag)], 304)):
        flask, fronted = both.ask(path, headers=conditions)
        _same(flask, fronted)
        assert flask[0] == status, conditions


def test_a_304_carries_the_validators_and_caching_headers_but_not_the_bodys_own(both):
    both.ask(b"/feed.rss", headers=[(b"accept-encoding", b"gzip")])
    status, headers, body, by_front = both.fronted_only(b"/feed.rss", headers=[(b"accept-encoding", b"gzip")])
    assert status == 200 and by_front and headers["content-encoding"] == "gzip"
    status, unmodified, body, by_front = both.fronted_only(
        b"/feed.rss", headers=[(b"accept-encoding", b"gzip"), (b"if-none-match", headers["etag"].encode())])
    assert status == 304 and by_front and body == b""
    assert unmodified["etag"] == headers["etag"] and unmodified["vary"] == "Accept-Encoding, Sec-Fetch-Dest, Accept"
    assert unmodified["cache-control"] == headers["cache-control"]
    assert not {"content-type", "content-length", "content-encoding", "last-modified"} & set(unmodified)


def test_a_304_is_answered_on_the_loop_without_reading_the_bytes_and_a_200_reads_its_coding_once(both):
    both.ask(b"/feed.json", headers=[(b"if-none-match", b'"other"')])  # in memory: its validators, and the bytes sent
    cached = both.app.extensions["feedsvc.store"].cached("feed.json")[0]
    assert cached.loaded(None) and not cached.loaded("gzip")
    etag = cached.etag[:-1] + '-gzip"'
    status, headers, body, by_front = both.fronted_only(b"/feed.json", headers=[(b"accept-encoding", b"gzip"),
                                                                              (b"if-none-match", etag.encode())])
    assert status == 304 and by_front and not cached.loaded("gzip")  # no byte read for it
    status, headers, body, by_front = both.fronted_only(b"/feed.json", headers=[(b"accept-encoding", b"gzip")])
    assert status == 200 and not by_front and cached.loaded("gzip")  # read from the store on a thread, once
    status, headers, again, by_front = both.fronted_only(b"/feed.json", headers=[(b"accept-encoding", b"gzip")])
    assert status == 200 and by_front and again == body


def test_requests_the_front_does_not_know_go_to_flask_and_get_its_answer(both):
    for path in HOT_PATHS:
        both.ask(path)
    answered = both.front.answered
    for path, method, headers, query in (
        (b"/feed.rss", "GET", [(b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8")], b""),  # a browser: the preview
        (b"/feed.rss", "GET", [(b"sec-fetch-dest", b"document")], b""),
        (b"/feed.rss", "GET", [], b"page=1"),  # ?page=1: redirected to the feed's one URL
        (b"/feed.rss", "GET", [], b"page=2"),
        (b"/feed.rss", "POST", [], b""),
        (b"/%23preview/feed.rss", "GET", [], b""),  # the store's own keys are never a URL
        (b"/category/" + POLITICS, "GET", [], b""),  # → /category/x/
        (b"/no/such/thing", "GET", [], b""),
        (b"/healthz", "GET", [], b""),
        (b"/partners/feed.rss", "GET", [], b""),
        (b"/search/feed.rss", "GET", [], b""),  # a route of its own: whatever web.py adds stays Flask's
    ):
        before = both.front.answered
        flask, fronted = both.ask(path, method, headers, query)
        assert both.front.answered == before, path
        assert fronted[0] == flask[0] and (fronted[2] == flask[2] or path == b"/healthz"), path  # /healthz tells its age
    assert both.front.answered == answered
    assert both.ask(b"/feed.rss", headers=[(b"sec-fetch-dest", b"document")])[1][1]["content-type"].startswith("text/html")
    _same(*both.ask(b"//feed.rss"))  # Flask's own routing decides: werkzeug merges the slashes, so does the front


def test_a_new_build_is_answered_once_an_interval_has_passed_since_its_commit(make_app, sample_dir):
    pair = Both(make_app(sample_dir))
    try:
        store = pair.app.extensions["feedsvc.store"]
        pair.ask(b"/feed.rss")
        old = pair.fronted_only(b"/feed.rss")
        assert old[3] and b"A brand new title" not in old[2]
        category = pair.app.extensions["feedsvc"].snapshot.feeds[1].category.name
        write(sample_dir, "zz-new.txt", f"{category}\nA brand new title\nBody.\n")
        store.current(force=True)  # a look just before the commit: the next one is due an interval later
        publisher = pair.app.extensions["feedsvc"]
        publisher.refresh()
        # The build of the new feeds' codings follows it from a background thread, and forgets them again when it
        # lands: both are in the store before the front looks (else the second answer below may come from Flask).
        assert next(o for o in publisher.observers if isinstance(o, Committer)).wait(30)
        time.sleep(max(0.0, store.seen + store.interval - time.monotonic()))
        status, headers, body, _ = pair.fronted_only(b"/feed.rss")
        assert status == 200 and b"A brand new title" in body and headers["etag"] != old[1]["etag"]
        new = pair.fronted_only(b"/feed.rss")  # in memory again: the front answers the new bytes
        assert new[3] and new[2] == body and new[1]["etag"] == headers["etag"]
    finally:
        pair.close()


def test_before_the_first_build_the_loop_gives_flasks_503_counted_and_charged_as_flask_does(sample_dir, tmp_path, monkeypatch):
    from feedsvc import create_app

    monkeypatch.chdir(tmp_path)
    config = {"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"), "SETTLE_MS": 0}
    app = create_app(config, build=False)  # a cold start's worker: nothing committed yet
    pair = Both(app)
    try:
        for path in [*HOT_PATHS, b"/category/no-such/feed.rss", b"/no/such/page"]:
            for method in ("GET", "HEAD"):
                answered = pair.front.answered
                flask, fronted = pair.ask(path, method)
                assert flask[0] == 503 and flask[1]["retry-after"] == "5" and (method == "HEAD") == (flask[2] == b"")
                _same(flask, fronted)
                assert pair.front.answered == answered + 1, path  # the second on the loop, not through Flask
        asked = 2 * 2 * (len(HOT_PATHS) + 2)  # GET and HEAD, through Flask and through the front
        text = app.extensions["feedsvc.metrics"].exposition().decode()
        assert f'feedsvc_http_requests_total{{format="",kind="other",status="503"}} {asked}.0' in text  # as Flask counts them
        app.extensions["feedsvc.limits"]["public"] = RateLimiter(1, clock=lambda: 0.0)  # no refill while the test runs
        pair.close()
        pair = Both(app)  # its front takes the new budget
        assert [pair.fronted_only(b"/feed.rss")[3] for _ in range(5)] == [True] * 5  # a 304's price each: a fifth
        status, headers, body, by_front = pair.fronted_only(b"/feed.rss")
        assert status == 429 and not by_front and b"Too many requests" in body
        assert pair.fronted_only(b"/style.css")[:1] == (503,)  # not budgeted
        create_app(config)  # the first build, committed
        time.sleep(app.extensions["feedsvc.store"].interval)
        assert pair.fronted_only(b"/style.css")[0] == 200
    finally:
        pair.close()


def test_a_store_busy_for_the_loops_look_is_looked_at_on_a_thread(both, monkeypatch):
    """A reader of a WAL database meets a busy file only while it is recovered: the loop never waits for that."""
    both.ask(b"/feed.rss")
    store = both.app.extensions["feedsvc.store"]
    looked, current = [], store.current

    def busy_for_the_loop(force: bool = False, quick: bool = False) -> int:
        looked.append((quick, threading.current_thread().name))
        if quick:
            raise sqlite3.OperationalError("database is locked")
        return current(force=force)

    monkeypatch.setattr(store, "current", busy_for_the_loop)
    time.sleep(store.interval)
    status, _, body, by_front = both.fronted_only(b"/feed.rss")
    assert status == 200 and by_front and body.startswith(b"<?xml")
    assert looked[0] == (True, "MainThread") and looked[1][0] is False and looked[1][1].startswith("wsgi")


def test_hot_feeds_are_charged_to_the_clients_budget_before_any_work(make_app, sample_dir):
    app = make_app(sample_dir)
    app.extensions["feedsvc.limits"]["public"] = RateLimiter(3, clock=lambda: 0.0)  # no refill while the test runs
    pair = Both(app)
    try:
        first = pair.fronted_only(b"/feed.rss")  # loaded through Flask: a full request, 1 of 3
        assert first[0] == 200 and not first[3]
        etag = [(b"if-none-match", first[1]["etag"].encode())]
        for _ in range(5):  # five 304s on the loop: a fifth each, 1 more
            status, _, _, by_front = pair.fronted_only(b"/feed.rss", headers=etag)
            assert status == 304 and by_front
        status, _, _, by_front = pair.fronted_only(b"/feed.rss")  # a full one: the last
        assert status == 200 and by_front
        status, headers, body, by_front = pair.fronted_only(b"/feed.rss", headers=etag)
        assert status == 429 and not by_front and headers["retry-after"] and b"Too many requests" in body
        assert pair.fronted_only(b"/style.css")[0] == 200  # static files are not budgeted
        assert pair.fronted_only(b"/feeds-all.opml")[0] == 429  # the OPML lists are
        assert pair.fronted_only(b"/feed.rss", client="10.0.0.2")[0] == 200  # another client has its own budget
    finally:
        pair.close()


def test_a_hot_head_on_the_loop_costs_what_a_304_costs(make_app, sample_dir):
    """A HEAD sends no body: the front charged it as a full 200 (3 a minute: 3 HEADs, then 429s)."""
    app = make_app(sample_dir)
    app.extensions["feedsvc.limits"]["public"] = RateLimiter(3, clock=lambda: 0.0)  # no refill while the test runs
    pair = Both(app)
    try:
        first = pair.fronted_only(b"/feed.rss", "HEAD")  # loads the feed through Flask: a fifth, as on the loop
        assert first[0] == 200 and not first[3]
        for _ in range(11):  # 11 more on the loop: a fifth each, 2.4 in all
            status, _, body, by_front = pair.fronted_only(b"/feed.rss", "HEAD")
            assert (status, body, by_front) == (200, b"", True)
        assert [pair.fronted_only(b"/feed.rss", "HEAD")[0] for _ in range(4)][-1] == 429  # the budget still ends
    finally:
        pair.close()


def test_behind_a_proxy_the_budget_is_the_forwarded_clients_as_flask_takes_it(make_app, sample_dir):
    app = make_app(sample_dir, PROXY_HOPS=1)
    app.extensions["feedsvc.limits"]["public"] = RateLimiter(1, clock=lambda: 0.0)
    pair = Both(app)
    try:
        def forwarded(chain: bytes) -> tuple:
            return pair.fronted_only(b"/feed.rss", headers=[(b"x-forwarded-for", chain)])

        assert forwarded(b"1.1.1.1")[0] == 200  # through Flask (ProxyFix), loads the feed
        assert forwarded(b"1.1.1.1")[0] == 429
        status, _, _, by_front = forwarded(b"9.9.9.9, 2.2.2.2")  # the last hop is the client: 2.2.2.2's first
        assert status == 200 and by_front
        assert forwarded(b"2.2.2.2")[0] == 429  # its budget, spent on the loop, is the one Flask charges
    finally:
        pair.close()


def test_hot_requests_are_counted_in_the_metrics_with_the_subscribers_readers_report(both):
    feedly = (b"user-agent", b"Feedly/1.0 (+http://www.feedly.com/fetcher.html; 42 subscribers)")
    both.fronted_only(b"/feed.rss", headers=[(b"accept-encoding", b"gzip")])
    first = both.fronted_only(b"/feed.rss", headers=[(b"accept-encoding", b"gzip"), feedly])
    unmodified = both.fronted_only(b"/feed.rss", headers=[(b"accept-encoding", b"gzip"),
                                                          (b"if-none-match", first[1]["etag"].encode())])
    head = both.fronted_only(b"/feed.rss", "HEAD", headers=[(b"accept-encoding", b"gzip")])
    assert first[3] and unmodified[3] and head[3]
    text = both.app.extensions["feedsvc.metrics"].exposition().decode()
    assert 'feedsvc_http_requests_total{format="rss",kind="feed",status="200"} 3.0' in text
    assert 'feedsvc_http_requests_total{format="rss",kind="feed",status="304"} 1.0' in text
    assert f'feedsvc_http_response_bytes_total{{kind="feed"}} {2 * len(first[2])}.0' in text  # HEAD and 304 send none
    assert 'feedsvc_feed_subscribers{aggregator="feedly",feed="/feed.rss"} 42.0' in text


class _Sent:
    status, sent, headers = "200 OK", 8278, []


def _access_log() -> tuple[AccessLog, io.StringIO]:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", ACCESS_LOG_FORMAT)
    log = AccessLog(cfg)
    # gunicorn's handler alone, as in a server: pytest 9.2 and later also hang their capture handlers on loggers
    # that do not propagate, as gunicorn's do, and with those the access line rightly goes through logging.
    log.access_log.handlers = [h for h in log.access_log.handlers if getattr(h, "_gunicorn", False)]
    stream = io.StringIO()
    log.access_log.handlers[0].setStream(stream)
    return log, stream


@pytest.mark.parametrize("environ", [
    {"REQUEST_METHOD": "GET", "RAW_URI": "/feed.rss", "PATH_INFO": "/feed.rss", "SERVER_PROTOCOL": "HTTP/1.1",
     "REMOTE_ADDR": "127.0.0.1"},
    {"REQUEST_METHOD": "GET", "RAW_URI": "/category/%D8%B3/feed.rss?key=secret", "PATH_INFO": "/category/س/feed.rss",
     "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1", "HTTP_REFERER": "https://a.example/p?key=secret",
     "HTTP_USER_AGENT": 'evil\x1b[31m "quoted" \\ \u202e', "HTTP_AUTHORIZATION": "Bearer secret"},
])
def test_the_access_line_written_directly_is_the_one_logging_writes(environ):
    log, stream = _access_log()
    log.access(_Sent(), None, environ, None)
    direct = stream.getvalue()
    assert log._plain is not None  # gunicorn's own handler: written without logging's machinery
    def any_filter(record: logging.LogRecord) -> bool:
        return True

    log.access_log.addFilter(any_filter)  # a filter: through logging, as gunicorn does
    try:
        log.access(_Sent(), None, environ, None)
    finally:
        log.access_log.removeFilter(any_filter)
    through_logging = stream.getvalue()[len(direct):]
    log.cfg.set("access_log_format", ACCESS_LOG_FORMAT + " ")  # another format: every atom made, as gunicorn makes them
    log.access(_Sent(), None, environ, None)
    all_atoms = stream.getvalue()[len(direct) + len(through_logging):]
    assert direct == through_logging == all_atoms.replace(" \n", "\n") and direct.count("\n") == 1
    assert "secret" not in direct and "\x1b" not in direct and "\u202e" not in direct


def test_a_disabled_access_log_writes_nothing():
    log, stream = _access_log()
    logging.disable(logging.INFO)
    try:
        log.access(_Sent(), None, {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "RAW_URI": "/"}, None)
    finally:
        logging.disable(logging.NOTSET)
    assert stream.getvalue() == ""


def test_a_thread_that_opens_the_store_while_no_state_file_is_there_answers_503_not_500(make_app, sample_dir, tmp_path):
    """`rm state.sqlite3*` under a running server: a thread that had not opened the store yet (a worker gunicorn started
    anew) answered every request 500, with two tracebacks each (found in review), through the front and through Flask.
    A 503 with Retry-After, as before any build, until the builder has made the file again."""
    from feedsvc import create_app

    built = make_app(sample_dir, RATE_LIMIT=0)
    for committer in (o for o in built.extensions["feedsvc"].observers if isinstance(o, Committer)):
        committer.wait()
    serving = Both(create_app({"ARTICLES_DIR": str(sample_dir), "STATE_PATH": str(tmp_path / "state.sqlite3"),
                               "RATE_LIMIT": 0}, build=False))
    try:
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"state.sqlite3{suffix}").unlink(missing_ok=True)
        for (status, headers, body) in serving.ask(b"/feed.rss"):  # Flask alone, and the front first
            assert status == 503 and headers["retry-after"] == "5" and b"cannot be read now" in body, (status, body)
    finally:
        serving.close()


def test_any_other_fault_of_sqlite_in_a_request_stays_a_500_in_the_log(make_app, sample_dir, monkeypatch, caplog):
    """The 503 for a state file not there (above) took every sqlite3.OperationalError for one: a schema another feedsvc
    changed, a query too large, answered a silent 503 telling clients to come back (found in review)."""
    app = make_app(sample_dir, RATE_LIMIT=0)
    reader = app.extensions["feedsvc.store"]

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("no such column: made_by")
    monkeypatch.setattr(reader, "resource", broken)
    with caplog.at_level("ERROR"):
        res = app.test_client().get("/feed.rss")
    assert res.status_code == 500 and "no such column: made_by" in caplog.text

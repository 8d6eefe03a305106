"""The front: hot resources answered on the event loop, before the thread hop and Flask.

Under gunicorn's asyncio worker (feedsvc/serving/asgi.py) a GET or HEAD without a query, for a path Flask would route
to web.resource, whose resource is in the store reader's memory (feedsvc/store.py), is answered here: the
same status, headers and bytes as the Flask path (web.response_headers and web.not_modified, werkzeug's own
rule for what a 304 leaves out), the same rate-limit charge before any work, the same metrics; gunicorn
writes its access-log line as for any request. Each resource's header lists are made once per coding and
kept beside it in the reader's memory, so they go when a build changes it.

Everything else goes to Flask on a thread, as before: a resource not in memory (Flask's lookup puts it
there), a coding not read from the store (or made) yet, a browser opening a feed (its preview page), a client past its budget (the
429 and its message), ?page=, ?since=, partners, /healthz, /metrics, redirects and 404s. Before the store holds any
build (a cold start), a path Flask routes to web.resource is answered here with web's 503 and Retry-After.

The build version is looked at here, on the loop, once the reader's interval (20 ms) has passed since the last
look, so nothing is answered from a build older than that: one indexed read of a WAL database (about 11 µs),
on a connection that never waits for a lock. Looking on a thread instead cost more than it saved: the thread
had to win the GIL back from a busy loop several times per look (13 ms a look on average on this shared,
loaded machine, with requests waiting behind the late ones).
"""
from __future__ import annotations

import asyncio
import functools
import sqlite3
from concurrent.futures import Executor

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_list_header, remove_entity_headers
from werkzeug.routing import RequestRedirect

from ..preview import VARY as PREVIEW_VARY, is_navigation
from .asgi import date_now, path_info
from .metrics import SHORT_TYPES, kind_of
from .ratelimit import FULL_COST, NOT_MODIFIED_COST
from .web import FEED_PATH, FIRST_BUILD_RUNNING, budgeted, coding_for, content_type, not_modified, response_headers, text_headers

ENDPOINT = "feedsvc.resource"  # web.resource: any published resource by its path
ROUTES_KEPT = 1024  # request paths remembered with where Flask routes them
# The request headers the answer depends on, by their ASGI (lower-case) name; repeated fields join with ","
# as in the WSGI environ (asgi.py), so werkzeug would read the same values.
HEADERS = {b"accept-encoding": "Accept-Encoding", b"if-none-match": "If-None-Match",
           b"if-modified-since": "If-Modified-Since", b"accept": "Accept", b"sec-fetch-dest": "Sec-Fetch-Dest",
           b"user-agent": "User-Agent", b"x-forwarded-for": "X-Forwarded-For", b"if-match": "If-Match",
           b"if-unmodified-since": "If-Unmodified-Since"}
_NOT_ROUTED = object()


class Prepared:
    """What answering one resource in one coding takes, made on its first request (a 304's only: ok and body None,
    until a 200 in that coding has read the bytes)."""

    __slots__ = ("ok", "not_modified", "body", "kind", "fmt")

    def __init__(self, ok: list | None, not_modified: list, body: bytes | None, kind: str, fmt: str):
        self.ok, self.not_modified, self.body, self.kind, self.fmt = ok, not_modified, body, kind, fmt


class Front:
    """Answers hot store resources for WSGIOnThreads (asgi.py); None leaves a request to Flask."""

    def __init__(self, app: Flask):
        self.store = app.extensions["feedsvc.store"]
        self.limiter = app.extensions["feedsvc.limits"]["public"]
        self.metrics = app.extensions["feedsvc.metrics"]
        self.max_age = app.extensions["feedsvc.serving"].max_age
        self.hops = app.extensions["feedsvc.settings"].proxy_hops  # as ProxyFix (feedsvc/__init__.py) takes the client address
        self.urls = app.url_map.bind("localhost")
        self.routes: dict[tuple[str, bytes], str | None] = {}  # (root path, raw path) → store path, None: not ours
        self.answered = 0  # requests answered here (the rest went to Flask)

    async def __call__(self, scope: dict, executor: Executor) -> tuple[int, list, bytes] | None:
        method = scope["method"]
        if (method != "GET" and method != "HEAD") or scope.get("query_string"):
            return None
        key = (scope.get("root_path", ""), scope.get("raw_path") or scope["path"].encode("utf-8"))
        path = self.routes.get(key, _NOT_ROUTED)
        if path is _NOT_ROUTED:
            path = self._route(scope, key)
        if path is None:
            return None
        store = self.store
        if store.age() >= store.interval:  # look at the build version: one indexed read, a few µs, here on the loop
            try:
                store.current(force=True, quick=True)
            except sqlite3.OperationalError:  # the file is busy (being recovered): wait for it on a thread instead
                try:
                    await asyncio.get_running_loop().run_in_executor(executor, functools.partial(store.current, force=True))
                except sqlite3.Error:  # none at the path now (deleted, its folder gone): Flask's 503 says so
                    return None
        if not store.version:  # no build yet: every path is web.resource's 503 (a cold start, polled meanwhile)
            return self._first_build(scope, method, path)
        entry = store.cached(path)
        if entry is None:
            return None
        res, derived = entry
        asked = _asked(scope)
        feed = derived.get("feed")
        if feed is None:
            match = FEED_PATH.fullmatch(path)
            feed = derived["feed"] = match is not None
            derived["budgeted"] = budgeted(path, match)
        if feed and is_navigation(asked):  # a browser opening a feed: Flask shows the page about it
            return None
        if "If-Match" in asked or "If-Unmodified-Since" in asked:  # rare preconditions: Flask weighs them (web.respond)
            return None
        coding = coding_for(res, asked.get("Accept-Encoding", ""))
        unchanged = not_modified(res, asked.get("If-None-Match"), asked.get("If-Modified-Since"))
        prepared = derived.get(coding)
        if prepared is None or (prepared.body is None and not unchanged):
            if not unchanged and not res.loaded(coding):  # read from the store (or made) on its first request, on a thread
                return None
            prepared = derived[coding] = self._prepare(path, res, coding, feed)  # a 304's needs no bytes
        client = None
        if derived["budgeted"] and self.limiter.capacity > 0:  # feeds and the OPML lists: charged before any work
            client = self._client(scope, asked)
            if self.limiter.charge(client, NOT_MODIFIED_COST):
                return None  # past its budget: Flask charges nothing more and answers the 429
        if unchanged:
            status, headers, body = 304, prepared.not_modified, b""
        else:
            if client is not None and method != "HEAD":  # a HEAD sends no body, as a 304: it keeps a 304's price (web.respond)
                self.limiter.debit(client, FULL_COST - NOT_MODIFIED_COST)
            status, headers, body = 200, prepared.ok, prepared.body
        if method == "HEAD":
            body = b""
        self.metrics.observe_request(prepared.kind, prepared.fmt, status, len(body))
        if feed:
            self.metrics.observe_subscribers("/" + path, asked.get("User-Agent", ""))
        self.answered += 1
        return status, headers + [(b"date", date_now())], body

    def _first_build(self, scope: dict, method: str, path: str) -> tuple[int, list, bytes] | None:
        """web.resource's answer while the store holds no build, charged as Flask charges it: each poll through
        Flask took about 2 ms of the worker's CPU, taken from a cold start's builder on a small machine."""
        if budgeted(path, FEED_PATH.fullmatch(path)) and self.limiter.capacity > 0:
            if self.limiter.charge(self._client(scope, _asked(scope)), NOT_MODIFIED_COST):
                return None  # past its budget: Flask answers the 429
        sent = b"" if method == "HEAD" else _FIRST_BUILD_BODY
        self.metrics.observe_request(kind_of(path, None), "", 503, len(sent))
        self.answered += 1
        return 503, _FIRST_BUILD_HEADERS + [(b"date", date_now())], sent

    def _route(self, scope: dict, key: tuple[str, bytes]) -> str | None:
        """The store path of a request path that Flask routes to web.resource, else None; remembered."""
        # Decoded as werkzeug decodes PATH_INFO, so the rule matched is Flask's own.
        path = path_info(scope).encode("latin-1").decode("utf-8", "replace")
        try:
            endpoint, values = self.urls.match(path, method="GET")
        except (HTTPException, RequestRedirect):  # a 404, a 405 or a redirect: Flask says it
            endpoint, values = None, {}
        found = values["path"] if endpoint == ENDPOINT else None
        if found is not None and found.startswith("#"):  # the store's own keys are never a URL (web.resource)
            found = None
        if len(self.routes) >= ROUTES_KEPT:
            self.routes.clear()
        self.routes[key] = found
        return found

    def _prepare(self, path: str, res, coding: str | None, feed: bool) -> Prepared:
        """The 200's and the 304's headers as the Flask path sends them (web.respond), and the body; the 304's alone
        (ok and body None) while the bytes in that coding are not in memory."""
        headers = response_headers(res, coding, self.max_age, vary=PREVIEW_VARY if feed else None)
        unmodified = list(headers.items())
        remove_entity_headers(unmodified)  # what werkzeug leaves out of a 304
        kind, fmt = kind_of(path, res.media_type), SHORT_TYPES.get(res.media_type, "")
        if not res.loaded(coding):
            return Prepared(None, _coded(unmodified), None, kind, fmt)
        body = res.body if coding is None else res.coded(coding)  # in memory (loaded): no read, no coding made
        if coding is not None:
            headers["Content-Encoding"] = coding
        headers["Content-Type"] = content_type(res)
        headers["Content-Length"] = str(len(body))
        return Prepared(_coded(headers.items()), _coded(unmodified), body, kind, fmt)

    def _client(self, scope: dict, asked: dict) -> str:
        """The client's address as Flask sees it: the peer, or with PROXY_HOPS what ProxyFix takes from X-Forwarded-For."""
        client = scope.get("client")
        address = str(client[0]) if client else ""
        if self.hops and asked.get("X-Forwarded-For"):
            forwarded = parse_list_header(asked["X-Forwarded-For"])
            if len(forwarded) >= self.hops and forwarded[-self.hops]:
                address = forwarded[-self.hops]
        return address


def _asked(scope: dict) -> dict[str, str]:
    """The request headers the answer depends on (HEADERS), by their WSGI names, repeated fields joined."""
    asked = {}
    for name, value in scope["headers"]:
        field = HEADERS.get(name)
        if field is not None:
            text = value.decode("latin-1")
            asked[field] = asked[field] + "," + text if field in asked else text
    return asked


def _coded(headers) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


_FIRST_BUILD_BODY = FIRST_BUILD_RUNNING[0].encode("utf-8")
_FIRST_BUILD_HEADERS = _coded(text_headers(len(_FIRST_BUILD_BODY), FIRST_BUILD_RUNNING[1]).items())

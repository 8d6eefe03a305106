"""HTTP: look prepared bytes up in the build store and answer with the right headers.

Every process answers from the store (feedsvc/store.py), whoever builds: a request is a lookup of
bytes the builder committed, except what the README's "What is published" lists as made on a request: a feed
asked for by query (?page=, ?since=, a partner's view) or a search (feedsvc/serving/variants.py, searchfeed.py), a
coding the store does not hold, and an article page not committed yet; each from stored listings and articles,
never a parse.
Conditional GET per RFC 9110 §13: If-None-Match decides when present, else If-Modified-Since.
https://www.rfc-editor.org/rfc/rfc9110#section-13.2.2
"""
from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping
from urllib.parse import quote, unquote_to_bytes

from flask import Blueprint, Response, current_app, g, redirect, request
from werkzeug.http import parse_accept_header, parse_date, parse_etags

from ..config import section_name
from ..formats import CORS_TYPES, FORMATS
from ..partners import authenticate
from ..preview import VARY as PREVIEW_VARY, is_navigation
from ..resource import Rendered
from ..search import IndexBehindError
from ..searchtext import QueryError
from ..store import StoreReader, latest_on_disk
from ..urls import HEALTHZ, HTML_TYPE, ID_URL_MAX, OPML, OPML_ALL, PARTNERS, SEARCH, article_id, category_path, feed_path, feed_pattern, listing_key, matched_key, preview_key
from .ratelimit import FULL_COST, NOT_MODIFIED_COST, RateLimiter
from . import variants
from .variants import NotReadYetError

bp = Blueprint("feedsvc", __name__)

# Pages need nothing but their own stylesheet and images; no script runs anywhere.
HTML_POLICY = "default-src 'none'; style-src 'self'; img-src 'self' https: http: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
ENCODINGS = (("br", "br"), ("gzip", "gzip"))  # preferred first


def store() -> StoreReader:
    """The app's view of the build store."""
    return current_app.extensions["feedsvc.store"]


@dataclass(frozen=True)
class ServingOptions:
    """What the routes need of the settings (create_app makes it)."""

    max_age: int  # seconds a feed or page may be cached: the refresh interval
    articles_dir: Path  # named in no message: errors show paths relative to it
    category_slugs: Mapping[str, str] = field(default_factory=dict)  # CATEGORY_SLUGS: a typed name's configured slug


def options() -> ServingOptions:
    return current_app.extensions["feedsvc.serving"]


def max_age() -> int:
    return options().max_age


@bp.get("/" + HEALTHZ)
def healthz() -> Response:
    """The latest build's articles, feeds and skipped files; the builder's last success, error and running refresh;
    503 when stale, or when the state file cannot give the build served (store_build)."""
    build, unreadable = store_build()
    report = build[2] if build else {}
    status = builder_status()
    last_success = datetime.fromisoformat(status["last_success"]) if status and status["last_success"] else None
    age = (now_utc() - last_success).total_seconds() if last_success else None
    interval = max_age()
    # Stale: three refresh intervals without a successful refresh (RFC-less, but what load balancers act on).
    stale = age is None or age > 3 * interval or build is None
    running = status["refreshing"] if status else None
    if running is not None:  # as of when the builder last wrote its status: it has run since (or died), not stood still
        running = (running[0] + status["heard"], *running[1:])
    # Stuck: one refresh has taken longer than the interval between two; the feeds served may still be fresh.
    stuck = running is not None and running[0] > interval
    # Silent: the builder writes its status twice a second; not heard for SILENT_SECONDS, what it last wrote is no news
    # (its status file cannot be written on a full disk, or it died and nobody has taken over yet).
    silent = status is not None and status["heard"] > SILENT_SECONDS
    error = status["last_error"] if status else None
    # Failing: the last refresh failed (a state file made read-only, an articles folder gone): the last good build is
    # served, and within three intervals it is stale; "ok" beside an error told a monitor nothing was wrong meanwhile.
    failing = error is not None
    if silent and error is None:
        error = f"the builder (process {status['pid']}) has not been heard from for {status['heard']:.0f} s: its status " \
                "file cannot be written (a full disk?), or it stopped and no process has taken over yet"
    body = {
        "status": ("unreadable" if unreadable else "stale" if stale else "stuck" if stuck else "silent" if silent
                   else "failing" if failing else "ok"),
        "articles": report.get("articles", 0),
        "feeds": report.get("feeds", 0),
        "skipped": report.get("skipped", 0),
        "build": build[0] if build else None,
        "files_read": report.get("files_read"),
        # Articles a cold start has only placed so far: their text is still being read in the background, and
        # a request that needs one waits for it (made on demand, feedsvc/serving/variants.py); 0 once complete.
        "left_to_read": report.get("placed", 0),
        "last_refresh": last_success.isoformat() if last_success else None,
        "age_seconds": round(age, 3) if age is not None else None,
        "last_error": public_error(error or unreadable, options().articles_dir),  # the builder's first: it says more
        # A failure after the build was committed (the search index, metrics): the feeds are served, so no 503.
        "observer_error": public_error(status.get("observer_error") if status else None, options().articles_dir),
        "refreshing": None if running is None else {"seconds": round(running[0], 3), "file": running[1], "stuck": stuck},
        "builder": None if status is None else {"pid": status["pid"], "heard_seconds_ago": round(status["heard"], 3)},
    }
    return Response(json.dumps(body, ensure_ascii=False) + "\n", status=503 if stale or unreadable else 200,
                    mimetype="application/json", headers={"Cache-Control": "no-store"})


# What to do when the state file no longer holds the build served: the builder's words for a damaged file
# (building/state.py damaged), which serving may not import.
_STORE_FIX = ("stop feedsvc, then restore the state file from a backup, or move it aside with its -wal and -shm files to "
              "start afresh (the articles are then dated anew, by their files' modification times)")


def store_build() -> tuple[tuple[int, str, dict] | None, str | None]:
    """The latest build this process serves (None: none), and why the state file cannot give it now (None: it can)."""
    reader = store()
    try:
        build = reader.build()
    except sqlite3.DatabaseError as exc:  # its pages damaged under this process's connection
        return None, f"this process cannot read the build store ({exc}): {_STORE_FIX}"
    try:
        # The file itself, anew: a truncated or deleted file still answered on this process's kept connection, or
        # from its cache, while every request that read a row from it failed.
        on_disk = latest_on_disk(reader.path)
    except sqlite3.Error as exc:
        return build, f"the build store cannot be read from the state file ({exc}): it is damaged, emptied or gone; {_STORE_FIX}"
    if build is not None and on_disk < build[0]:
        return build, f"the state file holds build {on_disk or 'none'}, not build {build[0]} this process serves: it was " \
                      f"deleted or replaced while feedsvc ran; {_STORE_FIX}"
    return build, None


SILENT_SECONDS = 10  # twenty heartbeats (builder.HEARTBEAT_SECONDS) missed


def builder_status() -> dict | None:
    """This process's own status when it builds (building/builder.py start_building hooks it), else what the builder
    last wrote."""
    own = current_app.extensions.get("feedsvc.own_status")
    return own() if own is not None else current_app.extensions["feedsvc.status"].read()


# An absolute path in a message: a "/" that does not continue a word, a URL or a relative path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\",;:()]+")


def public_error(message: str | None, root: Path) -> str | None:
    """An error without the server's file-system layout: paths inside the articles folder made relative
    to it, the folder itself called ARTICLES_DIR, any other absolute path replaced by "<path>"."""
    if message is None:
        return None
    for base in sorted({str(root.absolute()), os.path.realpath(root)}, key=len, reverse=True):
        message = message.replace(base + os.sep, "").replace(base, "ARTICLES_DIR")
    return _ABSOLUTE_PATH.sub("<path>", message)


_KEYS = "|".join(FORMATS)  # rss|atom|json
FEED_PATH = feed_pattern(f.suffix for f in FORMATS.values())
_FORMAT_BY_SUFFIX = {f.suffix: key for key, f in FORMATS.items()}
# RFC 3339 §5.6 date-time: a full date, a time and an offset (a bare date or zone-less time is ambiguous).
# re.ASCII: \d is 0-9 only, never "²" or "٣", which int() and fromisoformat() treat differently.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
SPACED_OFFSET = re.compile(r"(?<=\d) (\d{2}:\d{2})$", re.ASCII)  # ?since=…T08:00:00+01:00 with its "+" unencoded
PAGE = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)  # bounded: int() of thousands of digits is slow, then refused
UNAUTHORIZED = ("Authentication required: send your partner key as `Authorization: Bearer <key>` "
                "or `?key=<key>`.\n")


class RequestError(Exception):
    """A request feedsvc cannot answer as asked: the status and a one-line body that says the fix."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@bp.before_request
def _utf8_query() -> None:
    """A query string that is not UTF-8 (raw bytes a client sent as they are) is a 400: werkzeug's parse of request.args
    raised UnicodeDecodeError, a 500 with a traceback for /feed.rss?x=\\xff."""
    if request.method == "OPTIONS" or request.endpoint == "feedsvc.healthz":  # neither reads the query
        return
    try:
        request.query_string.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(400, "Bad query: it is not UTF-8; send it percent-encoded.\n") from None


@bp.errorhandler(RequestError)
def _request_error(exc: RequestError) -> Response:
    if exc.status == 404 and not store().current():  # no build yet: nothing is known to be missing
        return _text(503, *FIRST_BUILD_RUNNING)
    if exc.status == 404 and _partial():  # a first build's feeds only: its pages, sitemaps and listings are coming
        if not _whole_within(variants.WAIT_SECONDS):  # the bound any request waits for the builder
            return _text(503, *PAGES_COMING)
        try:  # the build that holds them came while this request waited: asked again of it
            return current_app.make_response(current_app.dispatch_request())
        except Exception as again:  # as Flask would have answered it: its handler here (a 404 now a 404), else a 500
            return current_app.make_response(current_app.handle_user_exception(again))
    return _text(exc.status, exc.message, exc.headers)


def _partial() -> bool:
    """Whether the store's latest build is a deployment's feeds-first build (its report says so): asked on a miss only."""
    build = store().build()
    return build is not None and bool(build[2].get("partial"))


def _whole_within(seconds: float) -> bool:
    """Wait up to `seconds` for the store's latest build to be whole (no longer a feeds-first build); whether it is,
    the reader then looking at that build."""
    reader, deadline = store(), time.monotonic() + seconds
    while (partial := _partial()) and time.monotonic() < deadline:
        time.sleep(reader.interval)
    reader.current(force=True)
    return not partial


@bp.app_errorhandler(405)
def _method_not_allowed(exc) -> Response:
    """A method no route takes (a POST, a PUT): said in text, not cached, as every other error is."""
    allowed = ", ".join(sorted(exc.valid_methods or ("GET", "HEAD", "OPTIONS")))
    return _text(405, f"Method Not Allowed: {request.method}; this site answers {allowed}.\n", {"Allow": allowed})


@bp.after_request
def _preflight(response: Response) -> Response:
    """A browser's CORS preflight for a feed or feed list (a script's conditional GET sends If-None-Match, which it must
    ask leave for: https://fetch.spec.whatwg.org/#cors-preflight-fetch): Flask's own OPTIONS answer, with that leave;
    and an error answer of one, readable by a script on another origin."""
    preflight = request.method == "OPTIONS" and response.status_code == 200
    refused = response.status_code >= 400 and "Access-Control-Allow-Origin" not in response.headers
    if not preflight and not refused:
        return response
    path = request.path.lstrip("/")
    search_feed = path.startswith(SEARCH) and path[len(SEARCH):] in _SEARCH_FEEDS  # a search's feeds are subscribed to too
    # A partner's feeds take the key as `Authorization: Bearer` too, a header a script must ask leave for (no wildcard
    # grants it: https://fetch.spec.whatwg.org/#http-access-control-allow-headers); without it only ?key= reached them.
    partner_feed = path.startswith(PARTNERS) and FEED_PATH.fullmatch(path[len(PARTNERS):]) is not None
    if not (budgeted(path, FEED_PATH.fullmatch(path)) or search_feed or partner_feed):
        return response
    if preflight:
        response.headers.update({"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD",
                                 "Access-Control-Allow-Headers": ("Authorization, " if partner_feed else "") + "If-None-Match, If-Modified-Since",
                                 "Access-Control-Max-Age": "86400"})
    else:  # a 429, 401, 404 or 503 a script must be able to read too, Retry-After and all, or it sees a network error
        response.headers.update({"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"})
    return response


@bp.errorhandler(sqlite3.OperationalError)
def _store_unreadable(exc: sqlite3.OperationalError) -> Response:
    """A thread that opens the state file while there is none at STATE_PATH (deleted, its folder gone, a builder making
    it anew): a 503 to come back to, not a 500 and two tracebacks a request; /healthz says why. Any other fault of SQLite
    (a schema another feedsvc changed, a query too large) stays a 500 with its traceback in the log."""
    if "unable to open database file" not in str(exc) and os.path.exists(store().path):
        raise exc
    return _text(503, "Service Unavailable: the build store cannot be read now (the state file is being replaced); try "
                      "again in a few seconds.\n", {"Retry-After": "5"})


@bp.errorhandler(NotReadYetError)
def _not_read_yet(exc: NotReadYetError) -> Response:
    return _text(503, str(exc), {"Retry-After": "1"})


@bp.get(f"/{PARTNERS}<path:path>")
def partner_resource(path: str) -> Response:
    """A partner's feeds: full text of its licensed categories, for its key only."""
    partner = authenticate(current_app.extensions["feedsvc.partners"], _presented_key())
    if partner is None:  # the same answer for every path, so nothing is learnt without a key
        _charge("public", _client_address()).full_response()  # guessing keys costs the address's budget
        return _text(401, UNAUTHORIZED, {"WWW-Authenticate": 'Bearer realm="feedsvc partners"'})
    charge = _charge("partner", "partner:" + partner.name)  # before any work: a 429 renders nothing
    match = FEED_PATH.fullmatch(path)
    if match is None:
        raise RequestError(404, f"Not found: /{PARTNERS}{path}\nYour feeds are /{PARTNERS}feed.<{_KEYS}> and "
                                f"/{PARTNERS}{category_path('<slug>')}feed.<{_KEYS}> (tag/<slug>/ and author/<slug>/ likewise).\n")
    key = matched_key(match)
    stored = store().listing(key)
    if stored is None:
        raise RequestError(404, f"Not found: no {match['kind'] or 'category'} {match['slug'] or ''!r}.\n")
    category = stored[0].category
    if category is not None and category.kind == "category" and not partner.licenses(category.name):
        raise RequestError(403, f"Your agreement does not include the category {category.name!r}.\n")
    page, since, after = _paging()
    found = current_app.extensions["feedsvc.variants"].get(key, _FORMAT_BY_SUFFIX[match["suffix"]], page=page, since=since,
                                                           after=after, partner=partner)
    if found is None:
        raise RequestError(404, f"Not found: page {page} of this feed.\n")
    return respond(found, max_age(), charge=charge, private=True)


_SEARCH_FEEDS = {feed_path("", key): key for key in FORMATS}  # feed.rss → rss, under /search/


@bp.get(f"/{SEARCH}", defaults={"name": ""})
@bp.get(f"/{SEARCH}<name>")
def search(name: str) -> Response:
    """The newest articles matching ?q= (feedsvc/search.py), as a feed or a page; budgeted like every feed. A browser
    opening a search feed gets its page for browsers, as at every feed's URL (preview.py); feed readers get the feed."""
    fmt = _SEARCH_FEEDS.get(name, "html" if not name else None)
    if fmt is None:
        raise _not_found(SEARCH + name)
    charge = _charge("public", _client_address())
    feed = fmt != "html"
    try:
        found = current_app.extensions["feedsvc.variants"].search(_search_words(), fmt,
                                                                  browser=feed and is_navigation(request.headers))
    except QueryError as exc:
        raise RequestError(400, f"{exc}\n") from None
    except IndexBehindError:
        raise RequestError(503, "Search is catching up with the latest articles (a new deployment indexes them all); "
                                "try again in a few seconds.\n", {"Retry-After": "2"}) from None
    if found is None:
        raise RequestError(404, "Not found: nothing is published yet; search again after the first build.\n")
    return respond(found, max_age(), charge=charge, vary=PREVIEW_VARY if feed else None)


def _search_words() -> str:
    """?q= as sent; a QueryError when its percent-escapes are not UTF-8 (werkzeug keeps "%FF%FE" as those six
    characters: a form in windows-1256 was searched for the words ff and fe, its self link no longer the request's)."""
    for pair in request.query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) == b"q":  # %71 is q to werkzeug too
            try:
                unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                raise QueryError("Bad search: ?q= is not UTF-8; send the words percent-encoded as UTF-8.") from None
            break
    return request.args.get("q", "")


@bp.get("/", defaults={"path": ""})
@bp.get("/<path:path>")
def resource(path: str) -> Response:
    """Any published resource by its path; feeds also by page and since; anything else is a 404."""
    match = FEED_PATH.fullmatch(path)
    # Feeds and the OPML are budgeted, charged before any work: past the budget nothing is looked up or rendered.
    charge = _charge("public", _client_address()) if budgeted(path, match) else None
    if match is not None and ("page" in request.args or "since" in request.args or "after" in request.args):
        page, since, after = _paging()
        if page == 1 and since is None:  # the first page has one URL, the one its self link names (RFC 5005)
            if store().resource(path) is None:  # a feed nobody publishes: its 404 (a 503 before the first build), not a
                return _moved_or_not_found(path)  # permanent redirect to one (but to the feed a typed path names)
            moved = _moved_to(path, query=False)
            # A script elsewhere follows it only if it passes the CORS check too (https://fetch.spec.whatwg.org/#http-fetch).
            moved.headers["Access-Control-Allow-Origin"] = "*"
            return moved
        found = current_app.extensions["feedsvc.variants"].get(matched_key(match), _FORMAT_BY_SUFFIX[match["suffix"]], page=page,
                                                               since=since, after=after)
        if found is None:
            if (spelled := _listing_as_published(path)) is not None:  # its pages and deltas at the feed's own path
                return _moved_to(spelled)
            raise RequestError(404, f"Not found: /{path} has no such page (page {page}).\n")
        g.feedsvc_found = found
        return respond(found, max_age(), charge=charge)
    try:
        return _published(path, match, charge)
    except LookupError:  # a build replaced the bytes this request was reading (Rendered.stored): the new ones
        store().current(force=True)
        return _published(path, match, charge)


def _published(path: str, match: re.Match | None, charge: Charge | None) -> Response:
    """The answer for a resource the store (or, for an article page not committed yet, the variants) has."""
    found = None if path.startswith("#") else store().resource(path)  # "#…": the store's own keys
    if found is None and article_id(path) is not None:  # published, its page not committed yet (a cold start)
        found = current_app.extensions["feedsvc.variants"].article_page(article_id(path))
    if found is None:
        if store().resource(path + "/") is not None:  # /category/x → /category/x/
            return _moved_to(path + "/")
        return _moved_or_not_found(path)
    g.feedsvc_found = found
    if match is not None:  # a browser opening a feed gets a page about it; feed readers get the feed (preview.py)
        shown = (is_navigation(request.headers) and store().resource(preview_key(path))) or found
        return respond(shown, max_age(), charge=charge, vary=PREVIEW_VARY)
    return respond(found, max_age(), charge=charge)


def _listing_as_published(path: str) -> str | None:
    """The path of a category's, tag's or author's page or feed typed the way its name is written, not as its slug
    writes it (harakat, tatweel, presentation forms, a space for a hyphen: by hand, or copied from a printed name), when
    the listing at the slug that spelling makes (CATEGORY_SLUGS' for a category configured so) is named so; else None. Only on a miss: a published path is answered as
    it is. The names must be the same, marks and separators aside, letter case included: where two names share a slug
    (technology and Technology), the second has a hashed one and /category/Technology/ is not the first's (found in
    review)."""
    kind, _, rest = path.partition("/")
    segment, slash, tail = rest.partition("/")
    if kind not in ("category", "tag", "author") or not segment:
        return None
    from ..slugs import own_slug  # here: python-slugify only for such a miss, not in every serving worker

    typed = section_name(segment)
    configured = options().category_slugs.get(typed) if kind == "category" else None
    slug = configured or own_slug(typed)
    if slug == segment:
        return None
    found = store().listing(listing_key(kind, slug))
    named = found[0].category.name if found is not None and found[0].category is not None else None
    if named is None or _SEPARATORS.sub(" ", section_name(named)) != _SEPARATORS.sub(" ", typed):
        return None
    spelled = f"{kind}/{slug}/{tail}"
    return spelled if store().resource(spelled) is not None else None


def _moved_or_not_found(path: str) -> Response:
    """A miss: the 301 to the listing a typed path names (_listing_as_published), else the 404."""
    if (spelled := _listing_as_published(path)) is not None:  # /category/الرِّياضة/ → /category/الرياضة/
        return _moved_to(spelled)
    raise _not_found(path)


def _moved_to(path: str, query: bool = True) -> Response:
    """A 301 to another path of this site, with the request's query unless told not to."""
    kept = request.query_string.decode("latin-1") if query else ""
    return redirect(request.root_path + "/" + quote(path, safe="/") + (f"?{kept}" if kept else ""), code=301)


_SEPARATORS = re.compile(r"[\s-]+")  # what a slug makes one hyphen of, in a typed name and in the listing's


def budgeted(path: str, match: re.Match | None) -> bool:
    """Whether a request for this path (match: FEED_PATH's) is charged to the client's budget: the feeds and the OPML lists."""
    return match is not None or path in (OPML, OPML_ALL)


class Charge:
    """A request let in on a 304's price; a full response (a 200 to a GET) then takes the rest (into debt if need be)."""

    def __init__(self, limiter: RateLimiter, client: str):
        self.limiter, self.client = limiter, client

    def full_response(self) -> None:
        """The answer carries a body: charge the rest of a full request."""
        self.limiter.debit(self.client, FULL_COST - NOT_MODIFIED_COST)


def _charge(limiter: str, client: str) -> Charge:
    """Charge a 304's price now, or stop with a 429, before any parsing or rendering."""
    budget = current_app.extensions["feedsvc.limits"][limiter]
    wait = budget.charge(client, NOT_MODIFIED_COST)
    if wait:
        raise RequestError(429, f"Too many requests: try again in {wait} s; conditional requests (304) and HEAD cost a fifth.\n",
                           {"Retry-After": str(wait)})
    return Charge(budget, client)


def _client_address() -> str:
    return request.remote_addr or ""


def respond(res: Rendered, max_age: int, *, charge: Charge | None = None, private: bool = False,
            vary: str | None = None) -> Response:
    """A 200 or 304 for a rendered resource, with validators, caching and content coding."""
    coding = coding_for(res, request.headers.get("Accept-Encoding", ""))
    headers = response_headers(res, coding, max_age, private=private, vary=vary)
    if precondition_failed(res, request.headers.get("If-Match"), request.headers.get("If-Unmodified-Since")):
        return _text(412, "Precondition Failed: this resource is not the version If-Match or If-Unmodified-Since names; "
                     "GET it without them for the current one.\n")
    if not_modified(res, request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since")):
        return Response(status=304, headers=headers)  # werkzeug leaves out the body's own headers (remove_entity_headers)
    body = res.coded(coding) if coding else res.body  # first: read from the store, it may raise LookupError (resource)
    if charge is not None and request.method != "HEAD":  # a HEAD sends no body, as a 304: it keeps a 304's price
        charge.full_response()
    if coding:
        headers["Content-Encoding"] = coding
    return Response(body, status=200, headers=headers, content_type=content_type(res))


def response_headers(res: Rendered, coding: str | None, max_age: int, *, private: bool = False,
                     vary: str | None = None) -> dict[str, str]:
    """The headers of a 200 or 304 for res in a coding (None: identity), before the body's own
    (Content-Encoding, Content-Type, Content-Length); feedsvc/serving/front.py sends the same."""
    headers = {
        "ETag": res.etag if coding is None else res.etag[:-1] + "-" + coding + '"',
        "Last-Modified": res.http_date,
        "Cache-Control": f"{'private' if private else 'public'}, max-age={res.max_age or max_age}",
        "Vary": vary or ("Accept-Encoding, Authorization" if private else "Accept-Encoding"),
        "X-Content-Type-Options": "nosniff",
    }
    headers.update(res.headers)
    if res.media_type in CORS_TYPES:
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Access-Control-Expose-Headers"] = "ETag"  # a script's conditional GET needs it (not CORS-safelisted)
    if res.media_type == HTML_TYPE:
        headers["Content-Security-Policy"] = HTML_POLICY
    return headers


def content_type(res: Rendered) -> str:
    return res.media_type + ("" if res.media_type.startswith("image/") else "; charset=utf-8")  # the favicon is not text


def _presented_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.args.get("key")


def _paging() -> tuple[int, datetime | None, tuple[datetime, str] | None]:
    """?page=N (a whole number from 1), ?since=<RFC 3339 instant> and a delta's ?after=<instant>,<id> (where the page
    before ended: paging.since_feed), or a 400 that shows the form."""
    raw_page = request.args.get("page", "1")
    if not PAGE.fullmatch(raw_page):
        raise RequestError(400, f"Bad page {raw_page[:40]!r}: expected ?page=N with N a whole number from 1.\n")
    since = after = None
    if "since" in request.args:
        since = _instant_arg("since", "?since=2026-11-29T08:00:00Z")
    if "after" in request.args:
        raw = request.args["after"]
        moment, comma, id_ = raw.partition(",")
        if since is None or "page" in request.args or not comma or not id_ or len(id_) > ID_URL_MAX:
            raise RequestError(400, f"Bad after {raw[:60]!r}: it continues a delta where its page before ended, as that "
                                    "page's next link says: ?since=<instant>&after=<instant>,<id>, without ?page=.\n")
        after = (_instant_arg("after", "?since=…&after=2026-11-29T08:00:00.000001Z,<id>", moment), id_)
    return int(raw_page), since, after


def _instant_arg(name: str, example: str, raw: str | None = None) -> datetime:
    """A query's RFC 3339 instant (?since=, ?after=), or a 400 that shows the form."""
    # An offset's "+" sent unencoded reads as a space (application/x-www-form-urlencoded): taken as the "+" it was.
    raw = SPACED_OFFSET.sub(r"+\1", request.args[name] if raw is None else raw)
    try:
        return _rfc3339_instant(raw)
    except (ValueError, OverflowError):  # OverflowError: an instant past year 9999 or before year 1 in UTC
        raise RequestError(400, f"Bad {name} {raw[:60]!r}: expected an RFC 3339 instant with a zone, "
                                f"such as {example}.\n") from None


def _rfc3339_instant(raw: str) -> datetime:
    """An RFC 3339 date-time (RFC3339's form) as an instant in UTC; ValueError when it is none."""
    if not RFC3339.fullmatch(raw):
        raise ValueError(raw)
    text = raw.upper().replace("Z", "+00:00").replace(" ", "T")
    # time-second 60 is a leap second (https://www.rfc-editor.org/rfc/rfc3339#section-5.6, §5.7), which a datetime cannot
    # hold: read as the last instant of its minute a datetime holds (hh:mm:59.999999), not the next minute's :00, so an
    # item dated at that :00 (where anything published during the leap second is dated) is still after it: none is lost.
    leap = text[17:19] == "60"
    instant = datetime.fromisoformat(text[:17] + "59" + text[19:] if leap else text)
    # In UTC: one instant written with any offset is one delta, its links and bytes the same in every process
    # (each process kept the spelling it was first asked in).
    return (instant.replace(microsecond=999_999) if leap else instant).astimezone(timezone.utc)


def coding_for(res: Rendered, accept_encoding: str) -> str | None:
    """The coding to send res in (encoding_for), none for an image: it compresses itself, and gzip made the favicon 10
    bytes larger (nginx sends the exported file as it is: building/precompress.py)."""
    return None if res.media_type.startswith("image/") else encoding_for(accept_encoding)


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct Accept-Encoding values
def encoding_for(header: str) -> str | None:
    """The coding to send for an Accept-Encoding (None: the bytes as they are): the one the client prefers, a compressed
    one on a tie; identity when the client ranks it above every coding (`gzip;q=0.1, identity`), RFC 9110 §12.5.3."""
    accepted = parse_accept_header(header)
    best, best_q = None, 0.0
    for name, attr in ENCODINGS:
        q = accepted[name] if name in accepted else accepted["x-gzip"] if name == "gzip" and "x-gzip" in accepted else 0.0
        if q > best_q:
            best, best_q = attr, q
    if best is not None and "identity" in accepted and accepted["identity"] > best_q:  # named, or under "*"
        return None
    return best


def precondition_failed(res: Rendered, im: str | None, ius: str | None) -> bool:
    """Whether If-Match or If-Unmodified-Since fails for res: a 412 before any 304 (RFC 9110 §13.2.2, steps 1 and 2)."""
    if im is not None:  # strong comparison (§13.1.1): a weak tag never matches
        tags = parse_etags(im)
        return not tags.star_tag and not any(f'"{tag}"' in res.validators for tag in tags.as_set() if tag)
    since = _http_date(ius)
    return since is not None and res.last_modified.replace(microsecond=0) > since


def _http_date(value: str | None) -> datetime | None:
    """An If-(Un)Modified-Since date in UTC; None for none, several (repeated fields joined), or one that is no HTTP-date
    or lies past what a datetime holds: each is ignored (RFC 9110 §13.1.3, §13.1.4)."""
    if value is None or value.count(",") > 1:
        return None
    try:
        since = parse_date(value)
        return None if since is None else since.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def not_modified(res: Rendered, inm: str | None, ims: str | None) -> bool:
    """Whether a request with these If-None-Match and If-Modified-Since values gets a 304 for res."""
    if inm is not None:
        if inm in res.validators:  # the usual case: one tag, ours, as we sent it
            return True
        tags = parse_etags(inm)
        if tags.star_tag:
            return True
        # Weak comparison (RFC 9110 §8.8.3.2) with the tags this resource is sent with in any coding (Rendered.validators):
        # one representation, so a cache holding another coding's revalidates too. An empty tag ("") is valid and ours
        # never (werkzeug gives None for it).
        return any(f'"{tag}"' in res.validators for tag in tags.as_set(include_weak=True) if tag)
    since = _http_date(ims)
    # A date later than now is none we sent (no Last-Modified is later than its Date): one from before the clock stepped
    # back, or a client's own; ignored, as RFC 2616 §14.25 said, or the bytes dated since would never reach that client.
    return since is not None and res.last_modified.replace(microsecond=0) <= since <= now_utc()



def _not_found(path: str) -> RequestError:
    """The 404 of a path nothing is published at, naming where the feeds are; raised like every other error, so
    _request_error alone decides (a 503 while the store holds no build)."""
    return RequestError(404, f"Not found: /{path}\n" + _WHERE_THE_FEEDS_ARE)


FIRST_BUILD_RETRY = 5  # seconds: a cold start's first build takes about that at 10,000 articles on two cores
# Before the store holds any build (a cold start's first is running) nothing is known to be missing: a 503 with
# Retry-After, not a 404 that aggregators may take for a feed gone (RFC 9110 §15.6.4). front.py sends the same.
# Readable by a script on another origin polling a feed (any path: front.py answers it before routing), Retry-After too.
FIRST_BUILD_RUNNING = ("Service Unavailable: the first build of the articles is still running; every feed answers once it "
                       f"is committed. Try again in {FIRST_BUILD_RETRY} s.\n",
                       {"Retry-After": str(FIRST_BUILD_RETRY), "Access-Control-Allow-Origin": "*",
                        "Access-Control-Expose-Headers": "Retry-After"})


# A deployment's first build of a big folder commits its feeds first, its pages and sitemaps a moment later
# (building/site.py Publisher.feeds_first): meanwhile a path that build lacks may be one of them.
PAGES_COMING = ("Service Unavailable: the feeds are published; the pages of the first build are being made. Try again in "
                "1 s.\n", {"Retry-After": "1"})
# A miss meanwhile waits for them as long as a request waits for articles (variants.WAIT_SECONDS; the pages follow the
# feeds by 0.2-0.5 s at 10,000 articles) and is asked again of the whole build: a reader that came early gets the page.


def text_headers(length: int, headers: dict | None = None) -> dict[str, str]:
    """The headers of a short plain-text answer (_text) of `length` bytes, as Flask sends them."""
    return {**_TEXT_HEADERS, **(headers or {}), "Content-Type": "text/plain; charset=utf-8", "Content-Length": str(length)}


def _listed(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


_SUFFIXES = [f.suffix for f in FORMATS.values()]
_WHERE_THE_FEEDS_ARE = (f"The site-wide feeds are {_listed(['/' + feed_path('', fmt) for fmt in FORMATS])}; each category's are "
                        f"/{_listed([feed_path('<slug>', next(iter(FORMATS)))] + _SUFFIXES[1:])}, each tag's "
                        f"/{feed_path(listing_key('tag', '<slug>'), next(iter(FORMATS)))} and each author's "
                        f"/{feed_path(listing_key('author', '<slug>'), next(iter(FORMATS)))} likewise; /{OPML} lists the "
                        f"sections' feeds, /{OPML_ALL} every feed, and / links every category.\n")


_TEXT_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _text(status: int, text: str, headers: dict | None = None) -> Response:
    return Response(text, status=status, content_type="text/plain; charset=utf-8", headers={**_TEXT_HEADERS, **(headers or {})})


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)

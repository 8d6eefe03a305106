"""A feed opened in a browser: who gets a page about the feed instead of its bytes, and that page.

Browsers apply no XSLT to application/rss+xml (Chromium shows the text, Firefox offers a download) and
Chromium is removing XSLT, so a browser's navigation to a feed gets HTML; feed readers keep the feed.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Mapping, Protocol

from .formats import FORMATS
from .formats.pages import render_preview
from .model import Feed, Site
from .resource import Rendered
from .urls import HTML_TYPE


class Snapshot(Protocol):
    """What a preview needs of the builder's snapshot (building/site.py): its resources by URL path."""

    resources: Mapping[str, Rendered]


# What the answer at a feed's URL depends on, so caches keep the page and the feed apart (RFC 9110 §12.5.5).
VARY = "Accept-Encoding, Sec-Fetch-Dest, Accept"
# Types a feed reader asks for; a browser's navigation ranks text/html above all of them.
FEED_TYPES = tuple(f.media_type for f in FORMATS.values()) + ("application/xml", "text/xml", "application/json")
_FORMAT_BY_TYPE = {f.media_type: key for key, f in FORMATS.items()}
KEEP = 128  # previews kept: a few per feed, each rendered once per feed version

_made: OrderedDict[tuple, Rendered] = OrderedDict()
_made_lock = threading.Lock()


def is_navigation(headers: Mapping[str, str]) -> bool:
    """Whether a request is a browser opening a page: Sec-Fetch-Dest says so, or, without it, Accept prefers HTML.

    Fetch Metadata (https://www.w3.org/TR/fetch-metadata/#sec-fetch-dest-header) is sent only to HTTPS and
    localhost, so over plain HTTP the browser is told by its Accept header. Feed readers (feedparser, reader,
    newsboat, curl) send no Sec-Fetch-Dest and never rank text/html above the feed types.
    """
    dest = headers.get("Sec-Fetch-Dest")
    if dest is not None:
        return dest == "document"
    return _prefers_html(headers.get("Accept", ""))


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct Accept values
def _prefers_html(accept: str) -> bool:
    from werkzeug.http import parse_accept_header  # here: the builder renders previews and never loads werkzeug (11 MiB)

    ranges = [(value.lower(), q) for value, q in parse_accept_header(accept)]
    return _quality(ranges, HTML_TYPE) > max(_quality(ranges, media) for media in FEED_TYPES)


def _quality(ranges: list[tuple[str, float]], media: str) -> float:
    """The q of the most specific range that matches (RFC 9110 §12.5.1): type/subtype, then type/*, then */*."""
    kind = media.split("/")[0]
    best, best_rank = 0.0, -1
    for value, q in ranges:
        rank = 2 if value == media else 1 if value == kind + "/*" else 0 if value == "*/*" else -1
        if rank > best_rank:
            best, best_rank = q, rank
    return best


def preview_page(snapshot: Snapshot, site: Site, path: str, keep: bool = True) -> Rendered | None:
    """The page shown for the public feed at path (its first page), or None if path is not one.

    Keyed by the feed's ETag and Last-Modified (a JSON Feed carries no date of its own, so the same bytes
    can have another recorded time in another deployment): made on the first navigation after the feed
    changed, then only looked up. keep=False: made, not kept (the builder commits pages it never serves).
    """
    found = snapshot.resources.get(path)
    if found is None or found.media_type not in _FORMAT_BY_TYPE:
        return None
    key = (site, path, found.etag, found.last_modified)
    with _made_lock:
        page = _made.get(key)
        if page is not None:
            _made.move_to_end(key)
            return page
    by_path = snapshot.memo.get("feeds by path")
    if by_path is None:  # hundreds of tag and author feeds: found by path, not by a walk through them all
        by_path = snapshot.memo["feeds by path"] = {f.path(fmt): f for f in snapshot.feeds for fmt in FORMATS}
    feed = by_path.get(path)
    fmt = _FORMAT_BY_TYPE[found.media_type]
    if feed is None or feed.path(fmt) != path:
        return None
    page = feed_page(feed, fmt, site, found.last_modified)
    if not keep:
        return page
    with _made_lock:
        _made[key] = page
        while len(_made) > KEEP:
            _made.popitem(last=False)
    return page


def feed_page(feed: Feed, fmt: str, site: Site, last_modified: datetime) -> Rendered:
    """The page for browsers of a feed in a format, dated as the feed is (last_modified: its Last-Modified)."""
    # Pages compress on their first request; Last-Modified is the feed's: the page changes when it does.
    return Rendered(render_preview(feed, fmt, site), HTML_TYPE, last_modified, precompress=False)

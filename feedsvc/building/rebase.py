"""A deployment moved to another SITE_URL republishes its last build there first, before its first build.

Every link of every feed names the site, so a move (another port, https, another host) makes every feed new
bytes, and the builder's first build renders them all again from the articles: about 1.5 s at 10,000 articles,
10 s at 100,000, while the site serves the old build, whose feed lists send readers to the old address. A
restart cannot answer before that the way it does at the same URL (the store is open, the site answers).

So the builder first writes, in one build of its own, the feeds, the two feed lists, the home and section pages
and the feeds' pages for browsers as the stored build has them, with the old URL replaced by the new one. That
is what rendering them at the new URL gives: every URL the site publishes is SITE_URL + "/" + a path (urls.py),
spelled alike in XML, HTML and JSON when SITE_URL holds no character any of them escapes (PLAIN), and nothing
else of theirs depends on it (the key compared, made from the code and every other setting, says so). Each is
dated as a render would date it (the state store's versions, by its bytes without their date), so the first
build, which renders everything at the new URL as ever, finds the same bytes, dates and ETags. What it finds
otherwise (the old address typed as text in an article: a render keeps it, this rewrites it) it replaces, as
any build does. The article pages, sitemaps and robots.txt follow with that build, as before.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import re
from dataclasses import replace
from datetime import datetime
from typing import Callable, Mapping

from ..formats import FORMATS, OPML_TYPE, RSS_TYPE
from ..resource import Rendered
from ..urls import HTML_TYPE, PREVIEW

# What a republish rewrites, by media type: the feeds, the OPML lists and the HTML pages but the articles' (the
# home, sections and feeds' pages for browsers). Static files, sitemaps and robots.txt are the first build's.
MEDIA_TYPES = (*(spec.media_type for spec in FORMATS.values()), OPML_TYPE, HTML_TYPE)
# An absolute http(s) URL of letters, digits and "-._~:/[]" only: spelled alike in every format (no "&", "%", quote or
# non-ASCII letter any of them escapes or encodes), so replacing it is what rendering with the other would give.
PLAIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(?:/[A-Za-z0-9._~/-]*)?")


def moved_from(report: Mapping | None, site_url: str, key: str) -> str | None:
    """The URL the stored build (its report) was made at, when republishing it at site_url gives what rendering
    would: made with the same key (the code and every other setting), at another URL, both PLAIN. Else None."""
    old = (report or {}).get("site_url")
    if not old or old == site_url or report.get("rebase_key") != key:
        return None
    return old if PLAIN.fullmatch(old) and PLAIN.fullmatch(site_url) else None


def in_first(path: str, media: str) -> bool:
    """Whether a republish puts this resource in its first build: a feed list, a feed the lists name (by its RSS,
    formats/opml.py) or that feed's page for browsers, which a browser gets at the feed's URL (preview.py). A quarter
    of the bytes at 10,000 articles: a reader importing a list finds every feed it names at the new URL 0.2 s sooner
    than after one build of them all. The other formats and the pages follow in a second build."""
    return media in (OPML_TYPE, RSS_TYPE) or (path.startswith(PREVIEW) and path.endswith(FORMATS["rss"].suffix))


def rebase(body: bytes, old: str, new: str) -> bytes | None:
    """The bytes with every link to the site at old made a link to the site at new; None when old appears other
    than as a link's start (old + "/"), which a replacement could not tell from text."""
    before, after = old.encode() + b"/", new.encode() + b"/"
    if body.count(old.encode()) != body.count(before):
        return None
    return body.replace(before, after)


def republished(rows: list[tuple], old: str, new: str, record: Callable[[Mapping[str, str]], Mapping[str, datetime]]
                ) -> dict[str, Rendered]:
    """These resources (path, media type, Last-Modified, max_age, headers, body: of MEDIA_TYPES, no article page) at
    new, by path; record(path → digest of the bytes without their date) dates them (the state store's versions)."""
    from ..formats.opml import date_opml  # here: a serving process imports this module (with builder.py), not the writers

    # The date functions by media type: a feed's or feed list's bytes are dated after rendering (content.redate).
    dating = {**{spec.media_type: spec.date for spec in FORMATS.values()}, OPML_TYPE: date_opml}
    undated, previews = {}, {}
    for path, media, modified, max_age, headers, body in rows:
        date = dating.get(media)
        moved = rebase(date(bytes(body), datetime.fromisoformat(modified), True) if date else bytes(body), old, new)
        named = tuple((name, rebase(value.encode(), old, new)) for name, value in json.loads(headers))  # WebSub's Link
        if moved is None or any(value is None for _, value in named):
            continue  # left for the first build to render
        named = tuple((name, value.decode()) for name, value in named)
        (previews if path.startswith(PREVIEW) else undated)[path] = (media, moved, max_age, named)
    digests = {path: hashlib.sha256(found[1]).hexdigest() for path, found in undated.items()}
    times = record(digests) if digests else {}
    out = {}
    for path, (media, body, max_age, headers) in undated.items():
        date, when = dating.get(media), times[path]
        dated = date(body, when) if date else body
        out[path] = Rendered(dated, media, when, precompress=False, max_age=max_age, headers=headers,
                             digest=digests[path] if dated is body else None)  # a JSON Feed's, a page's: hashed once
    for path, (media, body, max_age, headers) in previews.items():
        feed = out.get(path[len(PREVIEW):])
        if feed is not None:  # a feed's page for browsers is dated as its feed (preview.py)
            out[path] = Rendered(body, media, feed.last_modified, precompress=False, max_age=max_age, headers=headers)
    return out


def heads(rows: list[tuple], old: str, new: str) -> dict[str, tuple]:
    """The listings among rows (key, pickled ListingHead, size, made_from) with their page's URL at new, as Build
    rows: what a serving process makes an archive page or a partner's view from."""
    out = {}
    for key, blob, size, made in rows:
        head = pickle.loads(blob)
        page = rebase(head.page_url.encode(), old, new)
        if page is not None:
            blob = pickle.dumps(replace(head, page_url=page.decode()), protocol=5)
            out[key] = (blob, size, f"{hashlib.sha256(blob).hexdigest()[:32]} {made.partition(' ')[2]}")
    return out

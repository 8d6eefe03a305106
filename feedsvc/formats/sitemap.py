"""Sitemaps, the Google News sitemap and robots.txt: how search engines and news aggregators find every page.

Specs: the Sitemaps protocol, https://www.sitemaps.org/protocol.html (a <urlset> of at most 50,000 URLs and
50 MB, 52,428,800 bytes, uncompressed; past that a <sitemapindex> of child sitemaps); Google's News sitemap,
https://developers.google.com/search/docs/crawling-indexing/sitemaps/news-sitemap (articles of the last two
days, at most 1,000); robots.txt, RFC 9309 https://www.rfc-editor.org/rfc/rfc9309 with the Sitemaps
protocol's `Sitemap:` line. Written by hand from escaped text: a 50,000-URL sitemap is a join of per-page
bytes made once per page, not a tree serialised on every refresh.
"""
from __future__ import annotations

import hashlib
import html
import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from operator import attrgetter, itemgetter
from typing import Iterable, Sequence
from urllib.parse import quote, urlsplit

from ..model import Article
from ..urls import HEALTHZ, NEWS_SITEMAP, PARTNERS, ROBOTS, SEARCH, SITEMAP, sitemap_path

MEDIA_TYPE = "application/xml"
ROBOTS_MEDIA_TYPE = "text/plain"
NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
MAX_URLS = 50_000  # URLs in one sitemap, and sitemaps in one index (sitemaps.org)
# URLs feedsvc puts in one sitemap, as WordPress does (2,000): a saved article changes the last file only, which
# at 10,000 articles is 260 kB to remake, compress and fetch again instead of the whole 1.3 MB.
URLS_PER_FILE = 2_000
MAX_BYTES = 52_428_800  # bytes of one sitemap or index, uncompressed (sitemaps.org: 50 MB)
NEWS_WINDOW = timedelta(days=2)  # Google News: "articles published in the last two days"
NEWS_MAX_URLS = 1_000  # Google News: at most 1,000 <news:news> URLs in one sitemap
INDEX, NEWS = SITEMAP, NEWS_SITEMAP  # crawlers are given INDEX (robots.txt): a urlset, or an index past the limits

_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{NS}">\n'.encode()
_FOOT = b"</urlset>\n"
ENTRIES_AT = len(_HEAD)  # where a <urlset> that render_urlset wrote has its first entry's bytes
_INDEX_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{NS}">\n'.encode()
_INDEX_FOOT = b"</sitemapindex>\n"
_NEWS_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{NS}" xmlns:news="{NEWS_NS}">\n'.encode()
# RFC 3986 reserved characters and "%" stay as written (URLs here are already percent-encoded where feedsvc
# builds them); anything else outside ASCII is encoded, as sitemaps.org asks.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~"
_PLAIN = re.compile(r"[A-Za-z0-9_.~:/?#\[\]@!$'()*+,;=%-]*")  # what quote() keeps as it is (_URI_SAFE) and escaping too: no &
# Characters XML 1.0 does not allow anywhere, even escaped (article text is cleaned of them already).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


_BODY, _LASTMOD = attrgetter("body"), attrgetter("lastmod")
# A <url> as url_entry writes it, and as read_urlset reads it back: its bytes, its <loc>, its <lastmod> (UTC, whole
# seconds: w3c_datetime).
_URL_OPEN, _URL_MID, _URL_CLOSE = "  <url>\n    <loc>", "</loc>\n    <lastmod>", "</lastmod>\n  </url>\n"
_ENTRY = re.compile(b"(" + re.escape(_URL_OPEN.encode()) + b"([^<]*)" + re.escape(_URL_MID.encode())
                    + rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)" + re.escape(_URL_CLOSE.encode()) + b")")
# Paths that quote(path, safe="/") leaves as they are, with nothing to escape in XML either.
_ALWAYS_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")


class SitemapError(ValueError):
    """Pages that cannot be listed as the protocol requires (more than 50,000 sitemaps' worth)."""


@dataclass(frozen=True, slots=True)  # one an article page, kept between builds
class Entry:
    """One page of a sitemap: its <url> element's bytes and its last modification, for the index's lastmod."""

    body: bytes
    lastmod: datetime


def w3c_datetime(moment: datetime) -> str:
    """A moment in the W3C Datetime profile sitemaps use (https://www.w3.org/TR/NOTE-datetime): UTC, whole seconds."""
    if moment.tzinfo is timezone.utc:  # the state store's times: one call (10,000 entries at a fresh process's first build)
        return moment.isoformat(timespec="seconds")[:-6] + "Z"
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def url_entry(loc: str, lastmod: datetime) -> Entry:
    """A page's <url> with its address and when it last changed."""
    body = f"{_URL_OPEN}{_loc(loc)}{_URL_MID}{w3c_datetime(lastmod)}{_URL_CLOSE}"
    return Entry(body.encode("utf-8"), lastmod)


def read_urlset(data: bytes) -> list[tuple[bytes, bytes, bytes]] | None:
    """The entries of a sitemap that render_urlset wrote of url_entry bodies, in order, each as (its bytes, its
    <loc>, its <lastmod>); None when data is anything else (an index, another layout, older code's)."""
    if not (data.startswith(_HEAD) and data.endswith(_FOOT)):
        return None
    inside = memoryview(data)[len(_HEAD):len(data) - len(_FOOT)]
    found = _ENTRY.findall(inside)
    if sum(map(len, map(itemgetter(0), found))) != len(inside):  # text between the entries url_entry did not write
        return None
    return found


def plain_locs(base_url: str, paths: Sequence[str]) -> list[bytes] | None:
    """The <loc> url_entry writes for each path on the site at base_url, when none has anything to quote or
    escape (an article ID of letters, digits and "_.-~" under a plain SITE_URL); else None. One regular expression
    over them all, then concatenations in C: a fresh process's sitemap takes over 10,000 entries for 2 ms."""
    if not (_PLAIN.fullmatch(base_url + "/") and _ALWAYS_SAFE.fullmatch("".join(paths))):
        return None
    return list(map(f"{base_url}/".encode().__add__, map(str.encode, paths)))


def render_sitemaps(entries: Sequence[Entry], base_url: str, max_urls: int = MAX_URLS,
                    max_bytes: int = MAX_BYTES) -> dict[str, bytes]:
    """The sitemap files by URL path: {"sitemap.xml": urlset} while the pages fit one file, else child sitemaps
    (urls.sitemap_path: "sitemap-1.xml", "sitemap-2.xml", …) of at most max_urls URLs and max_bytes bytes each,
    in the order given, and "sitemap.xml" the index of them (lastmod: the latest of each child's pages)."""
    bodies = list(map(_BODY, entries))
    chunks = sitemap_chunks(list(map(len, bodies)), max_urls, max_bytes)
    if len(chunks) == 1:
        return {INDEX: render_urlset(b"".join(bodies))}
    out = {sitemap_path(n): render_urlset(b"".join(bodies[a:b])) for n, (a, b) in enumerate(chunks, 1)}
    out[INDEX] = render_index([max(map(_LASTMOD, entries[a:b])) for a, b in chunks], base_url)
    return out


def sitemap_chunks(sizes: Sequence[int], max_urls: int = MAX_URLS, max_bytes: int = MAX_BYTES) -> list[tuple[int, int]]:
    """(start, end) of each file's entries, entries of these sizes (bytes) taken in order: a file is closed when
    the next entry would pass max_urls or max_bytes. Where a file ends depends only on the entries up to the one
    after it, so entries added at the end change only the last file (or start new ones)."""
    room = max_bytes - len(_HEAD) - len(_FOOT)
    total = sum(sizes)
    if len(sizes) <= max_urls and total <= room:  # the usual case, without a loop in Python
        return [(0, len(sizes))]
    ends = list(accumulate(sizes))  # bytes up to and with each entry
    if max(sizes) > room:
        raise SitemapError(f"a sitemap entry of {max(sizes)} bytes does not fit in {max_bytes} bytes")
    chunks: list[tuple[int, int]] = []
    start, before = 0, 0  # the file's first entry, and the bytes of every entry ahead of it
    while start < len(sizes):
        end = min(bisect_right(ends, before + room, start), start + max_urls)  # the entries that fit, by binary search
        chunks.append((start, end))
        start, before = end, ends[end - 1]
    return chunks


def render_index(lastmods: Sequence[datetime], base_url: str) -> bytes:
    """A sitemap index of children 1…N (urls.sitemap_path), each with the latest lastmod of its pages."""
    children = [f"  <sitemap>\n    <loc>{_loc(f'{base_url}/{sitemap_path(n)}')}</loc>\n"
                f"    <lastmod>{w3c_datetime(lastmod)}</lastmod>\n  </sitemap>\n".encode()
                for n, lastmod in enumerate(lastmods, 1)]
    index = _INDEX_HEAD + b"".join(children) + _INDEX_FOOT
    if len(children) > MAX_URLS or len(index) > MAX_BYTES:
        raise SitemapError(f"{len(children)} sitemaps do not fit in one sitemap index")
    return index


def render_urlset(*joined: bytes) -> bytes:
    """One sitemap (a <urlset>) of entries already joined (url_entry bodies, in order), in one or more parts:
    joined into the file by one copy (a copy of a 1.5 MB sitemap costs more than the join's list of parts)."""
    return b"".join((_HEAD, *joined, _FOOT))


def urlset_hash(joined: bytes) -> "hashlib._Hash":
    """A SHA-256 that has taken a <urlset>'s opening and these entries: a file that grows at its end is hashed once
    for what it keeps (hasher.copy()), then for each addition (urlset_digest)."""
    hasher = hashlib.sha256(_HEAD)
    hasher.update(joined)
    return hasher


def urlset_digest(hasher: "hashlib._Hash", rest: bytes) -> str:
    """The SHA-256 (hex) of the <urlset> whose entries before `rest` the hasher took (urlset_hash), left as it was."""
    whole = hasher.copy()
    whole.update(rest)
    whole.update(_FOOT)
    return whole.hexdigest()


def news_window(live: Iterable[Article], now: datetime) -> tuple[list[Article], datetime | None]:
    """The articles a News sitemap lists at `now` — published in the last two days, newest first, at most
    1,000 — and when the listing next changes without a new article: the moment the oldest of them leaves.

    live: published articles, newest first (a listing's order), so the walk stops at the first too old.
    """
    cutoff = now - NEWS_WINDOW
    chosen = []
    for article in live:
        if article.published <= cutoff or len(chosen) == NEWS_MAX_URLS:
            break
        if article.published <= now:
            chosen.append(article)
    return chosen, (chosen[-1].published + NEWS_WINDOW if chosen else None)


def news_language(lang: str) -> str:
    """An article's language as Google News wants it: an ISO 639 code of two or three letters, lower case,
    or zh-cn (Simplified) / zh-tw (Traditional) for Chinese; "und" (undetermined, ISO 639-2) otherwise."""
    parts = lang.lower().replace("_", "-").split("-")
    if parts[0] == "zh":
        return "zh-tw" if {"hant", "tw", "hk", "mo"} & set(parts[1:]) else "zh-cn"
    return parts[0] if re.fullmatch("[a-z]{2,3}", parts[0]) else "und"


def news_entry(loc: str, article: Article, publication: str) -> bytes:
    """An article's <url> in a News sitemap: publication name and language, publication date and title."""
    return (f"  <url>\n    <loc>{_loc(loc)}</loc>\n    <news:news>\n      <news:publication>\n"
            f"        <news:name>{_text(publication)}</news:name>\n"
            f"        <news:language>{news_language(article.lang)}</news:language>\n      </news:publication>\n"
            f"      <news:publication_date>{w3c_datetime(article.published)}</news:publication_date>\n"
            f"      <news:title>{_text(article.title)}</news:title>\n    </news:news>\n  </url>\n").encode("utf-8")


def render_news_sitemap(entries: Sequence[bytes]) -> bytes:
    """A News sitemap of these articles' entries (news_entry), possibly none: an empty <urlset> is valid XML
    that a crawler reads as "nothing new" (the schema wants at least one <url>; Google accepts it empty)."""
    return _NEWS_HEAD + b"".join(entries) + _FOOT


def render_robots(site_url: str) -> bytes:
    """robots.txt: every public page may be crawled; partners' feeds, the health check and search (a URL per
    query, without end) not; both sitemaps.

    Crawlers read robots.txt only at a host's root: with SITE_URL below a path, its lines belong in the
    host's own robots.txt (README "Sitemaps and robots.txt").
    """
    prefix = urlsplit(site_url).path.rstrip("/")
    return (f"# feedsvc: {site_url}/\nUser-agent: *\nDisallow: {prefix}/{PARTNERS}\nDisallow: {prefix}/{HEALTHZ}\nDisallow: {prefix}/{SEARCH}\n\n"
            f"Sitemap: {_uri(site_url + '/' + INDEX)}\nSitemap: {_uri(site_url + '/' + NEWS)}\n").encode("utf-8")


def _uri(url: str) -> str:
    return quote(url, safe=_URI_SAFE)


# XML character data is escaped with html.escape(quote=False): &, < and >, as xml.sax.saxutils.escape does, whose
# module imports urllib.request (http.client, email, ssl: 30-50 ms of the builder's start, before its first scan).
def _loc(url: str) -> str:
    if _PLAIN.fullmatch(url):  # most URLs: nothing to quote or escape
        return url
    return html.escape(_uri(url), quote=False)


def _text(text: str) -> str:
    return html.escape(_NOT_XML.sub("", text), quote=False)

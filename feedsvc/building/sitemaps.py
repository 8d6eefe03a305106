"""A build's sitemaps and robots.txt (written by formats/sitemap.py): each article page's entry is made once
per version of the article, and a file is joined again only when a page in it was added, changed or removed. A fresh
process (a restart, `feedsvc build` again) takes over the entries of the files the build store holds (`stored`)
where each is what it would make, and makes only the others.

What they list, and every date in them, comes from the build: article pages with their `updated` time and
section pages (home, categories) with their Last-Modified, both recorded in the state store; the News
sitemap's two-day window is taken at the build's `now` (the refresh's clock), and the publisher schedules a
refresh for the moment its oldest article leaves it (Snapshot.next_release), so the file stays fresh
without a file changing. The same build gives the same bytes.
"""
from __future__ import annotations

from datetime import datetime
from itertools import compress, repeat
from operator import attrgetter, eq, itemgetter, not_
from typing import Any, Callable, Sequence

from ..formats.sitemap import (
    INDEX, MAX_BYTES, URLS_PER_FILE, Entry, news_entry, news_window, plain_locs, read_urlset, render_index,
    render_news_sitemap, render_robots, render_urlset, sitemap_chunks, url_entry, urlset_digest, urlset_hash,
)
from ..model import Article, Site
from ..urls import NEWS_SITEMAP, ROBOTS, article_path, article_url, sitemap_path

_ID, _UPDATED = attrgetter("id"), attrgetter("updated")
_BODY, _LASTMOD = attrgetter("body"), attrgetter("lastmod")
_WHOLE, _LOC, _W3C = itemgetter(0), itemgetter(1), itemgetter(2)
_MAX_PARTS = 64  # the last file's tail kept in at most this many parts, then joined into one (a copy per 64 refreshes)
_NO_ENTRY = Entry(b"", None)  # what an article without an entry is compared by: no date equals None

class Sitemaps:
    """The files of the last build, by URL path, remade only in part when few articles changed.

    Article pages come oldest first and the section pages (home, categories, tags, authors) after them, so a new
    article and the sections' new dates change only the last file: past one file (URLS_PER_FILE, 2,000 URLs, or
    sitemaps.org's 50 MB), the children before the last stay as they are, and only the last one and the index are
    made again."""

    def __init__(self, site: Site, max_urls: int = URLS_PER_FILE, max_bytes: int = MAX_BYTES):
        self.site, self.max_urls, self.max_bytes = site, max_urls, max_bytes
        # Article ID → its entry, which is made of the ID and the article's `updated` alone: an entry is made again
        # when that date differs, so no article object is kept for it (a map of them held every placement a cold
        # start's background reading replaced, with its strings: 100 MiB at 100,000 articles).
        self._bodies: dict[str, Entry] = {}
        self._sections: tuple = ()
        self._pages: dict[str, bytes] = {}  # sitemap.xml and its children as last made
        self._live: list[Article] | None = None  # the articles last listed, newest first
        # The last file's article entries joined (oldest first) in a few parts, how many, their latest lastmod and a
        # SHA-256 that took the file up to them (urlset_hash); None when where the last file begins could move with a
        # new article (then made whole: see _remake). A new article adds a part and hashes only its own entry.
        self._tail: tuple[list[bytes], int, datetime | None, Any] | None = None
        self._digest: tuple[str, bytes, str] | None = None  # (path, the last file as made, its SHA-256), hashed as made
        self._children: list[datetime] = []  # the lastmod of each file before the last (none: one file)
        self._news: tuple[tuple, bytes] | None = None  # (the articles listed, the file)
        self._robots = render_robots(site.url)
        # The files the build store holds, by URL path (bytes, or None): a fresh process's first remake takes their
        # entries over where they are what it would make (_take_over). Unset: every entry is made.
        self.stored: Callable[[str], bytes | None] | None = None

    def render(self, sections: Sequence[tuple[str, datetime]], live: Sequence[Article], now: datetime) -> dict[str, bytes]:
        """URL path → bytes: sitemap.xml (an index with sitemap-N.xml children past the protocol's limits),
        sitemap-news.xml and robots.txt. A file whose content is unchanged is the same bytes object as last time.

        sections: (URL, last modified) of the home and category pages; live: published articles, newest first.
        """
        sections, live = tuple(sections), list(live)
        if not self._added(sections, live):
            self._remake(sections, live)
        self._live = live
        chosen = tuple(news_window(live, now)[0])
        if self._news is None or self._news[0] != chosen:
            self._news = (chosen, render_news_sitemap([news_entry(article_url(self.site, a), a, self.site.title) for a in chosen]))
        return {**self._pages, NEWS_SITEMAP: self._news[1], ROBOTS: self._robots}

    def _added(self, sections: tuple, live: list[Article]) -> bool:
        """The usual refresh: the same articles as last time (the very objects), perhaps a few newer ones before
        them. Only the new articles' entries are made and added to the last file's (one C comparison of the lists
        to check, no dict of them); False when that is not the case, or the last file would not hold them."""
        previous, tail = self._live, self._tail
        if previous is None or tail is None or len(live) < len(previous) or not self._pages:
            return False
        count = len(live) - len(previous)
        if live[count:] != previous:  # in C, each pair first by identity (an equal article makes an equal entry)
            return False
        if not count and sections == self._sections:
            return True  # the same pages, the same dates
        new = [url_entry(article_url(self.site, article), article.updated) for article in reversed(live[:count])]
        heads = [url_entry(url, lastmod) for url, lastmod in sections]
        parts, held, latest, hasher = tail
        added, closing = b"".join(map(_BODY, new)), b"".join(map(_BODY, heads))
        body = render_urlset(*parts, added, closing)  # one copy of the last file, not one per part joined
        if held + count + len(sections) > self.max_urls or len(body) > self.max_bytes:
            return False  # past the last file's limits: a new file begins (made whole)
        self._bodies.update(zip(map(_ID, reversed(live[:count])), new))
        latest = max(filter(None, [latest, *map(_LASTMOD, new)]), default=None)
        if added:
            hasher = hasher.copy()  # the last tail's hasher stays as it was: a render that fails keeps its state
            hasher.update(added)
            parts = [*parts, added] if len(parts) < _MAX_PARTS else [b"".join((*parts, added))]
        self._sections, self._tail = sections, (parts, held + count, latest, hasher)
        path = INDEX if not self._children else sitemap_path(len(self._children) + 1)
        self._digest = (path, body, urlset_digest(hasher, closing))
        if not self._children:
            self._pages = {INDEX: body}
        else:
            last = max(filter(None, [latest, *map(_LASTMOD, heads)]))
            pages = dict(self._pages)
            pages[path] = body
            pages[INDEX] = render_index([*self._children, last], self.site.url)
            self._pages = pages
        return True

    def digest(self, path: str, body: bytes) -> str | None:
        """The SHA-256 (hex) of the file at path if it is the body this made last and hashed as it went, else None."""
        known = self._digest
        return known[2] if known is not None and known[0] == path and known[1] is body else None

    def _remake(self, sections: tuple, live: list[Article]) -> None:
        # Which articles are new or changed, by their entry's date, in C (map, not a Python loop): a refresh at
        # 10,000 articles looks at each once for about a millisecond, and makes entries only for those.
        ids = list(map(_ID, live))
        kept = self._bodies
        found = list(map(kept.get, ids, repeat(_NO_ENTRY)))
        same = list(map(eq, map(_LASTMOD, found), map(_UPDATED, live)))
        if len(kept) != len(ids) or not all(same):  # some went, or changed: keep only the live ones
            self._bodies = dict(zip(ids, found))  # those not the same are made below
        if not kept and self.stored is not None:  # a fresh process: the entries the store holds, where they are these
            same = self._take_over(ids, live)
        for article in compress(live, map(not_, same)):
            self._bodies[article.id] = url_entry(article_url(self.site, article), article.updated)
        self._sections = sections
        # Oldest first, then the sections: a new article goes at the end, so past one file only the last child
        # changes.
        articles = list(map(self._bodies.__getitem__, reversed(ids)))
        entries = articles + [url_entry(url, lastmod) for url, lastmod in sections]
        bodies = list(map(_BODY, entries))
        chunks = sitemap_chunks(list(map(len, bodies)), self.max_urls, self.max_bytes)
        lastmods = [max(map(_LASTMOD, entries[a:b])) for a, b in chunks]
        if len(chunks) == 1:
            self._pages = {INDEX: render_urlset(b"".join(bodies))}
        else:
            self._pages = {sitemap_path(n): render_urlset(b"".join(bodies[a:b])) for n, (a, b) in enumerate(chunks, 1)}
            self._pages[INDEX] = render_index(lastmods, self.site.url)
        start = chunks[-1][0]
        self._children = lastmods[:-1]
        tail = articles[start:]
        # A last file that begins with a section keeps its place for a new article only when the file before it was
        # closed by its count of URLs, not by the next entry's size (100,000 articles: two full files, then sections).
        follows = len(chunks) == 1 or start < len(articles) or (
            start == len(articles) and chunks[-2][1] - chunks[-2][0] == self.max_urls)
        self._digest, self._tail = None, None
        if follows:  # the tail hashed once, for this file's digest and for the next new article's
            joined = b"".join(map(_BODY, tail))
            hasher = urlset_hash(joined)
            self._tail = (([joined] if joined else []), len(tail), max(map(_LASTMOD, tail), default=None), hasher)
            path = INDEX if len(chunks) == 1 else sitemap_path(len(chunks))
            self._digest = (path, self._pages[path], urlset_digest(hasher, b"".join(bodies[len(articles):])))

    def _take_over(self, ids: list[str], live: list[Article]) -> list[bool]:
        """Take each stored entry that is the very bytes url_entry makes of a live article (at its <loc>, with its
        lastmod) as its entry; whether each was. A fresh process (a restart, `feedsvc build` again) then makes only
        the entries of what changed (10,000 article_url and url_entry calls: 30 ms of a build with one file
        changed), and joins the files from them as from entries made now: the bytes of a remake whole."""
        stored, self.stored = self.stored, None
        locs = plain_locs(self.site.url, list(map(article_path, ids)))
        entries = [] if locs is None else _stored_entries(stored)
        if not entries:
            return [False] * len(ids)
        # Every lookup and comparison below in C (map): an entry counts only at its own <loc> and date.
        try:
            dates = dict(zip(map(_LOC, entries), map(datetime.fromisoformat, map(bytes.decode, map(_W3C, entries)))))
        except ValueError:  # a date no build writes (a month 13): made whole
            return [False] * len(ids)
        bodies = dict(zip(map(_LOC, entries), map(_WHOLE, entries)))
        taken = list(map(eq, map(dates.get, locs), map(_UPDATED, live)))
        self._bodies.update(zip(compress(ids, taken), map(Entry, map(bodies.__getitem__, compress(locs, taken)),
                                                          compress(map(_UPDATED, live), taken))))
        return taken


def _stored_entries(stored: Callable[[str], bytes | None]) -> list[tuple[bytes, bytes, bytes]]:
    """Every entry of the stored sitemap files as read_urlset reads them (a child that is not, or is gone, gives none)."""
    try:
        index = stored(INDEX)
        if index is None:
            return []
        found = read_urlset(index)
        if found is not None:
            return found
        entries = []
        for n in range(1, index.count(b"<sitemap>") + 1):  # an index: its children
            child = stored(sitemap_path(n))
            entries += (read_urlset(child) or []) if child is not None else []
        return entries
    except LookupError:  # a build replaced them while they were read: made whole
        return []


__all__ = ["Sitemaps"]

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

from array import array
from bisect import bisect_right
from datetime import datetime
from itertools import accumulate, repeat
from operator import attrgetter, eq, itemgetter, methodcaller
from typing import Any, Callable, Sequence

from ..formats.sitemap import (
    ENTRIES_AT, INDEX, MAX_BYTES, URLS_PER_FILE, news_entry, news_window, plain_locs, read_urlset, render_index,
    render_news_sitemap, render_robots, render_urlset, sitemap_chunks, url_entry, urlset_digest, urlset_hash,
)
from ..model import Article, Site
from ..urls import NEWS_SITEMAP, ROBOTS, article_path, article_url, sitemap_path

_ID, _UPDATED = attrgetter("id"), attrgetter("updated")
_BODY, _LASTMOD = attrgetter("body"), attrgetter("lastmod")
_WHOLE, _LOC, _W3C = itemgetter(0), itemgetter(1), itemgetter(2)
_WHOLE_SECONDS = methodcaller("replace", microsecond=0)
_MAX_PARTS = 64  # the last file's tail kept in at most this many parts, then joined into one (a copy per 64 refreshes)

class Sitemaps:
    """The files of the last build, by URL path, remade only in part when few articles changed.

    Article pages come oldest first and the section pages (home, categories, tags, authors) after them, so a new
    article and the sections' new dates change only the last file: past one file (URLS_PER_FILE, 2,000 URLs, or
    sitemaps.org's 50 MB), the children before the last stay as they are, and only the last one and the index are
    made again."""

    def __init__(self, site: Site, max_urls: int = URLS_PER_FILE, max_bytes: int = MAX_BYTES):
        self.site, self.max_urls, self.max_bytes = site, max_urls, max_bytes
        # An article's entry is made of its ID and `updated` alone, and is kept where it is: in the file that lists it
        # (_pages), from which a remake takes its bytes again while the article's date is the same. Kept here, for the
        # entries of the last articles listed (_live, oldest first in the files), only each one's size and where each
        # file's first article entry is: a map of every entry's bytes held them twice (28 MiB at 100,000 articles).
        self._sizes = array("I")  # each article entry's size in bytes, in file order (oldest first)
        self._layout: list[tuple[str, int]] = []  # (path, its first article entry's place in _sizes) of each file
        self._sections: tuple = ()
        self._pages: dict[str, bytes] = {}  # sitemap.xml and its children as last made
        self._live: list[Article] | None = None  # the articles last listed, newest first: those of _sizes
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
        self._sizes.extend(map(len, map(_BODY, new)))  # in the last file, after its entries
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
        """Every file made again: each article's entry taken from the file that held it while its date is the same
        (runs of them as slices of that file, joined in C), or taken over from the store's files, else made."""
        n = len(live)
        dates = list(map(_UPDATED, live))  # newest first
        at, stored = self._kept_at(live, dates), None  # each article's place among the entries kept, else -1
        if not self._sizes and self.stored is not None:  # a fresh process: the entries the store holds, where they are these
            stored = self._take_over(list(map(_ID, live)), dates)
        # The article entries in file order (oldest first) as runs: a tuple (1, bytes) for an entry made now or taken
        # over, a list [count, file, byte offset of its first entry, that entry's place, where its file's entries end]
        # for consecutive entries kept in one file.
        old_sizes, layout, pages = self._sizes, self._layout, self._pages
        starts = [first for _, first in layout]
        ends = [*accumulate(old_sizes, initial=0)] if old_sizes else []
        runs: list = []  # of tuples and lists, as said above
        sizes = array("I")
        run = None  # the run being extended: [count, file, offset, first place, end of its file's entries]
        for k in range(n - 1, -1, -1):
            j = at[k]
            if j >= 0:
                if run is not None and j == run[3] + run[0] and j < run[4]:
                    run[0] += 1
                else:
                    f = bisect_right(starts, j) - 1
                    first = starts[f]
                    run = [1, pages[layout[f][0]], ENTRIES_AT + ends[j] - ends[first], j,
                           starts[f + 1] if f + 1 < len(starts) else len(old_sizes)]
                    runs.append(run)
                sizes.append(old_sizes[j])
                continue
            run = None
            found = stored[k] if stored is not None else None
            body = found if found is not None else url_entry(article_url(self.site, live[k]), dates[k]).body
            runs.append((1, body))
            sizes.append(len(body))
        # Oldest first, then the sections: a new article goes at the end, so past one file only the last child changes.
        heads = [url_entry(url, lastmod) for url, lastmod in sections]
        section_sizes = list(map(len, map(_BODY, heads)))
        chunks = sitemap_chunks([*sizes, *section_sizes], self.max_urls, self.max_bytes)
        oldest_first = dates[::-1]
        lastmods = [max([*oldest_first[a:min(b, n)], *map(_LASTMOD, heads[max(a - n, 0):max(b - n, 0)])]) for a, b in chunks]
        cut = _Cutter(runs, ends)
        articles = [cut.take(min(b, n) - min(a, n)) for a, b in chunks]  # each file's article entries, as parts
        closing = [b"".join(map(_BODY, heads[max(a - n, 0):max(b - n, 0)])) for a, b in chunks]
        if len(chunks) == 1:
            paths = [INDEX]
        else:
            paths = [sitemap_path(c) for c in range(1, len(chunks) + 1)]
        made = {path: render_urlset(*parts, tail) for path, parts, tail in zip(paths, articles, closing)}
        del runs, cut, articles  # the slices of the files made before
        if len(chunks) > 1:
            made[INDEX] = render_index(lastmods, self.site.url)
        start = chunks[-1][0]
        # A last file that begins with a section keeps its place for a new article only when the file before it was
        # closed by its count of URLs, not by the next entry's size (100,000 articles: two full files, then sections).
        follows = len(chunks) == 1 or start < n or (start == n and chunks[-2][1] - chunks[-2][0] == self.max_urls)
        digest, tail = None, None
        if follows:  # the tail hashed once, for this file's digest and for the next new article's
            last = made[paths[-1]]
            joined = last[ENTRIES_AT:ENTRIES_AT + sum(sizes[start:])] if start < n else b""
            hasher = urlset_hash(joined)
            tail = (([joined] if joined else []), n - start, max(oldest_first[start:], default=None), hasher)
            digest = (paths[-1], last, urlset_digest(hasher, closing[-1]))
        self._pages, self._sizes, self._sections = made, sizes, sections
        self._layout = [(path, min(a, n)) for path, (a, _) in zip(paths, chunks)]
        self._children = lastmods[:-1]
        self._digest, self._tail = digest, tail

    def _kept_at(self, live: list[Article], dates: list[datetime]) -> list[int]:
        """Each live article's entry's place among those kept (file order), where it is kept with the same date; else -1.
        The lookups and date comparisons in C (map), then one comprehension to pick: 2-3 ms at 10,000 articles."""
        old = self._live if self._sizes else None
        if old is None or len(old) != len(self._sizes):
            return [-1] * len(live)
        m = len(old)
        if len(old) == len(live) and all(map(eq, map(_ID, old), map(_ID, live))):
            places = range(m - 1, -1, -1)  # the same articles in the same order (a background step's full reads)
        else:
            places = list(map({id_: j for id_, j in zip(map(_ID, old), range(m - 1, -1, -1))}.get, map(_ID, live), repeat(-1)))
        before = [*map(_UPDATED, reversed(old)), None]  # by place, and None at -1: no date equals it
        return [j if same else -1 for j, same in zip(places, map(eq, map(before.__getitem__, places), dates))]

    def _take_over(self, ids: list[str], dates: list[datetime]) -> list[bytes | None]:
        """Each stored entry that is the very bytes url_entry makes of a live article (at its <loc>, with its lastmod),
        else None, in the order of ids. A fresh process (a restart, `feedsvc build` again) then makes only the entries
        of what changed (10,000 article_url and url_entry calls: 30 ms of a build with one file changed), and joins
        the files from them as from entries made now: the bytes of a remake whole."""
        stored, self.stored = self.stored, None
        locs = plain_locs(self.site.url, list(map(article_path, ids)))
        entries = [] if locs is None else _stored_entries(stored)
        if not entries:
            return [None] * len(ids)
        # Every lookup and comparison below in C (map): an entry counts only at its own <loc> and date.
        try:
            found = dict(zip(map(_LOC, entries), map(datetime.fromisoformat, map(bytes.decode, map(_W3C, entries)))))
        except ValueError:  # a date no build writes (a month 13): made whole
            return [None] * len(ids)
        bodies = dict(zip(map(_LOC, entries), map(_WHOLE, entries)))
        # An entry's <lastmod> has whole seconds (w3c_datetime) and an article's `updated` often has microseconds
        # (a file without a `date:` is dated when first seen): compared whole, none was ever taken over.
        seconds = map(_WHOLE_SECONDS, dates)
        return [bodies[loc] if same else None for loc, same in zip(locs, map(eq, map(found.get, locs), seconds))]


class _Cutter:
    """The article entries of a remake, in file order, given out file by file as parts to join: slices of the files
    the entries were kept in (memoryview: no copy until the join) and the bytes of those made anew."""

    def __init__(self, runs: list, ends: list[int]):
        self.runs, self.ends, self.at, self.used = runs, ends, 0, 0  # the run taken from, and how many of its entries

    def take(self, count: int) -> list:
        """The parts of the next `count` entries."""
        parts = []
        while count:
            run = self.runs[self.at]
            n = min(run[0] - self.used, count)
            if isinstance(run, tuple):  # one entry made anew
                parts.append(run[1])
            else:
                _, page, offset, first, _ = run
                ends = self.ends
                begin = offset + ends[first + self.used] - ends[first]
                parts.append(memoryview(page)[begin:begin + ends[first + self.used + n] - ends[first + self.used]])
            self.used += n
            count -= n
            if self.used == run[0]:
                self.at, self.used = self.at + 1, 0
        return parts


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

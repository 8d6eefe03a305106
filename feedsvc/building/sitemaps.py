"""A build's sitemaps and robots.txt (written by formats/sitemap.py): each article page's entry is made once
per version of the article, and a file is joined again only when a page in it was added, changed or removed.

What they list, and every date in them, comes from the build: article pages with their `updated` time and
section pages (home, categories) with their Last-Modified, both recorded in the state store; the News
sitemap's two-day window is taken at the build's `now` (the refresh's clock), and the publisher schedules a
refresh for the moment its oldest article leaves it (Snapshot.next_release), so the file stays fresh
without a file changing. The same build gives the same bytes.
"""
from __future__ import annotations

from datetime import datetime
from itertools import compress, islice
from operator import attrgetter, is_, not_
from typing import Sequence

from ..formats.sitemap import (
    INDEX, MAX_BYTES, MAX_URLS, Entry, news_entry, news_window, render_news_sitemap, render_robots, render_sitemaps,
    render_urlset, url_entry,
)
from ..model import Article, Site
from ..urls import NEWS_SITEMAP, ROBOTS, article_url

_ID = attrgetter("id")
_BODY = attrgetter("body")

class Sitemaps:
    """The files of the last build, by URL path, remade only in part when few articles changed."""

    def __init__(self, site: Site, max_urls: int = MAX_URLS, max_bytes: int = MAX_BYTES):
        self.site, self.max_urls, self.max_bytes = site, max_urls, max_bytes
        self._articles: dict[str, Article] = {}  # article ID → the article its entry was made from
        self._bodies: dict[str, Entry] = {}  # article ID → its entry
        self._sections: tuple = ()
        self._pages: dict[str, bytes] = {}  # sitemap.xml and its children as last made
        self._live: list[Article] | None = None  # the articles last listed, newest first
        self._joined: bytes | None = None  # their entries joined, oldest first, while they fit one file
        self._news: tuple[tuple, bytes] | None = None  # (the articles listed, the file)
        self._robots = render_robots(site.url)

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
        them, and one file. Only the new articles' entries are made and added to the joined entries (one C pass
        over the articles to check, no list or dict of them); False when that is not the case."""
        previous, joined = self._live, self._joined
        if previous is None or joined is None or len(live) < len(previous) or not self._pages:
            return False
        count = len(live) - len(previous)
        if not all(map(is_, islice(live, count, None), previous)):
            return False
        if not count and sections == self._sections:
            return True  # the same pages, the same dates
        new = [url_entry(article_url(self.site, article), article.updated) for article in reversed(live[:count])]
        heads = [url_entry(url, lastmod).body for url, lastmod in sections]
        joined += b"".join(entry.body for entry in new)
        body = render_urlset(b"".join(heads) + joined)
        if len(sections) + len(live) > self.max_urls or len(body) > self.max_bytes:
            return False  # past one file's limits: children (render_sitemaps)
        for article, entry in zip(reversed(live[:count]), new):
            self._articles[article.id], self._bodies[article.id] = article, entry
        self._sections, self._joined, self._pages = sections, joined, {INDEX: body}
        return True

    def _remake(self, sections: tuple, live: list[Article]) -> None:
        # Which articles are new or changed, by object, in C (map, not a Python loop): a refresh at 10,000
        # articles looks at each once for about a millisecond, and makes entries only for those.
        ids = list(map(_ID, live))
        kept = self._articles
        same = list(map(is_, map(kept.get, ids), live))
        if len(kept) != len(ids):  # some went: keep only the live ones
            self._articles, self._bodies = dict(zip(ids, live)), dict(zip(ids, map(self._bodies.get, ids)))
        for article in compress(live, map(not_, same)):
            self._articles[article.id] = article
            self._bodies[article.id] = url_entry(article_url(self.site, article), article.updated)
        self._sections = sections
        # Oldest first: a new article goes at the end, so past 50,000 pages only the last child changes.
        articles = list(map(self._bodies.__getitem__, reversed(ids)))
        self._pages = render_sitemaps([url_entry(url, lastmod) for url, lastmod in sections] + articles,
                                      self.site.url, self.max_urls, self.max_bytes)
        self._joined = b"".join(map(_BODY, articles)) if len(self._pages) == 1 else None


__all__ = ["Sitemaps"]

"""Feeds asked for by query — an archive page (?page=N), the items since a moment (?since=), a partner's
licensed view — put together in the serving process from what the builder stored; never a parse.

A request reads, in SQL, the count and the IDs of the slice of the listing's stored order it needs (by time
for ?since=, by category for a partner), picks its items with the same functions the builder uses
(paging.page_feed / since_feed), loads only those items' stored articles and
renders the feed with its format's module (feedgen). The result is kept, per build version, for the
next request that asks the same (1 MiB of them).

A search (?q=) takes the IDs of its newest matching articles from the builder's full-text index (search.py),
loads only those articles, and renders its feed or page the same way.

Made on demand: in the seconds after a cold start some articles are only placed (their text not read yet, so no
stored item). A request that needs one asks the builder for it (feedsvc/wanted.py), waits on its thread (never the
event loop) for the build that holds it, up to WAIT_SECONDS, and answers with the bytes any later request gets; past
that bound (a builder stopped or gone) NotReadYetError, which web.py answers with a 503 and Retry-After.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Mapping

from ..formats.ondemand import FeedRenderer
from ..formats.pages import article_links, render_article
from ..model import Site
from ..paging import Listing, page_feed, since_feed
from ..partners import Partner
from ..preview import feed_page
from ..resource import Rendered
from ..search import IndexBehindError, SearchIndex
from ..searchtext import match_expression
from ..store import ListingIndex, StoreReader
from ..urls import HTML_TYPE, article_path
from ..wanted import POLL_SECONDS, Wanted
from ..formats.pages import render_search
from .searchfeed import search_feed

WAIT_SECONDS = 3.0  # how long a request waits for the builder to read the articles it asked for, before a 503


class NotReadYetError(Exception):
    """What a request names is published but its article is not read in full yet (the seconds after a cold
    start: builder placed it, finish_reading reads it); `missing`: the IDs not found. Past WAIT_SECONDS of
    asking for them, web.py answers 503 with Retry-After."""

    def __init__(self, message: str, missing: Sequence[str] = ()):
        super().__init__(message)
        self.missing = list(missing)


KEEP_BYTES = 1 << 20  # bodies of the variants kept per process: the pages and deltas asked for again and again


class StoredItems(Sequence):
    """A listing's items in its stored order (store.ListingIndex); only the items a slice or a loop reaches are
    loaded, and only the IDs of that slice are read: a serving process never holds a listing's whole index."""

    def __init__(self, index: ListingIndex, reader: StoreReader):
        self.index, self.reader = index, reader

    def newer_than(self, since: datetime) -> "StoredItems":
        """The items published or updated after `since`, by their stored times (paging.since_feed's rule)."""
        return StoredItems(self.index.newer_than(since), self.reader)

    def after(self, published: datetime, id_: str) -> "StoredItems":
        """The items after this place in the order (paging.since_feed's `after`)."""
        return StoredItems(self.index.after(published, id_), self.reader)

    def licensed(self, categories) -> "StoredItems":
        """The items in at least one of these categories (a partner's licensed view)."""
        return StoredItems(self.index.licensed(categories), self.reader)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self._articles(self.index.ids(index)))
        return self._articles(self.index.ids(index))[0]

    def __iter__(self):
        for start in range(0, len(self), 200):
            yield from self._articles(self.index.ids(slice(start, start + 200)))

    def _articles(self, ids: list[str]) -> list:
        found = self.reader.articles(ids)
        if len(found) != len(ids):  # a listing's items are committed with it, but for those only placed so far
            have = {a.id for a in found}
            error = NotReadYetError(f"Not ready: {len(ids) - len(found)} of this feed's articles are still being read "
                                    "after a start; try again in a second.\n")
            error.missing = [id_ for id_ in ids if id_ not in have]
            raise error
        return found


INDEX_WAIT = 0.25  # seconds a search waits for the index to hold the latest build before a 503

ITEM_BYTES = 0  # item fragments a serving process keeps between variants: none (each variant is kept whole)


class Variants:
    """Makes and keeps the feeds asked for by query, from the store."""

    def __init__(self, reader: StoreReader, site: Site, size: int, public: Mapping[str, Any], archive_max_age: int):
        self.reader, self.site, self.size, self.public = reader, site, size, dict(public)
        # A serving process keeps few items: what it makes is kept whole (KEEP_BYTES), and its memory must not
        # grow with the archive (the builder keeps the big fragment cache).
        self.renderer = FeedRenderer(site, archive_max_age=archive_max_age, variants=1, fragments=ITEM_BYTES)
        self.index = SearchIndex(reader.path)
        self.wanted = Wanted(reader.path)  # the articles this process asks the builder for (made on demand)
        self._kept: OrderedDict[tuple, Rendered | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str, fmt: str, *, page: int = 1, since: datetime | None = None,
            after: tuple[datetime, str] | None = None, partner: Partner | None = None) -> Rendered | None:
        """A feed as asked for: a page, the items since a moment, or a partner's licensed view; None if none.

        The key is "" (site-wide), a category slug, "tag/<slug>" or "author/<slug>". For a partner, the
        site-wide, tag and author feeds hold only its licensed categories' items, and the content mode is the partner's.
        """
        return self._kept_or_made((key, fmt, page, since, after, partner),
                                  lambda answered: self._make(key, fmt, page, since, after, partner))

    def article_page(self, id_: str) -> Rendered | None:
        """A published article's page the builder has not committed yet (a cold start commits the feeds first):
        rendered here from the stored article, as the builder renders it — the same bytes and ETag; None if
        no such article is published.

        Its Last-Modified is the time the builder recorded for these bytes if it has, else the article's own
        updated time (earlier than any the builder gives them, so a conditional request only ever gets the
        page again, never a wrong 304).
        """
        return self._kept_or_made(("article", id_), lambda answered: self._make_article_page(id_, answered))

    def _make_article_page(self, id_: str, answered: frozenset[str] | None = None) -> Rendered | None:
        if answered is not None:  # asked for and waited: the builder may have committed the page itself meanwhile
            found = self.reader.resource(article_path(id_))
            if found is not None:
                return found
        stored = self.reader.articles([id_])
        if not stored:
            if id_ not in (answered or ()) and self._reading():  # perhaps one of those placed, not read in full yet
                raise NotReadYetError("Not ready: this article may be one still being read after a start; try again in a second.\n",
                                      [id_])
            return None
        article = stored[0]
        body = render_article(article, article_links(article, self.reader.category_links()), self.site)[0]
        when = self.reader.recorded(article_path(id_), hashlib.sha256(body).hexdigest()) or article.updated
        return Rendered(body, HTML_TYPE, when, precompress=False)

    def search(self, query: str, fmt: str, browser: bool = False) -> Rendered | None:
        """The newest FEED_MAX_ITEMS articles matching a query, as a feed (fmt "rss", "atom", "json") or its page
        ("html"); None before the first build. Raises search.QueryError for a query that cannot be run.
        browser: the feed's page for browsers instead of its bytes (preview.py), as a category feed has.

        Answered only from an index that holds the build's articles (else, after INDEX_WAIT, IndexBehindError),
        and dated when the site-wide listing last changed: any article's text, date or coming and going moves
        it, so a search's bytes never change without their Last-Modified moving too.
        """
        match_expression(query)  # a bad query is refused before anything is looked up
        stored = self.reader.listing("")
        if stored is None:
            return None
        changed = stored[0].changed
        # The builder indexes a new build's articles a moment after committing it (one saved file: milliseconds;
        # a cold start: seconds): wait for that moment, then answer from the index and the build as one.
        waited = time.monotonic() + INDEX_WAIT
        while not self.index.holds(changed):
            if time.monotonic() > waited:
                raise IndexBehindError(changed)
            time.sleep(0.01)
            stored = self.reader.listing("")
            changed = stored[0].changed
        key = ("search", self.index.generation(), query, fmt, browser)
        return self._kept_or_made(key, lambda answered: self._make_search(query, fmt, changed, browser))

    def _make_search(self, query: str, fmt: str, changed: datetime, browser: bool) -> Rendered | None:
        ids = self.index.newest(query, self.size)
        feed = search_feed(query, self.reader.articles(ids), self.site, changed, self.public["full_text"])
        if fmt == "html":
            return Rendered(render_search(feed, query, self.site), HTML_TYPE, feed.updated, precompress=False)
        if browser:  # dated as the feed's bytes are (renderer.feed: feed.updated), so both change together
            return feed_page(feed, fmt, self.site, feed.updated)
        return self.renderer.feed(fmt, feed)

    def _kept_or_made(self, key: tuple, make) -> Rendered | None:
        """What was made for this key at the current build, else make it (_on_demand) and keep it (KEEP_BYTES at most)."""
        kept_key = (self.reader.current(), *key)
        with self._lock:
            if kept_key in self._kept:
                self._kept.move_to_end(kept_key)
                return self._kept[kept_key]
        version, found = self._on_demand(make)
        kept_key = (version, *key)
        with self._lock:
            self._kept[kept_key] = found
            self._bytes += _size(found)
            while self._bytes > KEEP_BYTES:
                self._bytes -= _size(self._kept.popitem(last=False)[1])
        return found

    def _on_demand(self, make) -> tuple[int, Rendered | None]:
        """make(answered) and the build it was made at. When it needs articles the builder has only placed so far
        (NotReadYetError), ask for them and make again once they are stored, until WAIT_SECONDS have passed;
        `answered` is None at first, then the IDs the builder has answered (those it found nothing to read for)."""
        deadline, answered = None, None
        while True:
            version = self.reader.current()
            try:
                return version, make(answered)
            except NotReadYetError as exc:
                deadline = deadline or time.monotonic() + WAIT_SECONDS
                if not exc.missing or not self._reading():  # nothing the builder's background reading would bring
                    raise
                done = self._wait_for(exc.missing, deadline)
                if done is None:
                    raise
                answered = (answered or frozenset()) | done

    def _wait_for(self, ids: list[str], deadline: float) -> frozenset[str] | None:
        """Ask the builder for these articles and wait, here on this thread, until they are stored or it has
        answered; the IDs answered (perhaps with nothing to read), or None at the deadline."""
        if not self.wanted.ask(ids, max(0.0, deadline - time.monotonic())):
            return None  # the file stayed locked all that time: a builder stopped in a commit
        version = None  # the first look reads them: the build that holds them may have landed before the ask
        while time.monotonic() < deadline:
            latest = self.reader.current(force=True)
            if latest != version:  # a build landed: perhaps the one that holds them
                version = latest
                if len(self.reader.articles(ids)) == len(ids):
                    self.wanted.withdraw(ids)  # asked a moment too late: the build holding them had landed
                    return frozenset()
            if not self.wanted.waiting(ids):  # answered: what it committed is in the store now
                return frozenset(ids)
            time.sleep(POLL_SECONDS)
        return None

    def _reading(self) -> bool:
        """Whether the latest build says articles are still only placed (the builder's background reading)."""
        build = self.reader.build()
        return build is not None and bool(build[2].get("placed"))

    def _make(self, key: str, fmt: str, page: int, since: datetime | None, after: tuple[datetime, str] | None,
              partner: Partner | None) -> Rendered | None:
        with self.reader.pinned():  # the head, the order and the articles of one build
            stored = self.reader.listing(key)
            if stored is None:
                return None
            head, index = stored
            items, deleted, cuts = StoredItems(index, self.reader), head.deleted, head.cuts
            options = dict(self.public) if partner is None else partner.feed_options()
            part = partner is not None and partner.leaves_out(key)
            if part:
                items = items.licensed(partner.categories)
                deleted = tuple(d for d in deleted if any(partner.licenses(c) for c in d.categories))
                cuts = ()  # cut by count: the frozen pages are the whole listing's (building/site.py _licensed)
            listing = Listing(head.key, head.title, head.description, head.category, items, head.page_url, deleted=deleted,
                              cuts=cuts)
            # An archive page has its own date (a partner's too, but of a view with only some of the listing's items, cut
            # by count: its pages are its own); any other view of a listing changes when the listing does.
            options["updated"] = head.changed
            if since is None and not part and page > 1:
                options["updated"] = self.reader.page_date(head, page)
            if since is not None:
                # From the second before what the builds landed since were dated from, if earlier (a slow refresh's):
                # read in the pinned build, so one request at one build has one answer in every process.
                feed = since_feed(listing, self.site, self.size, since, page, after, landed_after=self.reader.landed_after,
                                  **options)
            else:
                # A partner's view of some of a listing's items is cut by count from its oldest: one of them deleted or
                # dated back moves every newer page's items, so none is an archive page cached for ARCHIVE_MAX_AGE.
                feed = page_feed(listing, self.site, self.size, page, kept=not part, **options)
        return None if feed is None else self.renderer.feed(fmt, feed)


def _size(found: Rendered | None) -> int:
    return 0 if found is None else 2 * len(found.body)  # with the codings a request may add


"""When each listing (the site-wide feed, a category) last changed — the date of its `?since=` deltas and
partners' views, whose URLs are too many to record one by one — and when each of its archive pages did.

A listing's digest covers everything those views show of it (each item's ID, content and dates, the
settings that shape them); the state store dates each digest once (state.record_versions), so every
worker and restart agrees. An archive page (paging.page_feed) is dated by a digest of its own items and
links: its items are counted from the oldest, and a complete page keeps its place (archive.py), so a new article
leaves every full page, its bytes and its date as they were, as RFC 5005 §4 asks of archives
(https://www.rfc-editor.org/rfc/rfc5005#section-4).
"""
from __future__ import annotations

import hashlib
import itertools
import operator
from bisect import bisect_left
from itertools import compress
from datetime import datetime
from typing import Any, Callable, Mapping

from ..model import Article
from ..paging import Listing, archive_spans
from .feeds import order_key

Record = Callable[[Mapping[str, str]], Mapping[str, datetime]]
Read = Callable[[list[str]], Mapping[str, tuple[str, datetime]]]
_PREFIX = "listing:"  # the store's key for a listing, beside the URL paths of resources
_PAGE = "page:"  # "page:<number>:<listing key>", an archive page's


class _Pages:
    """One listing's archive pages as last dated: its items, each page's sum, digest and time (page 2 first)."""

    __slots__ = ("items", "head", "spans", "sums", "digests", "times")

    def __init__(self, items: tuple, head: tuple, spans: list[tuple[int, int]], sums: list[int], digests: list[str], times: list):
        self.items, self.head, self.spans, self.sums, self.digests = items, head, spans, sums, digests
        self.times = times


class ListingVersions:
    """The recorded time of each listing, hashing only listings whose items changed since last time."""

    def __init__(self, record: Record, read: Read, shape: Any, size: int):
        self.record, self.read = record, read
        # The settings every view of a listing depends on (site, content mode, page size, reading options), as one
        # digest: each archive page's digest is made of it, thousands of them at a cold start of 100,000 articles.
        self.shape = f"{_number(repr(shape)):032x}"
        self.size = size  # items a page
        self._pages: dict[str, _Pages] = {}  # listing key → its archive pages as last dated
        self.digests: dict[str, str] = {}  # listing key → the digest last recorded for it
        self._tokens: dict[str, tuple[Article, int]] = {}  # ID → (article, hash of what a view shows of it)
        self._sums: dict[str, tuple[Listing, int]] = {}  # listing key → (the listing, its items' sum) as last digested
        self.alone = False  # no other process dates versions in the state store (Publisher.build_alone): no drift

    def times(self, listings: list[Listing], previous: Mapping[str, Listing], before: Mapping[str, datetime]
              ) -> tuple[dict[str, datetime], dict[str, tuple[datetime, ...]]]:
        """Each listing's time, and its archive pages' (page_times); `previous` and `before` are the last
        snapshot's listings and times."""
        known: dict[str, datetime] = {}
        wanted: dict[str, str] = {}
        drifted = self.drifted(before)
        sums = {}
        # Each listing's items' tokens where every one was looked up (a first build): its archive pages' sums are slices
        # of them, not a second look-up of every item (400,000 at 100,000 articles: the stage took 0.58 s, 0.41-0.47 since).
        tokens: dict[str, list[int]] = {}
        for listing in listings:
            old = previous.get(listing.key)
            if (old is not None and (old is listing or old.items == listing.items) and old.title == listing.title
                    and old.deleted == listing.deleted and listing.key not in drifted
                    and listing.key in before):  # not dated with a partial snapshot whose pages failed (site.py _complete)
                known[listing.key] = before[listing.key]  # the same article objects: nothing to hash
                if listing.key in self._sums:
                    sums[listing.key] = (listing, self._sums[listing.key][1])
                continue
            total = self._sum(listing, self._sums.get(listing.key), tokens)
            sums[listing.key] = (listing, total)
            total += self._head(listing)
            wanted[_PREFIX + listing.key] = self.digests[listing.key] = f"{total % (1 << 128):032x}:{len(listing.items)}"
        self._sums = sums
        if wanted:
            if len(self._tokens) > 2 * len(listings[0].items if listings else ()) + 100:  # forget deleted articles
                live = {a.id for listing in listings for a in listing.items}
                self._tokens = {id_: token for id_, token in self._tokens.items() if id_ in live}
            known.update({key[len(_PREFIX):]: when for key, when in self.record(wanted).items()})
        return {listing.key: known[listing.key] for listing in listings}, self.page_times(listings, previous, drifted, tokens)

    def page_times(self, listings: list[Listing], previous: Mapping[str, Listing],
                   drifted: set[str] = frozenset(), tokens: Mapping[str, list[int]] | None = None
                   ) -> dict[str, tuple[datetime, ...]]:
        """Each listing's archive pages' times, page 2 first; `previous` is the last snapshot's listings; tokens: the
        items' tokens of listings whose every item times() looked up.

        Only the pages whose items or links changed are hashed and recorded: counted from the oldest, the pages
        below the newest item that left, came or changed keep their sums (items compared by identity, in C).
        """
        wanted: dict[str, str] = {}
        made: dict[str, tuple[_Pages, set[int]]] = {}  # key → (its pages, the pages to date anew, 0 = page 2)
        for listing in listings:
            old, kept = previous.get(listing.key), self._pages.get(listing.key)
            if kept is not None and (old is None or kept.items is not old.items or listing.key in drifted):
                kept = None  # kept from a refresh that did not become the snapshot (it failed), or dated elsewhere
            if kept is not None and kept.items is listing.items:
                made[listing.key] = (kept, set())
                continue
            # What moved since the listing it was updated from, where that is the one its pages were dated with.
            moves = (listing.left, listing.came) if kept is not None and listing.since == id(old) else None
            spans = archive_spans(len(listing.items), self.size, listing.cuts)
            sums, digests = self._paged(listing, spans, kept, moves, (tokens or {}).get(listing.key))
            fresh = {at for at, digest in enumerate(digests)
                     if kept is None or at >= len(kept.digests) or kept.digests[at] != digest}
            times = [None if kept is None or at in fresh else kept.times[at] for at in range(len(digests))]
            wanted.update((f"{_PAGE}{at + 2}:{listing.key}", digests[at]) for at in fresh)
            made[listing.key] = (_Pages(listing.items, (listing.title, listing.description), spans, sums, digests, times), fresh)
        recorded = self.record(wanted) if wanted else {}
        self._pages = {}
        for key, (pages, fresh) in made.items():
            for at in fresh:
                pages.times[at] = recorded[f"{_PAGE}{at + 2}:{key}"]
            pages.times = tuple(pages.times)
            self._pages[key] = pages
        return {key: pages.times for key, pages in self._pages.items()}

    def forget(self) -> None:
        """Date every archive page again at the next times(): those dated last may not be in the state store (their
        transaction failed), and a listing whose items are the same objects would keep them."""
        self._pages = {}

    def page_digests(self, key: str) -> list[str]:
        """The digests the listing's archive pages were last dated by, page 2 first."""
        return self._pages[key].digests

    def _paged(self, listing: Listing, spans: list[tuple[int, int]], kept: _Pages | None,
               moves: tuple[tuple, tuple] | None = None, tokens: list[int] | None = None) -> tuple[list[int], list[str]]:
        """A listing's archive pages' sums and digests (spans: paging.archive_spans), with the sums of the oldest pages
        that kept their items; moves: the items that left the kept pages' items and those that came, where known
        (Listing.left, came); tokens: every item's token, in the items' order, where known."""
        items = listing.items
        total, count = len(items), len(spans)
        taken = 0
        if kept is not None:
            before = kept.items
            if moves is not None:  # no walk from the oldest: a one-file refresh at 100,000 articles saves ~10 ms
                same = min(_from_oldest(before, moves[0]), _from_oldest(items, moves[1]), len(before), total)
            else:  # how many items both orders share from the oldest, by identity (an unchanged article is the same object)
                same = next(compress(itertools.count(), map(operator.is_not, reversed(before), reversed(items))),
                            min(len(before), total))
            # The oldest pages that hold the same items as they did: the same place, below every item that moved.
            while (taken < min(count, len(kept.spans)) and spans[taken] == kept.spans[taken]
                   and spans[taken][1] <= same):
                taken += 1
        sums = kept.sums[:taken] if kept is not None else []
        for start, end in spans[taken:]:  # counted from the oldest: the items' slice is [total - end, total - start)
            sums.append(sum(tokens[total - end:total - start]) if tokens is not None
                        else sum(map(self._token, items[total - end:total - start])))
        # What a page shows besides its items: the listing's head, the page's number and its links (the newest
        # archive page's "previous" is the first page, any other's the page after it). A page that kept its items,
        # its head and its links keeps its digest: 2,000 pages of a 100,000-article listing are not hashed again.
        head = (listing.title, listing.description)
        kept_digests = kept.digests if kept is not None and kept.head == head else []
        return sums, [kept_digests[chunk] if chunk < min(taken, len(kept_digests)) and (chunk + 1 == count) == (chunk + 1 == len(kept_digests))
                      else f"{(_number(repr((self.shape, *head, chunk + 2, chunk + 1 == count))) + part) % (1 << 128):032x}"
                      for chunk, part in enumerate(sums)]

    def _sum(self, listing: Listing, last: tuple[Listing, int] | None, tokens: dict[str, list[int]]) -> int:
        """The sum of the listing's items' tokens (the items' order follows from what each token holds: published
        date and ID), from the last one's: only the items that left or came are hashed, not every item of a
        100,000-item listing (nor when only its head changed: a tombstone that left its first page). Where every
        item is looked up, their tokens go into `tokens` under the listing's key."""
        if last is not None:
            if listing.since == id(last[0]):  # updated from that very listing (`last` keeps it alive): its moves
                return last[1] - sum(map(self._token, listing.left)) + sum(map(self._token, listing.came))
            # By object (the same object is the same article, unchanged), in C: no Python loop over the items.
            before, now = last[0].items, listing.items
            had, has = set(map(id, before)), set(map(id, now))
            left, came = had - has, has - had
            if len(left) + len(came) < len(now) // 2:
                return (last[1] - sum(map(self._token, compress(before, map(left.__contains__, map(id, before)))))
                        + sum(map(self._token, compress(now, map(came.__contains__, map(id, now))))))
        every = tokens[listing.key] = list(map(self._token, listing.items))
        return sum(every)

    def _head(self, listing: Listing) -> int:
        """What a listing's views show besides its items, as a number its digest adds to the items' sum. Tombstones
        (a first page's and a delta's) are part of it; none leaves older digests as they were."""
        return _number(repr((self.shape, listing.title, listing.description) + ((listing.deleted,) if listing.deleted else ())))

    def _token(self, a: Article) -> int:
        token = self._tokens.get(a.id)
        if token is None or token[0] is not a:
            token = self._tokens[a.id] = (a, _number(f"{a.id}\0{a.content_hash}\0{a.published.timestamp()}\0{a.updated.timestamp()}"))
        return token[1]

    def drifted(self, before: Mapping[str, datetime]) -> set[str]:
        """Listings whose digest the store dates differently than this process did (see Renderer.drifted)."""
        if not before or self.alone:
            return set()
        rows = self.read([_PREFIX + key for key in before])
        return {key for key, when in before.items()
                if (row := rows.get(_PREFIX + key)) is not None and row[0] == self.digests.get(key) and row[1] != when}


def _from_oldest(items: tuple[Article, ...], moved: tuple[Article, ...]) -> int:
    """How many of a listing's items (newest first, feeds.order_key) are older than the oldest of `moved`, which
    are among them: found by bisection, so none of the items before it is looked at."""
    return min((len(items) - 1 - bisect_left(items, order_key(a), key=order_key) for a in moved), default=len(items))


def _number(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")

"""When each listing (the site-wide feed, a category) last changed: the date of its archive pages,
`?since=` deltas and partners' views, whose URLs are too many to record one by one.

A listing's digest covers everything those views show of it (each item's ID, content and dates, the
settings that shape them); the state store dates each digest once (state.record_versions), so every
worker and restart agrees.
"""
from __future__ import annotations

import hashlib
from itertools import compress
from datetime import datetime
from typing import Any, Callable, Mapping

from ..model import Article
from ..paging import Listing

Record = Callable[[Mapping[str, str]], Mapping[str, datetime]]
Read = Callable[[list[str]], Mapping[str, tuple[str, datetime]]]
_PREFIX = "listing:"  # the store's key for a listing, beside the URL paths of resources


class ListingVersions:
    """The recorded time of each listing, hashing only listings whose items changed since last time."""

    def __init__(self, record: Record, read: Read, shape: Any):
        self.record, self.read = record, read
        self.shape = shape  # the settings every view of a listing depends on (site, content mode, page size)
        self.digests: dict[str, str] = {}  # listing key → the digest last recorded for it
        self._tokens: dict[str, tuple[Article, int]] = {}  # ID → (article, hash of what a view shows of it)
        self._sums: dict[str, tuple[Listing, int]] = {}  # listing key → (the listing, its sum) as last digested

    def times(self, listings: list[Listing], previous: Mapping[str, Listing], before: Mapping[str, datetime]) -> dict[str, datetime]:
        """Each listing's time; `previous` and `before` are the last snapshot's listings and times."""
        known: dict[str, datetime] = {}
        wanted: dict[str, str] = {}
        drifted = self.drifted(before)
        sums = {}
        for listing in listings:
            old = previous.get(listing.key)
            if (old is not None and (old is listing or old.items == listing.items) and old.title == listing.title
                    and old.deleted == listing.deleted and listing.key not in drifted):
                known[listing.key] = before[listing.key]  # the same article objects: nothing to hash
                if listing.key in self._sums:
                    sums[listing.key] = (listing, self._sums[listing.key][1])
                continue
            total = self._sum(listing, self._sums.get(listing.key))
            sums[listing.key] = (listing, total)
            wanted[_PREFIX + listing.key] = self.digests[listing.key] = f"{total % (1 << 128):032x}:{len(listing.items)}"
        self._sums = sums
        if wanted:
            if len(self._tokens) > 2 * len(listings[0].items if listings else ()) + 100:  # forget deleted articles
                live = {a.id for listing in listings for a in listing.items}
                self._tokens = {id_: token for id_, token in self._tokens.items() if id_ in live}
            known.update({key[len(_PREFIX):]: when for key, when in self.record(wanted).items()})
        return {listing.key: known[listing.key] for listing in listings}

    def _sum(self, listing: Listing, last: tuple[Listing, int] | None) -> int:
        """The listing's sum of its items' tokens (the items' order follows from what each token holds:
        published date and ID), from the last sum when the listing's head is the same: only the items that
        left or came are hashed, not every item of a 10,000-item listing."""
        if last is not None and (last[0].title, last[0].description, last[0].deleted) == (listing.title, listing.description, listing.deleted):
            if listing.since == id(last[0]):  # updated from that very listing (`last` keeps it alive): its moves
                return last[1] - sum(map(self._token, listing.left)) + sum(map(self._token, listing.came))
            # By object (the same object is the same article, unchanged), in C: no Python loop over the items.
            before, now = last[0].items, listing.items
            had, has = set(map(id, before)), set(map(id, now))
            left, came = had - has, has - had
            if len(left) + len(came) < len(now) // 2:
                return (last[1] - sum(map(self._token, compress(before, map(left.__contains__, map(id, before)))))
                        + sum(map(self._token, compress(now, map(came.__contains__, map(id, now))))))
        # Tombstones (a first page's and a delta's) are part of what the views show; none leaves older digests as they were.
        total = _number(repr((self.shape, listing.title, listing.description) + ((listing.deleted,) if listing.deleted else ())))
        return total + sum(self._token(a) for a in listing.items)

    def _token(self, a: Article) -> int:
        token = self._tokens.get(a.id)
        if token is None or token[0] is not a:
            token = self._tokens[a.id] = (a, _number(f"{a.id}\0{a.content_hash}\0{a.published.timestamp()}\0{a.updated.timestamp()}"))
        return token[1]

    def drifted(self, before: Mapping[str, datetime]) -> set[str]:
        """Listings whose digest the store dates differently than this process did (see Renderer.drifted)."""
        if not before:
            return set()
        rows = self.read([_PREFIX + key for key in before])
        return {key for key, when in before.items()
                if (row := rows.get(_PREFIX + key)) is not None and row[0] == self.digests.get(key) and row[1] != when}


def _number(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")

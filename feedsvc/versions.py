"""When each listing (the site-wide feed, a category) last changed: the date of its archive pages,
`?since=` deltas and partners' views, whose URLs are too many to record one by one.

A listing's digest covers everything those views show of it (each item's ID, content and dates, the
settings that shape them); the state store dates each digest once (state.record_versions), so every
worker and restart agrees.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Callable, Mapping

from .feeds import Listing
from .model import Article

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

    def times(self, listings: list[Listing], previous: Mapping[str, Listing], before: Mapping[str, datetime]) -> dict[str, datetime]:
        """Each listing's time; `previous` and `before` are the last snapshot's listings and times."""
        known: dict[str, datetime] = {}
        wanted: dict[str, str] = {}
        tokens, kept = self._tokens, {}
        drifted = self.drifted(before)
        for listing in listings:
            old = previous.get(listing.key)
            if old is not None and old.items == listing.items and old.title == listing.title and listing.key not in drifted:
                known[listing.key] = before[listing.key]  # the same article objects: nothing to hash
                continue
            # The items' order follows from what each token holds (published date, ID): a sum will do.
            total = _number(repr((self.shape, listing.title, listing.description)))
            for a in listing.items:
                token = tokens.get(a.id)
                if token is None or token[0] is not a:
                    token = (a, _number(f"{a.id}\0{a.content_hash}\0{a.published.timestamp()}\0{a.updated.timestamp()}"))
                kept[a.id] = tokens[a.id] = token
                total += token[1]
            wanted[_PREFIX + listing.key] = self.digests[listing.key] = f"{total % (1 << 128):032x}:{len(listing.items)}"
        if wanted:
            if len(tokens) > 2 * len(kept) + 100:  # forget deleted articles
                self._tokens = kept
            known.update({key[len(_PREFIX):]: when for key, when in self.record(wanted).items()})
        return {listing.key: known[listing.key] for listing in listings}

    def drifted(self, before: Mapping[str, datetime]) -> set[str]:
        """Listings whose digest the store dates differently than this process did (see Renderer.drifted)."""
        if not before:
            return set()
        rows = self.read([_PREFIX + key for key in before])
        return {key for key, when in before.items()
                if (row := rows.get(_PREFIX + key)) is not None and row[0] == self.digests.get(key) and row[1] != when}


def _number(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")

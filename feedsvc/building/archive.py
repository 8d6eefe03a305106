"""Archive pages (RFC 5005 §3, ?page=N): where each one ends (ArchiveCuts), and in the static export which of them a
build must touch, and how to touch them without rendering again what did not change.

A listing's archive pages are counted from the oldest item, so a new article changes only the newest archive page.
An article dated back into the archive, or deleted from it, would move every newer item by one place and so every
newer page: a complete page therefore keeps its place for good once it is complete (its bounds, in the state store),
and such an article changes its own page alone (one item more or fewer). RFC 5005 §4 asks that an archive document's
entries not change (https://www.rfc-editor.org/rfc/rfc5005#section-4).

An archive page's items are counted from the oldest, so they rarely change, and each page carries a date of its
own (its Last-Modified, and the RSS <lastBuildDate> or Atom <updated>: versions.py), which moves only when what it
shows does. So each page has a key made of what its bytes are made from apart from that date (the settings, the
listing's head, its page number and place, and each of its items as the build store made it). Same key, new date
(archive pages dated by their listing before, in a state store kept from older code): the page on disk is redated
in place (JSON Feed has no date of its own: only its time moves). Archive pages get no coded form
(precompress.py): nginx compresses the few asked for as they are asked.
"""
from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from dataclasses import replace
from datetime import datetime
from typing import Sequence

from ..formats.content import redate, rfc2822
from ..model import Article
from ..paging import Listing
from .feeds import order_key
from .state import StateStore

# A frozen page that has come to hold more than this many pages' worth of items (a back catalogue imported with its old
# dates) is too long to send: it and the pages newer than it are cut anew by count, each with a new number.
GROWN = 2
Bound = tuple[int, str]  # an item's place: feeds.order_key

# The date element each format carries for the whole document, and how it writes a date there (formats/*.py).
DATES = {"rss": ("lastBuildDate", rfc2822), "atom": ("updated", datetime.isoformat)}


def page_key(shape: str, head: str, made_by: str, size: int, digest: str) -> str:
    """An archive page's key from the digest the state store dated it by (versions.py: its items' IDs, content and
    dates, its number and links), with what that digest leaves out: the code and settings that made the store's rows."""
    return hashlib.sha256(f"{shape}\0{head}\0{made_by}\0{size}\0{digest}".encode()).hexdigest()[:32]


def redated(fmt: str, body: bytes, before: datetime, after: datetime) -> bytes:
    """The page's bytes with its own date moved from `before` to `after` (formats' redate: the first element)."""
    if fmt not in DATES:
        return body
    tag, write = DATES[fmt]
    return redate(body, tag, write(before), write(after))


def redated_head(fmt: str, body, before: datetime, after: datetime) -> tuple[bytes, int]:
    """redated() in two parts, for a page mapped from its file (mmap, or bytes) and never copied whole: the new bytes
    up to and with its own date element, and where in `body` the rest (unchanged) begins. ValueError: no such date."""
    tag, write = DATES[fmt]
    old = f"<{tag}>{write(before)}</{tag}>".encode()
    at = body.find(old)  # the document's own date comes before any item's (formats/content.py redate)
    if at < 0:
        raise ValueError(f"no <{tag}>{write(before)}</{tag}> in the page")
    return body[:at] + f"<{tag}>{write(after)}</{tag}>".encode(), at + len(old)


def freeze(items: Sequence[Article], size: int, bounds: Sequence[Bound],
           moved: tuple[Sequence[int], Sequence[Article], Sequence[Article]] | None = None) -> tuple[list[Bound], tuple[int, ...]]:
    """A listing's frozen archive pages (items newest first, `size` a page): the bounds kept, with those of the pages
    completed since, and how many items each frozen page holds now (Listing.cuts), page 2 first.

    A frozen page holds the items from its bound (the place of its newest item when it was completed, inclusive) to
    the next older page's. Page 1 is never frozen, nor is the newest archive page (its "previous" link changes when a
    page opens after it): a page is frozen once another archive page exists after it. A frozen page that page 1 reaches
    into (its newest articles deleted) is cut by count again, as is a frozen page grown past GROWN pages' worth, with
    every page newer than it (their numbers move); the pages older than it stay as they are.
    moved: the counts these bounds gave the listing the items were updated from, with the items that left it and those
    that came (Listing.left, came): only those are placed (a one-file refresh at 100,000 articles looks up no bound)."""
    total = len(items)
    older = max(total - size, 0)
    bounds = list(bounds)
    if moved is not None and len(moved[0]) == len(bounds):
        counts, ascending = list(moved[0]), bounds[::-1]  # the bounds from the newest page's
        for step, articles in ((-1, moved[1]), (1, moved[2])):
            for a in articles:
                # The frozen pages whose bound is at or after the item (older) are the last `after` ones: it is on the
                # newest of them; on none (newer than every bound), it is past the frozen pages.
                after = bisect_right(ascending, order_key(a))
                if after:
                    counts[len(bounds) - after] += step
        below = sum(counts)
    else:
        counts, below = [], 0
        for bound in bounds:
            reach = total - bisect_left(items, bound, key=order_key)  # the items at or older than the bound
            counts.append(reach - below)
            below = reach
    while bounds and below > older:
        bounds.pop()
        below -= counts.pop()
    grown = next((at for at, count in enumerate(counts) if count > GROWN * size), None)
    if grown is not None:  # that page and every newer one cut by count again; the older ones stay
        del bounds[grown:], counts[grown:]
        below = sum(counts)
    while older - below > size:
        below += size
        bounds.append(order_key(items[total - below]))
        counts.append(size)
    return bounds, tuple(counts)


class ArchiveCuts:
    """Each listing with its frozen archive pages (Listing.cuts), kept in the state store across restarts."""

    def __init__(self, store: StateStore, size: int):
        self.store, self.size = store, size
        self._bounds: dict[str, list[Bound]] | None = None  # listing key → its bounds, as in the store
        self._cut: dict[str, tuple[Listing, Listing]] = {}  # key → (listing, with its cuts), as last applied

    def apply(self, listings: Sequence[Listing]) -> list[Listing]:
        """The listings with their cuts, each the same object as last time while neither changed; records new bounds."""
        if self._bounds is None:
            self._bounds = self.store.archive_bounds(self.size)
        out, put = [], {}
        for listing in listings:
            last = self._cut.get(listing.key)
            if last is not None and last[0] is listing:
                out.append(last[1])
                continue
            before = self._bounds.get(listing.key, [])
            follows = last is not None and listing.since == id(last[0])  # updated from it: what left and came is known
            bounds, cuts = freeze(listing.items, self.size, before,
                                  (last[1].cuts, listing.left, listing.came) if follows else None)
            if bounds != before:
                put[listing.key] = self._bounds[listing.key] = bounds
            # Updated from the listing cut last time: say so of the cut one, which is what versions.py and the build
            # store saw, so they still take only the items that left and came (Listing.since/left/came).
            since = id(last[1]) if follows else listing.since
            cut = listing if cuts == listing.cuts and since == listing.since else replace(listing, cuts=cuts, since=since)
            self._cut[listing.key] = (listing, cut)
            out.append(cut)
        keys = {listing.key for listing in listings}
        gone = {key for key in self._bounds if key not in keys}
        for key in gone:
            del self._bounds[key]
            self._cut.pop(key, None)
        if put or gone:
            self.store.record_bounds(put, gone, self.size)
        return out

    def forget(self) -> None:
        """Read the bounds from the state store again at the next apply(): a transaction that recorded some rolled back."""
        self._bounds, self._cut = None, {}

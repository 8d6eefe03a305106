"""Tombstones (RFC 6721, https://www.rfc-editor.org/rfc/rfc6721): which published entries went from the site,
when, and which feeds carried them, kept in the state store so they survive restarts.

An entry (an article's guid) goes when it is in no listing any more: its file deleted, made a draft, embargoed
again, or its ID changed. Every listing that carried it then announces it (`Listing.deleted`, which the first
page and `?since=` deltas of its feeds show) for the retention period, TOMBSTONE_DAYS; an entry published
again takes its tombstones back. A file still present but unreadable (being written, invalid) holds its entry:
nothing is announced until it is read again or deleted (a broken one's last good version stays published meanwhile,
reading/scan.py Kept, which asks `carries` after a restart). An article that moves to another category is not
deleted (its entry is still published): no tombstone.

A listing key maps to its deletions (`deletions(key)`), whatever the listing: the site-wide feed, a category,
or any listing added later (tags, authors), since what a listing carried is read from the listings themselves.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from ..model import Article, Deleted, guid_key
from ..paging import Listing
from .state import StateStore

KEY_SETS = 4096  # distinct sets of listing keys kept to share among the rows (a few dozen with categories only)


class Tombstones:
    """What the listings carried, kept up to date from one build to the next; the deletions they announce."""

    def __init__(self, store: StateStore, retention: timedelta):
        self.store, self.retention = store, retention
        self._carried: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] | None = None  # as in the store
        self._peeked: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] | None = None  # read by carries() before
        self._members: dict[str, tuple[Listing, set[str]]] = {}  # listing key → (listing seen, its refs)
        self._live: dict[str, Article] = {}  # ref → the published article that has it
        # guid_key → ref of the live refs with a capital letter (written UUIDs, URIs): few, kept as _live changes, so that
        # a ref that goes is told apart from its UUID written in another case without a look at every live ref.
        self._upper: dict[str, str] = {}
        self._held: set[str] = set()  # refs gone from every listing whose file is present but unreadable
        self._deleted: dict[str, dict[str, Deleted]] = {}  # listing key → ref → tombstone, within retention
        self._announced: dict[str, tuple[Deleted, ...]] = {}  # listing key → its tombstones, newest first
        self._dressed: dict[str, tuple[Listing, tuple[Deleted, ...], Listing]] = {}  # key → (listing, tombstones, with them)
        # Each set of listing keys an entry is carried by, once: a few dozen sets among 100,000 entries' rows.
        self._keys: dict[tuple[str, ...], tuple[str, ...]] = {}

    def update(self, listings: Sequence[Listing], now: datetime, held: Iterable[str] = ()) -> tuple[list[Listing], datetime | None]:
        """The listings with their tombstones (Listing.deleted), recording what went or came back at `now`;
        and when the next tombstone expires (a refresh is due then even if no file changes).

        listings: the site-wide listing first, as ListingBuilder gives them (an unchanged listing is the same
        object as last time). held: sources of files present but not readable now.
        """
        first = self._carried is None
        if first:
            self._load()
        loaded = first and bool(self._carried)  # rows read from the store (a restart), not only this update's own
        when = now.astimezone(timezone.utc).replace(microsecond=0)
        touched = self._membership(listings) | self._held
        if first:
            touched |= self._carried.keys() | self._live.keys()
        put, dropped, deleted, returned = {}, set(), [], set()
        held = set(held)
        self._held = set()
        keys_of: dict[str, list[str]] = {}  # each touched ref's listings, in listing order: one pass over them, in C
        for key, (_, refs) in self._members.items():
            for ref in refs & touched:
                keys_of.setdefault(ref, []).append(key)
        announced = set().union(*self._deleted.values())  # refs with a tombstone in any listing: one set, not one look each
        # As GUIDs are told apart (a UUID in any case is one: model.guid_key), for the few refs with a capital letter.
        announced_as = {guid_key(ref): ref for ref in announced if not ref.islower()}
        for ref in touched:
            article = self._live.get(ref)
            before = self._carried.get(ref)
            if article is not None:
                keys = tuple(keys_of.get(ref, ()))
                if len(self._keys) > KEY_SETS:  # tags and authors may make many: keep it bounded
                    self._keys.clear()
                row = (article.source, self._keys.setdefault(keys, keys), article.categories)
                if row != before:
                    put[ref] = self._carried[ref] = row
                if ref in announced:
                    returned.add(ref)
                elif not ref.islower() and (key := guid_key(ref)) in announced:  # back with its UUID written in another
                    returned.add(key)  # case: one GUID (model.guid_key)
                elif announced_as and (spelled := announced_as.get(ref)) is not None:
                    returned.add(spelled)
            elif before is not None:
                if before[0] in held:
                    self._held.add(ref)
                    continue
                dropped.add(ref)
                del self._carried[ref]
                if (key := guid_key(ref)) in self._live or key in self._upper:
                    continue  # its UUID written in another case: one GUID, still published (model.guid_key)
                deleted += [(key, ref, when, before[2]) for key in before[1]]
        cutoff = now - self.retention
        expired = {key: [ref for ref, gone in refs.items() if gone.when <= cutoff] for key, refs in self._deleted.items()}
        changed = {key for key, refs in expired.items() if refs}
        for key, refs in expired.items():
            for ref in refs:
                del self._deleted[key][ref]
        for ref in returned:
            for key, refs in self._deleted.items():
                if refs.pop(ref, None) is not None:
                    changed.add(key)
        for key, ref, moment, categories in deleted:
            if moment > cutoff:
                self._deleted.setdefault(key, {})[ref] = Deleted(ref, moment, categories)
                changed.add(key)
        if put or dropped or deleted or returned or changed:
            self.store.record_carried(put, dropped, deleted, returned, cutoff)
        if loaded:  # the rows as loaded hold the store's own copy of every ref and path: the live articles' strings instead
            self._carried = self._shared(self._carried)
        for key in changed:
            self._announced[key] = tuple(sorted(self._deleted[key].values(), key=lambda d: (d.when, d.ref), reverse=True))
            if not self._announced[key]:
                del self._announced[key], self._deleted[key]
        expires = min((d.when for refs in self._deleted.values() for d in refs.values()), default=None)
        return [self._dress(listing) for listing in listings], None if expires is None else expires + self.retention

    def announce_nothing(self) -> bool:
        """Whether an update now could dress no listing with a tombstone: none was ever loaded, and the store has
        recorded nothing carried or deleted (a deployment's first build). Its update only records what each listing
        carries, and that may come later (site.py: a feeds-first build's, with its pages)."""
        return self._carried is None and self.store.carries_nothing()

    def carries(self, ref: str, source: str) -> bool:
        """Whether the feeds carry this entry from this file: as of the last update, or before this process's first (a
        restart, a builder taking over) as the last build recorded it (the state store's `carried`, read once)."""
        carried = self._carried
        if carried is None:
            if self._peeked is None:
                self._peeked = self.store.carried()
            carried = self._peeked
        row = carried.get(ref)
        return row is not None and row[0] == source

    def deletions(self, key: str) -> tuple[Deleted, ...]:
        """The tombstones a listing's feeds announce, newest first, as of the last update."""
        return self._announced.get(key, ())

    def _load(self) -> None:
        self._carried = self.store.carried() if self._peeked is None else self._peeked
        self._peeked = None
        for key, ref, when, categories in self.store.deletions():
            self._deleted.setdefault(key, {})[ref] = Deleted(ref, when, categories)
        self._announced = {key: tuple(sorted(refs.values(), key=lambda d: (d.when, d.ref), reverse=True))
                           for key, refs in self._deleted.items()}

    def _shared(self, carried: dict[str, tuple]) -> dict[str, tuple]:
        """The same rows, each live entry's made of its article's own ref and path strings (a map of new keys: an
        assignment keeps a key's old object), 13 MB less at 100,000 articles; the others (held: present, unreadable) as
        they are. Every live entry's row is its article's by now (update() put those that differed)."""
        live = self._live
        shared = {ref: (article.source, carried[ref][1], article.categories) for ref, article in live.items() if ref in carried}
        shared.update((ref, row) for ref, row in carried.items() if ref not in live)
        return shared

    def _membership(self, listings: Sequence[Listing]) -> set[str]:
        """Bring each listing's refs up to date; the refs whose membership may have changed.

        A listing ListingBuilder updated from the one seen last time names the items that left and came
        (Listing.since/left/came): only those are looked at, not every item of a 10,000-item listing.
        """
        touched: set[str] = set()
        seen = set()
        for listing in listings:
            seen.add(listing.key)
            last = self._members.get(listing.key)
            if last is not None and last[0] is listing:
                continue
            site_wide = listing.key == ""
            if last is not None and listing.since == id(last[0]):
                refs = last[1]
                for article in listing.left:
                    refs.discard(article.guid)
                    touched.add(article.guid)
                    if site_wide and self._live.get(article.guid) is article:
                        del self._live[article.guid]
                        if not article.guid.islower():
                            self._upper.pop(guid_key(article.guid), None)
                for article in listing.came:
                    refs.add(article.guid)
                    touched.add(article.guid)
                    if site_wide:
                        self._live[article.guid] = article
                        if not article.guid.islower():
                            self._upper[guid_key(article.guid)] = article.guid
            else:
                refs = {a.guid for a in listing.items}
                touched |= refs ^ (last[1] if last is not None else set())
                if site_wide:  # every entry's file or categories may have changed: look at each once
                    self._live = {a.guid: a for a in listing.items}
                    self._upper = {guid_key(ref): ref for ref in self._live if not ref.islower()}
                    touched |= refs
            self._members[listing.key] = (listing, refs)
        for key in self._members.keys() - seen:  # a category with nothing published any more
            touched |= self._members.pop(key)[1]
        return touched

    def _dress(self, listing: Listing) -> Listing:
        """The listing with its tombstones: the same object as last time while neither changed."""
        deleted = self._announced.get(listing.key, ())
        if not deleted:
            self._dressed.pop(listing.key, None)
            return listing
        last = self._dressed.get(listing.key)
        if last is not None and last[0] is listing and last[1] == deleted:
            return last[2]
        # Updated from the listing dressed last time: say so of the dressed one, which is what versions.py saw,
        # so it still takes only the items that left and came (Listing.since/left/came).
        since = id(last[2]) if last is not None and listing.since == id(last[0]) else listing.since
        dressed = replace(listing, deleted=deleted, since=since)
        self._dressed[listing.key] = (listing, deleted, dressed)
        return dressed

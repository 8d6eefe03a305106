"""One file per ID: which file owns each ID and GUID (its first owner, kept in the state store, so across restarts and
workers), followed by what each scan brought and took away rather than by a look at every article.
"""
from __future__ import annotations

import logging
from collections import Counter
from operator import attrgetter
from typing import Iterable, Mapping, Sequence

from ..model import Article, guid_key
from ..reading.articles import Skipped, unique_ids
from .state import StateStore

log = logging.getLogger(__name__)
_ID, _GUID = attrgetter("id"), attrgetter("guid")


def _published(articles: Sequence[Article]) -> Sequence[Article]:
    """The articles that are not drafts: the same sequence when none is (nearly always)."""
    return articles if not any(map(_DRAFT, articles)) else [a for a in articles if not a.draft]


_DRAFT = attrgetter("draft")


class Owners:
    """The owner of each ID and GUID the scans found, and which files are skipped for another's ID (Publisher.refresh)."""

    def __init__(self, store: StateStore):
        self.store = store
        self._owners: dict[str, str] = {}  # ID → the file that owns it, as the state store last said
        self._counts: tuple[dict[str, int], dict[str, int]] = ({}, {})  # how many articles of the scan have each ID, GUID
        self._repeated: set[tuple[int, str]] = set()  # (0, ID) or (1, GUID) that more than one article of the scan has
        self._duplicates: frozenset[Skipped] = frozenset()  # files skipped for another's ID, logged once

    def forget(self) -> None:
        """Ask the state store again for every owner (what it said in a refresh it rolled back is not in it)."""
        self._owners = {}

    def unique(self, scan, synced: bool, held: Mapping[str, tuple[Article, Article]]
               ) -> tuple[list[Article], list[Article] | None, list[Skipped], int]:
        """One file per ID, its first owner (kept in the state store, so across restarts and workers): the articles
        that came into the unique set and went from it since the last call (went None: `came` is every article
        of the set, for the stamping to compare with what it holds), the files skipped for another's ID, and how many
        articles it looked at.

        The usual case (no ID or GUID repeated, nothing skipped for one before, the last call's result followed):
        only the scan's came and went are looked at, and only new IDs, or IDs whose file is not the one last said
        to own them, are asked of the state store. Otherwise every article is looked at (unique_ids). held: the
        articles of the set as last stamped, by ID (as read, as stamped)."""
        owners = self._owners
        looked = 0
        # A draft claims no ID (as it claims no slug): a draft copy saved beside a published file, or first, with its `id:`
        # took the ID, and the published one was skipped, its page 404, until the draft went.
        if synced and not self._repeated and not self._duplicates:
            came, went = _published(scan.came), _published(scan.went)
            self._count(went, -1), self._count(came, 1)
            looked = len(came) + len(went)
            ask = {a.id: [a.source] for a in came if owners.get(a.id) != a.source} if not self._repeated else None
            if ask:
                owners.update(self.store.claim_ids(ask, held={s.source for s in scan.skipped} | scan.pending))
            if ask is not None and all(owners[id_] == sources[0] for id_, sources in ask.items()):
                return list(came), list(went), [], looked
        articles = _published(scan.articles)
        looked += len(articles)
        ids, guids = list(map(_ID, articles)), list(map(guid_key, map(_GUID, articles)))  # as unique_ids tells GUIDs apart
        self._counts = (dict(Counter(ids)), dict(Counter(guids)))
        self._repeated = {(k, key) for k, counts in enumerate(self._counts) for key, n in counts.items() if n > 1}
        if not self._repeated:  # only the articles not stamped last time can have a new owner
            came = [a for a in articles if held.get(a.id, (None,))[0] is not a]
            ask = {a.id: [a.source] for a in came if owners.get(a.id) != a.source}
        else:
            files: dict[str, list[str]] = {}
            for a in articles:
                files.setdefault(a.id, []).append(a.source)
            ask = {id_: sources for id_, sources in files.items() if len(sources) > 1 or owners.get(id_) != sources[0]}
        if ask:  # only new IDs, IDs in dispute, or whose file is not the one last said to own them
            owners.update(self.store.claim_ids(ask, held={s.source for s in scan.skipped} | scan.pending))
            if len(owners) > 2 * len(articles) + 100:  # forget deleted IDs: the store remembers them
                self._owners = owners = {a.id: owners[a.id] for a in articles}
        if not self._repeated and all(owners[id_] == sources[0] for id_, sources in ask.items()):
            unique, duplicates = list(articles), []
        else:
            unique, duplicates = unique_ids(articles, owners, self._guid_owners(articles))
        for skip in sorted(set(duplicates) - self._duplicates, key=lambda s: s.source):
            log.warning("skipped %s", skip)
        self._duplicates = frozenset(duplicates)
        return unique, None, duplicates, looked

    def _guid_owners(self, articles: Sequence[Article]) -> dict[str, str]:
        """The file that keeps each GUID several IDs share (rare: `id: <uuid>` in one file and `id: urn:uuid:<uuid>` in
        another, or one URI the id of two): the one whose ID the state store saw first, so an article published for
        months keeps its GUID when a newer file names it too; an ID never seen comes last, then path order."""
        shared = {guid for k, guid in self._repeated if k == 1}
        if not shared:
            return {}
        by_guid: dict[str, list[Article]] = {}
        for a in articles:
            if (guid := guid_key(a.guid)) in shared:
                by_guid.setdefault(guid, []).append(a)
        seen = self.store.first_seen(sorted({a.id for group in by_guid.values() for a in group}))
        found = {}
        for guid, group in by_guid.items():
            files: dict[str, list[str]] = {}  # each ID's files, in path order (one ID's own dispute is its owner's)
            for a in group:
                files.setdefault(a.id, []).append(a.source)
            if len(files) < 2:
                continue
            first = min(files, key=lambda id_: (seen.get(id_) is None, seen.get(id_) or "", files[id_][0]))
            owner = self._owners.get(first)
            found[guid] = owner if owner in files[first] else files[first][0]
        return found

    def _count(self, articles: Iterable[Article], step: int) -> None:
        """Follow how many articles of the scan have each ID and GUID (those more than one has: _repeated)."""
        for a in articles:
            for k, key in enumerate((a.id, guid_key(a.guid))):
                counts = self._counts[k]
                n = counts.get(key, 0) + step
                if n > 0:
                    counts[key] = n
                else:
                    counts.pop(key, None)
                if n > 1:
                    self._repeated.add((k, key))
                else:
                    self._repeated.discard((k, key))

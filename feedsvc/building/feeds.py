"""Which articles go into which feed: publication rules, order, limits, categories and languages."""
from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from itertools import compress
from dataclasses import dataclass
from operator import attrgetter
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

from ..model import Article, Category, Feed, Site
from ..paging import Listing, page_feed
from ..reading.text import SLUG_MAX, make_slug
from ..urls import category_url, home_url

_BY_ID, _BY_PUBLISHED = attrgetter("id"), attrgetter("published")  # C-level sort keys: 10,000 articles a refresh


def is_published(article: Article, now: datetime) -> bool:
    """Drafts never are; an article dated in the future is held back until its time (embargo)."""
    return not article.draft and article.published is not None and article.published <= now


def newest_first(articles: Iterable[Article]) -> list[Article]:
    """Newest published first; equal times ordered by ID so the order never depends on the disk."""
    return sorted(sorted(articles, key=_BY_ID), key=_BY_PUBLISHED, reverse=True)


def next_release(articles: Iterable[Article], now: datetime) -> datetime | None:
    """The earliest embargo still ahead, or None."""
    ahead = [a.published for a in articles if not a.draft and a.published and a.published > now]
    return min(ahead, default=None)


def assign_slugs(names: Iterable[str], configured: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
    """Category name → a unique URL slug: configured first, then the slug a name was first published under.

    A published slug belongs to its category for good (`recorded`, kept in the state store), even while
    the category has nothing published. A new name gets its own slug when that is free, else the slug
    cut short plus a hash of the whole name. Among names new at once, who keeps a contested slug does not
    depend on the order they turn up: a name that is already its own slug ("sport" before "Sport"), then
    name order. CATEGORY_SLUGS is the operator's word: a configured slug goes to its name whatever the record.
    """
    names = set(names)
    reserved = set(configured.values())
    out = {name: configured[name] for name in names if name in configured}
    out.update({name: recorded[name] for name in names - out.keys() if name in recorded and recorded[name] not in reserved})
    taken = reserved | set(recorded.values()) | set(out.values())
    new = names - out.keys()
    wanted = {name: make_slug(name, {}) for name in new}
    for name in sorted(new, key=lambda n: (wanted[n] != n, n)):
        slug = wanted[name] if wanted[name] not in taken else _hashed_slug(wanted[name], name, taken)
        taken.add(slug)
        out[name] = slug
    return out


def _hashed_slug(slug: str, name: str, taken: set[str]) -> str:
    """The slug cut short plus a hash of the whole name (salted again in the unlikely case that is taken)."""
    salt = ""
    while True:
        digest = hashlib.sha256((name + salt).encode("utf-8")).hexdigest()[:8]
        candidate = f"{slug[:SLUG_MAX - 9].rstrip('-')}-{digest}"
        if candidate not in taken:
            return candidate
        salt += "\0"


def build_listings(articles: Iterable[Article], site: Site, slugs: Mapping[str, str], now: datetime,
                   recorded: Mapping[str, str] | None = None) -> list[Listing]:
    """The site-wide listing first, then one per category with live articles, in name order.

    slugs: the configured CATEGORY_SLUGS; recorded: the slugs categories were first published under.
    """
    live = newest_first(a for a in articles if is_published(a, now))
    # Only published articles name categories: a draft or an embargoed article claims no URL.
    members: dict[str, list[Article]] = {}
    for a in live:
        for name in a.categories:
            members.setdefault(name, []).append(a)
    chosen = assign_slugs(members, slugs, recorded or {})
    description = site.description or site.title
    listings = [Listing("", site.title, description, None, tuple(live), home_url(site))]
    for name in sorted(members):
        category = Category(name=name, slug=chosen[name])
        page = category_url(site, category.slug)
        listings.append(Listing(category.slug, f"{site.title} — {name}", f"{name}: {description}", category, tuple(members[name]), page))
    return listings


class ListingBuilder:
    """build_listings() kept up to date from one refresh to the next: the articles that changed are taken
    out of the previous order and put back in by binary search, instead of sorting every article again.

    The listings it returns are those build_listings() gives for the same arguments (a Hypothesis property
    in tests/test_feeds.py); a listing whose items did not change is the previous Listing object.
    """

    def __init__(self) -> None:
        self._articles: tuple[Article, ...] = ()  # the articles last built
        self._ids: set[int] = set()  # their id()s
        self._live: list[Article] = []  # published, newest first
        self._members: dict[str, list[Article]] = {}  # category name → its published articles, newest first
        self._held: dict[str, Article] = {}  # dated after the last `now`: embargoed
        self._now: datetime | None = None
        self._dirty: dict[str, _Moves] = {}  # category name ("" = site-wide) → the items that moved since last built
        self._built: dict[str, tuple[tuple, Listing]] = {}  # name → (what it was made of, the Listing)

    def build(self, articles: Iterable[Article], site: Site, slugs: Mapping[str, str], now: datetime,
              recorded: Mapping[str, str] | None = None) -> list[Listing]:
        """What build_listings(articles, site, slugs, now, recorded) returns; articles have unique IDs."""
        articles = tuple(articles)  # kept until the next build: nobody else's list to change
        # Which objects are new and which went, by identity, in C: no Python loop over 10,000 articles.
        before, had, has = self._articles, self._ids, set(map(id, articles))
        came = list(compress(articles, map((has - had).__contains__, map(id, articles))))
        left = list(compress(before, map((had - has).__contains__, map(id, before))))
        if self._now is None or now < self._now or len(came) + len(left) > max(64, len(articles) // 8):
            self._rebuild(articles, now)
        else:
            for old in left:
                self._take_out(old)
            for a in came:
                self._put_in(a, now)
            for a in [a for a in self._held.values() if a.published <= now]:  # embargoes over
                del self._held[a.id]
                self._put_in(a, now)
            self._now = now
        self._articles, self._ids = articles, has  # the list keeps the objects alive, so their ids stay theirs
        return self._listings(site, slugs, recorded or {})

    def _rebuild(self, articles, now: datetime) -> None:
        self._live = newest_first(a for a in articles if is_published(a, now))
        self._held = {a.id: a for a in articles if not a.draft and a.published is not None and a.published > now}
        self._members = {}
        for a in self._live:
            for name in a.categories:
                self._members.setdefault(name, []).append(a)
        self._now, self._dirty, self._built = now, {}, {}

    def _take_out(self, old: Article) -> None:
        if self._held.get(old.id) is old:
            del self._held[old.id]
        elif _remove(self._live, old):
            self._moved("").left.append(old)
            for name in old.categories:
                members = self._members[name]
                _remove(members, old)
                if not members:
                    del self._members[name]
                self._moved(name).left.append(old)

    def _put_in(self, article: Article, now: datetime) -> None:
        if article.draft or article.published is None:
            return
        if article.published > now:
            self._held[article.id] = article
            return
        insort(self._live, article, key=_order)
        self._moved("").came.append(article)
        for name in article.categories:
            insort(self._members.setdefault(name, []), article, key=_order)
            self._moved(name).came.append(article)

    def _moved(self, name: str) -> "_Moves":
        moves = self._dirty.get(name)
        if moves is None:
            moves = self._dirty[name] = _Moves([], [])
        return moves

    def _listings(self, site: Site, slugs: Mapping[str, str], recorded: Mapping[str, str]) -> list[Listing]:
        chosen = assign_slugs(self._members, slugs, recorded)
        description = site.description or site.title
        built, dirty = self._built, self._dirty
        out = []
        for name in ["", *sorted(self._members)]:
            made_of = (site, chosen.get(name))
            previous = built.get(name)
            if previous is not None and previous[0] == made_of and name not in dirty:
                out.append(previous[1])
                continue
            moves = dirty.get(name)
            delta = {} if previous is None or moves is None else {
                "since": id(previous[1]), "left": tuple(moves.left), "came": tuple(moves.came)}
            if not name:
                listing = Listing("", site.title, description, None, tuple(self._live), home_url(site), **delta)
            else:
                category = Category(name=name, slug=chosen[name])
                page = category_url(site, category.slug)
                listing = Listing(category.slug, f"{site.title} — {name}", f"{name}: {description}", category,
                                  tuple(self._members[name]), page, **delta)
            built[name] = (made_of, listing)
            out.append(listing)
        for name in built.keys() - self._members.keys() - {""}:
            del built[name]
        dirty.clear()
        return out


@dataclass
class _Moves:
    """The articles that left and came into one listing since it was last built."""

    left: list[Article]
    came: list[Article]


_EPOCH, _MICROSECOND = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(microseconds=1)


def _order(article: Article) -> tuple[int, str]:
    """newest_first()'s order as an ascending key: later published first, equal times by ID (exact integers)."""
    return -((article.published - _EPOCH) // _MICROSECOND), article.id


def _remove(ordered: list[Article], article: Article) -> bool:
    """Take an article out of a list in _order; False when it is not there."""
    at = bisect_left(ordered, _order(article), key=_order)
    if at < len(ordered) and ordered[at] is article:
        del ordered[at]
        return True
    return False


def live_categories(articles: Iterable[Article], now: datetime) -> set[str]:
    """The names of the categories that have a published article at `now`: those that need a slug."""
    # is_published() inlined: a refresh asks this of every article.
    return {name for a in articles if not a.draft and a.published is not None and a.published <= now for name in a.categories}


def build_feeds(articles: Iterable[Article], site: Site, slugs: dict[str, str], max_items: int, now: datetime) -> list[Feed]:
    """The first page of every feed: the site-wide feed first, then one per category in name order."""
    return [page_feed(listing, site, max_items, 1) for listing in build_listings(articles, site, slugs, now)]

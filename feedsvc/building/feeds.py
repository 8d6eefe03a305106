"""Which articles go into which feed: publication rules, order, limits, categories, tags, authors and languages."""
from __future__ import annotations

import hashlib
import unicodedata
from bisect import bisect_left, insort
from itertools import compress
from dataclasses import dataclass, replace
from operator import attrgetter
from datetime import datetime
from typing import Callable, Iterable, Mapping

from ..model import KIND_WORDS, Article, Category, Feed, Site, item_place
from ..paging import Listing, page_feed
from ..slugs import hashed_slug, make_slug
from ..urls import home_url, listing_key, listing_url

_BY_ID, _BY_PUBLISHED = attrgetter("id"), attrgetter("published")  # C-level sort keys: 10,000 articles a refresh


def is_published(article: Article, now: datetime) -> bool:
    """Drafts never are; an article dated in the future is held back until its time (embargo)."""
    return not article.draft and article.published is not None and article.published <= now


def newest_first(articles: Iterable[Article]) -> list[Article]:
    """Newest published first; equal times ordered by ID so the order never depends on the disk."""
    return sorted(sorted(articles, key=_BY_ID), key=_BY_PUBLISHED, reverse=True)


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
        candidate = hashed_slug(slug, digest)
        if candidate not in taken:
            return candidate
        salt += "\0"


def build_listings(articles: Iterable[Article], site: Site, slugs: Mapping[str, str], now: datetime,
                   recorded: Mapping[str, str] | None = None, terms: Mapping[str, Mapping[str, str]] | None = None) -> list[Listing]:
    """The site-wide listing first, then one per category with live articles in name order, then one per
    tag and one per author likewise.

    slugs: the configured CATEGORY_SLUGS; recorded: the slugs categories were first published under;
    terms: the same for tags and authors, by kind ("tag", "author").
    """
    live = newest_first(a for a in articles if is_published(a, now))
    # Only published articles name categories, tags and authors: a draft or an embargoed article claims no URL.
    members: dict[tuple[str, str], list[Article]] = {}
    for a in live:
        for group in groups(a):
            members.setdefault(group, []).append(a)
    chosen = choose_slugs(members, slugs, recorded or {}, terms or {})
    listings = [Listing("", site.title, site.description or site.title, None, tuple(live), home_url(site))]
    for group in sorted(members, key=_group_order):
        listings.append(_listing(site, group, chosen[group], tuple(members[group])))
    return listings


KINDS = ("category", "tag", "author")  # the listings besides the site-wide one, in the order they are listed
# A tag's or an author's feed title calls it in the language of the name's own script (model.KIND_WORDS), so a
# right-to-left name is never joined to an English word by a colon that a right-to-left line would put on the wrong side
# (found in review): English for a left-to-right name, Hebrew for a Hebrew one, and for one in Arabic script the site's
# language where it is written so (a Persian site's tags were titled with Arabic's "وسم"), else Arabic.
# Site languages written in Arabic script whose own words a name in that script takes (their varieties' tags too).
_ARABIC_SCRIPT_WORDS = {"fa": "fa", "pes": "fa", "prs": "fa", "ur": "ur"}


def groups(article: Article) -> tuple[tuple[str, str], ...]:
    """The listings an article is in besides the site-wide one: (kind, name) of its categories, tags and author."""
    out = [("category", name) for name in article.categories]
    out += [("tag", name) for name in article.tags]
    if article.author:
        out.append(("author", article.author))
    return tuple(out)


def choose_slugs(members: Iterable[tuple[str, str]], slugs: Mapping[str, str], recorded: Mapping[str, str],
                 terms: Mapping[str, Mapping[str, str]]) -> dict[tuple[str, str], str]:
    """(kind, name) → its slug; each kind has its own slugs: categories with CATEGORY_SLUGS and their record,
    tags and authors with theirs (`terms`, by kind)."""
    names: dict[str, list[str]] = {}
    for kind, name in members:
        names.setdefault(kind, []).append(name)
    out = {}
    for kind, these in names.items():
        chosen = assign_slugs(these, slugs, recorded) if kind == "category" else assign_slugs(these, {}, terms.get(kind, {}))
        out.update(((kind, name), slug) for name, slug in chosen.items())
    return out


def label(kind: str, name: str, site_language: str = "") -> str:
    """What a tag's or an author's feed calls it: by the script its name starts in (see _ARABIC_SCRIPT_WORDS)."""
    first = next((c for c in name if unicodedata.bidirectional(c) in ("L", "R", "AL") and unicodedata.category(c) != "Cf"), "a")
    if unicodedata.bidirectional(first) == "AL":
        language = _ARABIC_SCRIPT_WORDS.get(site_language.split("-")[0].lower(), "ar")
    else:
        language = "he" if "\u0590" <= first <= "\u05ff" or "\ufb1d" <= first <= "\ufb4f" else "en"
    return KIND_WORDS[kind][language]


def _listing(site: Site, group: tuple[str, str], slug: str, items: tuple) -> Listing:
    """The listing of a category, tag or author, titled in the site's style."""
    kind, name = group
    description = site.description or site.title
    category = Category(name=name, slug=slug, kind=kind)
    page, key = listing_url(site, kind, slug), listing_key(kind, slug)
    if kind == "category":
        return Listing(key, f"{site.title} — {name}", f"{name}: {description}", category, items, page)
    word = label(kind, name, site.language)
    return Listing(key, f"{site.title} — {word}: {name}", f"{word} {name}: {description}", category, items, page)


def _group_order(group: tuple[str, str]) -> tuple[int, str]:
    return KINDS.index(group[0]), group[1]


class ListingBuilder:
    """build_listings() kept up to date from one refresh to the next: the articles that changed are taken
    out of the previous order and put back in by binary search, instead of sorting every article again.

    The listings it returns are those build_listings() gives for the same arguments (a Hypothesis property
    in tests/test_feeds.py and tests/test_taxonomies.py); a listing whose items did not change is the previous
    Listing object, so one saved file touches only the site-wide listing and its own categories', tags' and
    author's.
    """

    def __init__(self) -> None:
        self._articles: tuple[Article, ...] | None = ()  # the articles last built (None: fed by apply())
        self._ids: set[int] = set()  # their id()s
        self._live: list[Article] = []  # published, newest first
        self._members: dict[tuple[str, str], list[Article]] = {}  # (kind, name) → its published articles, newest first
        self._held: dict[str, Article] = {}  # dated after the last `now`: embargoed
        self._now: datetime | None = None
        self._dirty: dict[tuple[str, str], _Moves] = {}  # group (_SITE = site-wide) → the items that moved since last built
        self._built: dict[tuple[str, str], tuple[tuple, Listing]] = {}  # group → (what it was made of, the Listing)

    def build(self, articles: Iterable[Article], site: Site, slugs: Mapping[str, str], now: datetime,
              recorded: Mapping[str, str] | None = None, terms: Mapping[str, Mapping[str, str]] | None = None) -> list[Listing]:
        """What build_listings(articles, site, slugs, now, recorded, terms) returns; articles have unique IDs."""
        self.update(articles, now)
        return self.listings(site, slugs, recorded or {}, terms or {})

    def names(self, kind: str) -> set[str]:
        """The categories, tags or authors (kind) with a published article since the last update(): those that need a slug."""
        return {name for k, name in self._members if k == kind}

    def newest_published(self) -> datetime | None:
        """When the newest article published as of the last update() or apply() was dated (None: none is)."""
        return self._live[0].published if self._live else None

    def next_release(self) -> datetime | None:
        """The earliest embargo still ahead among the articles of the last update() (those held back), or None."""
        return min((a.published for a in self._held.values()), default=None)

    def update(self, articles: Iterable[Article], now: datetime) -> None:
        """Take in the articles as they are at `now` (unique IDs); listings() then gives their listings."""
        articles = tuple(articles)  # kept until the next build: nobody else's list to change
        # Which objects are new and which went, by identity, in C: no Python loop over 10,000 articles.
        if self._articles is None:  # fed by apply() until now
            self._now = None
        before, had, has = self._articles or (), self._ids, set(map(id, articles))
        came = list(compress(articles, map((has - had).__contains__, map(id, articles))))
        left = list(compress(before, map((had - has).__contains__, map(id, before))))
        if self._now is None or now < self._now or len(came) + len(left) > max(64, len(articles) // 8):
            self._rebuild(articles, now)
        else:
            self._move(came, left, now)
        self._articles, self._ids = articles, has  # the list keeps the objects alive, so their ids stay theirs

    def apply(self, came: Iterable[Article], left: Iterable[Article], now: datetime, total: int,
              everything: Callable[[], Iterable[Article]]) -> None:
        """update() told what changed instead of given every article: the articles that came (new objects) and
        those that left since the last apply(); `total` articles in all, which everything() gives (taken when a
        first build, a clock gone back, or a change to more than an eighth of them asks for a new order).
        A builder that apply() feeds is fed by apply() only (update() after it builds again from every article)."""
        came, left = list(came), list(left)
        if self._now is None or now < self._now or len(came) + len(left) > max(64, total // 8):
            self._rebuild(tuple(everything()), now)
        else:
            self._move(came, left, now)
        self._articles, self._ids = None, set()  # no identity to compare with: a later update() builds again

    def _move(self, came: list[Article], left: list[Article], now: datetime) -> None:
        """Take out what left, put in what came, and release the embargoes that ended by `now`."""
        for old in left:
            self._take_out(old)
        for a in came:
            self._put_in(a, now)
        for a in [a for a in self._held.values() if a.published <= now]:  # embargoes over
            del self._held[a.id]
            self._put_in(a, now)
        self._now = now

    def _rebuild(self, articles, now: datetime) -> None:
        self._live = newest_first(a for a in articles if is_published(a, now))
        self._held = {a.id: a for a in articles if not a.draft and a.published is not None and a.published > now}
        self._members = {}
        for a in self._live:
            for group in groups(a):
                self._members.setdefault(group, []).append(a)
        self._now, self._dirty, self._built = now, {}, {}

    def _take_out(self, old: Article) -> None:
        if self._held.get(old.id) is old:
            del self._held[old.id]
        elif _remove(self._live, old):
            self._moved(_SITE).left.append(old)
            for group in groups(old):
                members = self._members[group]
                _remove(members, old)
                if not members:
                    del self._members[group]
                self._moved(group).left.append(old)

    def _put_in(self, article: Article, now: datetime) -> None:
        if article.draft or article.published is None:
            return
        if article.published > now:
            self._held[article.id] = article
            return
        insort(self._live, article, key=order_key)
        self._moved(_SITE).came.append(article)
        for group in groups(article):
            insort(self._members.setdefault(group, []), article, key=order_key)
            self._moved(group).came.append(article)

    def _moved(self, group: tuple[str, str]) -> "_Moves":
        moves = self._dirty.get(group)
        if moves is None:
            moves = self._dirty[group] = _Moves([], [])
        return moves

    def listings(self, site: Site, slugs: Mapping[str, str], recorded: Mapping[str, str],
                 terms: Mapping[str, Mapping[str, str]]) -> list[Listing]:
        """The listings of the articles last taken in (update()); slugs and records as build_listings() takes them."""
        chosen = choose_slugs(self._members, slugs, recorded, terms)
        description = site.description or site.title
        built, dirty = self._built, self._dirty
        out = []
        for group in [_SITE, *sorted(self._members, key=_group_order)]:
            made_of = (site, chosen.get(group))
            previous = built.get(group)
            if previous is not None and previous[0] == made_of and group not in dirty:
                out.append(previous[1])
                continue
            moves = dirty.get(group)
            delta = {} if previous is None or moves is None else {
                "since": id(previous[1]), "left": tuple(moves.left), "came": tuple(moves.came)}
            if group == _SITE:
                listing = Listing("", site.title, description, None, tuple(self._live), home_url(site), **delta)
            else:
                listing = replace(_listing(site, group, chosen[group], tuple(self._members[group])), **delta)
            built[group] = (made_of, listing)
            out.append(listing)
        for group in built.keys() - self._members.keys() - {_SITE}:
            del built[group]
        dirty.clear()
        return out


_SITE = ("", "")  # the site-wide listing's group


@dataclass
class _Moves:
    """The articles that left and came into one listing since it was last built."""

    left: list[Article]
    came: list[Article]


def order_key(article: Article) -> tuple[int, str]:
    """newest_first()'s order as an ascending key: later published first, equal times by ID (model.item_place)."""
    return item_place(article.published, article.id)


def _remove(ordered: list[Article], article: Article) -> bool:
    """Take an article out of a list in order_key's order; False when it is not there."""
    at = bisect_left(ordered, order_key(article), key=order_key)
    if at < len(ordered) and ordered[at] is article:
        del ordered[at]
        return True
    return False


def build_feeds(articles: Iterable[Article], site: Site, slugs: dict[str, str], max_items: int, now: datetime) -> list[Feed]:
    """The first page of every feed: the site-wide feed first, then one per category in name order."""
    return [page_feed(listing, site, max_items, 1) for listing in build_listings(articles, site, slugs, now)]

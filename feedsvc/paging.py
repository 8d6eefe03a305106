"""A listing — everything one feed could show, newest first — and the feeds cut from it: page N (RFC 5005
paging) or the items since a moment, each a model.Feed in the listing's dominant language.

Neutral: the builder cuts each listing's first page (building/feeds.py) and a serving process cuts archive
pages, deltas and partners' views from the stored listing (serving/variants.py) with these same functions.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Callable, Iterable, Sequence
from .model import UNDATED, Article, Category, Deleted, Feed, Site, item_place
from .urls import page_query, since_query


def dominant_language(items: Iterable[Article], default: str) -> str:
    """The most common language among the items; ties go to the site language, then alphabetically."""
    counts = Counter(a.lang for a in items)
    if not counts:
        return default
    return max(sorted(counts), key=lambda lang: (counts[lang], lang == default))


@dataclass(frozen=True)
class Listing:
    """Everything one feed could show: its metadata and all its live items, newest first."""

    key: str  # "" for the site-wide feed, a category slug, "tag/<slug>" or "author/<slug>"
    title: str
    description: str
    category: Category | None
    items: tuple[Article, ...]
    page_url: str
    deleted: tuple[Deleted, ...] = ()  # tombstones of the entries it carried that are gone (building/tombstones.py), newest first
    # How many items each frozen archive page holds, page 2 (the oldest) first (building/archive.py ArchiveCuts): a
    # page whose place is kept once it was complete, so an article dated back into it or deleted from it changes that
    # page alone. The items past them are cut by count (archive_spans). Empty: every archive page cut by count.
    cuts: tuple[int, ...] = ()
    # What changed since the listing this one was updated from (ListingBuilder): id() of that Listing (0 =
    # none), the items that left it and those that came. Not part of what a listing is (compare=False).
    since: int = field(default=0, compare=False, repr=False)
    left: tuple[Article, ...] = field(default=(), compare=False, repr=False)
    came: tuple[Article, ...] = field(default=(), compare=False, repr=False)


def archive_spans(total: int, size: int, cuts: Sequence[int] = ()) -> tuple[tuple[int, int], ...]:
    """Each archive page's items as (start, end) counted from the oldest item, page 2 first: the frozen pages'
    (cuts, as far as they stay below page 1), then the rest cut by count, `size` a page, from the oldest."""
    return _layout(total, size, tuple(cuts))[0]


@lru_cache(maxsize=256)
def _layout(total: int, size: int, cuts: tuple[int, ...]) -> tuple[tuple[tuple[int, int], ...], int]:
    """archive_spans(), and how many of them are frozen pages: made once per listing, not once per page asked for (an
    export asks for each of a 100,000-article listing's 2,000 pages in three formats)."""
    older, spans, start = max(total - size, 0), [], 0
    for count in cuts:
        if start + count > older:  # page 1 reaches into it (the newest deleted): cut by count from here
            break
        spans.append((start, start + count))
        start += count
    frozen = len(spans)
    spans += [(at, min(at + size, older)) for at in range(start, older, size)]
    if frozen and start == older:
        # Nothing past the frozen pages (their newest items deleted, or moved to page 1): the newest archive page stays,
        # empty, so that the last frozen page keeps its "previous" link, its bytes and its completeness.
        spans.append((older, older))
    return tuple(spans), frozen


def page_count(total: int, size: int, cuts: Sequence[int] = ()) -> int:
    """Pages of a feed: the first holds the newest `size` items, the rest are archive pages (archive_spans)."""
    return 1 + len(_layout(total, size, tuple(cuts))[0])


def page_feed(listing: Listing, site: Site, size: int, page: int, kept: bool = True, **options) -> Feed | None:
    """Page `page` of a listing (RFC 5005 §3 paging), or None when there is no such page.

    Page 1 is the newest `size` items. The older items are cut into archive pages counted from the oldest, so a
    page's number and content never change as new articles arrive: page 2 holds the oldest items, page 3 the next,
    and the highest number the newest (perhaps not yet full). A complete page keeps its place for good
    (Listing.cuts): an article dated back into it, or deleted from it, changes that page alone.
    Walking "next" from page 1 goes 1, P, P-1, …, 2: every item once, newest to oldest. kept: whether a full page keeps
    its items (False for a view cut by count, where one deleted shifts the rest): only then is it complete (archive).
    https://www.rfc-editor.org/rfc/rfc5005#section-3
    """
    items, total = listing.items, len(listing.items)
    pages = page_count(total, size, listing.cuts)
    if not 1 <= page <= pages:
        return None
    if page == 1:
        chosen, complete = items[:size], False
    else:
        start, end, complete = page_items(total, size, page, listing.cuts)
        complete = complete and kept
        chosen = items[start:end]
    newer = None if page == 1 else (1 if page == pages else page + 1)
    older_page = (pages if pages > 1 else None) if page == 1 else (page - 1 if page > 2 else None)
    links = [("first", ""), ("last", page_query(2 if pages > 1 else 1))]
    if newer is not None:
        links.append(("previous", page_query(newer)))
    if older_page is not None:
        links.append(("next", page_query(older_page)))
    links = links if pages > 1 else []  # one page: nothing to walk
    if page > 1:  # a WebSub hub hears of the first pages alone: advertised here, its subscribers would hear nothing
        options = {**options, "hub": ""}  # https://www.w3.org/TR/websub/#publishing
    return _feed(listing, site, chosen, query=page_query(page), links=tuple(links), archive=complete,
                 deleted=listing.deleted if page == 1 else (), **options)


def page_items(total: int, size: int, page: int, cuts: Sequence[int] = ()) -> tuple[int, int, bool]:
    """(start, end, complete): the slice of a listing's items (newest first) that archive page `page` (2 or more) holds,
    and whether it is complete: frozen (cuts) or full, and not the newest archive page, whose "previous" link is page
    1 until a page opens after it (its bytes change then: RFC 5005 §4 archives do not)."""
    spans, frozen = _layout(total, size, tuple(cuts))
    if not 2 <= page <= len(spans) + 1:
        return total, total, False
    start, end = spans[page - 2]
    complete = (page - 2 < frozen or end - start == size) and page <= len(spans)
    return total - end, total - start, complete


def page_date(changed: datetime, pages: Sequence[datetime], page: int) -> datetime:
    """When page `page` of a listing last changed: an archive page's own time (versions.py), else the listing's."""
    return pages[page - 2] if 2 <= page < len(pages) + 2 else changed


_ONE_SECOND = timedelta(seconds=1)
# How long before `since` a build may have landed and not been seen by the reader's worker yet (it looks at the store
# every store.LOOK_SECONDS, 20 ms). Not a whole second: a build that waited for the next whole second (Last-Modified)
# lands a few ms into it, and a reader polling with that Last-Modified + 1 s got its items again at every poll.
LANDING_SLACK = timedelta(seconds=0.25)


def since_feed(listing: Listing, site: Site, size: int, since: datetime, page: int = 1,
               after: tuple[datetime, str] | None = None, landed_after: LandedAfter | None = None, **options) -> Feed | None:
    """Items published, updated or recorded after `since` (changed_after), newest first, `size` a page; None past the
    last page. A page after the first is asked for by where the one before it ended (`after`: its last item's
    published time and id, the listing's order), or, as before, by number (`page`).

    landed_after: the builds a reader answered at `since` may not have seen (store.StoreReader.landed_after): the delta
    reaches back to what they are dated from (delta_start), and is dated (`updated`, if given) when the last landed."""
    items = listing.items  # a serving process's stored items pick theirs without loading the rest (variants.py)
    before, landed = delta_start(since, landed_after)
    if landed is not None and "updated" in options:
        # Its bytes change as such a build lands, the listing unchanged (they reach back further): so does its date.
        options = {**options, "updated": max(options["updated"], landed)}
    newer = items.newer_than(before) if hasattr(items, "newer_than") else [a for a in items if changed_after(a, before)]
    if after is not None:
        # Where the page before ended, not how many items came before it: an item deleted from a page a reader has
        # walked past moved every older one up a place, and counted by number the next page began one item too late
        # (the item it skipped was older than the reader's next `since`: missed for good). A new one moved them down
        # (one item twice: harmless). The place is the item's published time and id, not the item: it may be gone.
        mark = item_place(*after)
        newer = newer.after(*after) if hasattr(newer, "after") else [a for a in newer if item_place(a.published, a.id) > mark]
        page = 1
    start = (page - 1) * size
    if page < 1 or (page > 1 and start >= len(newer)):
        return None
    chosen = tuple(newer[start:start + size])
    # RFC 5005 §3: a paged feed's links are optional, one at least; "last" and "previous" are left out, as a delta's
    # pages are reached from where the page before ended (an older item's place cannot be known ahead).
    links = []
    if start + size < len(newer):
        links = [("first", since_query(since)), ("next", since_query(since, after=(chosen[-1].published, chosen[-1].id)))]
    elif page > 1 or after is not None:
        links = [("first", since_query(since))]
    query = since_query(since, page, after)
    # What went since, too. A tombstone is dated to its whole second (building/tombstones.py), the items to the
    # microsecond: one of the second `since` falls in may have gone after it, so it is told (once more is harmless, RFC
    # 6721; never is for good: `since` = the last Last-Modified, the usual poll, missed every deletion of that second).
    # And those a build the reader may not have seen dated as its refresh began (delta_start).
    first = page == 1 and after is None
    deleted = tuple(gone for gone in listing.deleted if gone.when > before) if first else ()
    options = {**options, "hub": ""}  # a delta is asked for, never published to a hub (page_feed)
    return _feed(listing, site, chosen, query=query, links=tuple(links), deleted=deleted, **options)


# (landed after, dated before) → (the earliest time dated from, the latest landing) of those builds, or None
LandedAfter = Callable[[datetime, datetime], "tuple[datetime, datetime] | None"]


def delta_start(since: datetime, landed_after: LandedAfter | None = None) -> tuple[datetime, datetime | None]:
    """The moment a delta from `since` holds what changed after (items and tombstones alike): the second before the
    earlier of `since` and the earliest time the builds landed after `since` - LANDING_SLACK are dated from (landed_after); and
    when the last of those dated before `since` landed (None: none is)."""
    # From the second before `since`, as tombstones (since_feed): a build is made, then waits for the next whole second to
    # be dated (Last-Modified has whole seconds), so an embargo released while it waited, dated within that second, is in
    # the next build only, and `since` = this one's Last-Modified, the usual poll, missed it for good. An item of that
    # second a reader had already comes again, which it takes as the same item (its id).
    # Year 1's first second has no second before it (DateTime.MinValue, a client's "everything"): from there, as it is.
    if since.replace(tzinfo=None) - datetime.min < _ONE_SECOND:
        return since, None
    # And from the second before what the builds it may not have seen were dated at. A reader answered at `since` (its
    # Date, cut to the second, or its Last-Modified, earlier) saw every build that landed LANDING_SLACK before it, its
    # worker looking at the store every LOOK_SECONDS; what a later build shows anew is dated at its refresh's start (a new file,
    # an edit, a deletion's tombstone) or an embargo's end, seconds before it landed when the refresh is slow: a new
    # article and a deletion dated as a 3 s refresh began were in no delta for a reader polling with the Date of its
    # answers, then and after (found in review). Read from the store, as the builds are: the same bytes in every process.
    found = landed_after(since - LANDING_SLACK, since) if landed_after is not None else None
    if found is None:
        return since - _ONE_SECOND, None
    dated, landed = found
    return (dated - _ONE_SECOND if dated.replace(tzinfo=None) - datetime.min >= _ONE_SECOND else dated), landed


def changed_after(article: Article, since: datetime) -> bool:
    """Whether a delta from `since` holds an article: published, updated or recorded as it is (a new or returned story
    with an older `date:` or `updated:`, which the reader polling since then never had) after it."""
    return article.published > since or article.updated > since or (article.recorded is not None and article.recorded > since)


def _feed(listing: Listing, site: Site, items: Iterable[Article], updated: datetime = UNDATED, **options) -> Feed:
    """updated: when the listing last changed, for feeds rendered on request; UNDATED for the renderer to date."""
    items = tuple(items)
    return Feed(
        key=listing.key,
        title=listing.title,
        description=listing.description,
        category=listing.category,
        items=items,
        language=dominant_language(items, site.language),
        updated=updated,
        page_url=listing.page_url,
        **options,
    )

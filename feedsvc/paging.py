"""A listing — everything one feed could show, newest first — and the feeds cut from it: page N (RFC 5005
paging) or the items since a moment, each a model.Feed in the listing's dominant language.

Neutral: the builder cuts each listing's first page (building/feeds.py) and a serving process cuts archive
pages, deltas and partners' views from the stored listing (serving/variants.py) with these same functions.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence
from urllib.parse import quote

from .model import UNDATED, Article, Category, Deleted, Feed, Site


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
    # What changed since the listing this one was updated from (ListingBuilder): id() of that Listing (0 =
    # none), the items that left it and those that came. Not part of what a listing is (compare=False).
    since: int = field(default=0, compare=False, repr=False)
    left: tuple[Article, ...] = field(default=(), compare=False, repr=False)
    came: tuple[Article, ...] = field(default=(), compare=False, repr=False)


def page_count(total: int, size: int) -> int:
    """Pages of a feed: the first holds the newest `size` items, the rest are archive pages."""
    return 1 + -(-max(total - size, 0) // size)


def page_feed(listing: Listing, site: Site, size: int, page: int, **options) -> Feed | None:
    """Page `page` of a listing (RFC 5005 §3 paging), or None when there is no such page.

    Page 1 is the newest `size` items. The older items are cut into archive pages counted from the
    oldest, so a page's number and content never change as new articles arrive: page 2 holds the
    oldest `size` items, page 3 the next, and the highest number the newest (perhaps not yet full).
    Walking "next" from page 1 goes 1, P, P-1, …, 2: every item once, newest to oldest.
    https://www.rfc-editor.org/rfc/rfc5005#section-3
    """
    items, total = listing.items, len(listing.items)
    pages = page_count(total, size)
    if not 1 <= page <= pages:
        return None
    if page == 1:
        chosen, complete = items[:size], False
    else:
        start, end, complete = page_items(total, size, page)
        chosen = items[start:end]
    newer = None if page == 1 else (1 if page == pages else page + 1)
    older_page = (pages if pages > 1 else None) if page == 1 else (page - 1 if page > 2 else None)
    links = [("first", ""), ("last", _page_query(2 if pages > 1 else 1))]
    if newer is not None:
        links.append(("previous", _page_query(newer)))
    if older_page is not None:
        links.append(("next", _page_query(older_page)))
    links = links if pages > 1 else []  # one page: nothing to walk
    return _feed(listing, site, chosen, query=_page_query(page), links=tuple(links), archive=complete,
                 deleted=listing.deleted if page == 1 else (), **options)


def page_items(total: int, size: int, page: int) -> tuple[int, int, bool]:
    """(start, end, complete): the slice of a listing's items (newest first) that archive page `page` (2 or more) holds,
    and whether it is complete: full, and not the newest archive page, whose "previous" link is page 1 until a page
    opens after it (its bytes change then: RFC 5005 §4 archives do not)."""
    chunk = page - 2  # 0 = the oldest archive chunk
    older = total - size
    complete = (chunk + 1) * size <= older and page < page_count(total, size)
    return total - min((chunk + 1) * size, older), total - chunk * size, complete


def page_date(changed: datetime, pages: Sequence[datetime], page: int) -> datetime:
    """When page `page` of a listing last changed: an archive page's own time (versions.py), else the listing's."""
    return pages[page - 2] if 2 <= page < len(pages) + 2 else changed


def since_feed(listing: Listing, site: Site, size: int, since: datetime, page: int, **options) -> Feed | None:
    """Items published or updated after `since`, newest first, `size` a page; None past the last page."""
    items = listing.items  # a serving process's stored items pick theirs without loading the rest (variants.py)
    newer = items.newer_than(since) if hasattr(items, "newer_than") else [a for a in items if a.published > since or a.updated > since]
    pages = max(1, -(-len(newer) // size))
    if not 1 <= page <= pages:
        return None
    base = "?since=" + quote(since.isoformat().replace("+00:00", "Z"), safe=":")
    links = [("first", base), ("last", f"{base}&page={pages}")]
    if page > 1:
        links.append(("previous", base if page == 2 else f"{base}&page={page - 1}"))
    if page < pages:
        links.append(("next", f"{base}&page={page + 1}"))
    links = links if pages > 1 else []
    query = base if page == 1 else f"{base}&page={page}"
    deleted = tuple(gone for gone in listing.deleted if gone.when > since) if page == 1 else ()  # what went since, too
    return _feed(listing, site, newer[(page - 1) * size: page * size], query=query, links=tuple(links), deleted=deleted, **options)


def _page_query(page: int) -> str:
    return "" if page == 1 else f"?page={page}"


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

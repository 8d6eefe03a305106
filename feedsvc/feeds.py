"""Which articles go into which feed: publication rules, order, limits, categories and languages."""
from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import quote

from .model import Article, Category, Feed, Site
from .text import SLUG_MAX, make_slug

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # the `updated` of a feed with no items yet


def is_published(article: Article, now: datetime) -> bool:
    """Drafts never are; an article dated in the future is held back until its time (embargo)."""
    return not article.draft and article.published is not None and article.published <= now


def newest_first(articles: Iterable[Article]) -> list[Article]:
    """Newest published first; equal times ordered by ID so the order never depends on the disk."""
    return sorted(sorted(articles, key=lambda a: a.id), key=lambda a: a.published, reverse=True)


def next_release(articles: Iterable[Article], now: datetime) -> datetime | None:
    """The earliest embargo still ahead, or None."""
    ahead = [a.published for a in articles if not a.draft and a.published and a.published > now]
    return min(ahead, default=None)


def assign_categories(articles: Iterable[Article], slugs: dict[str, str]) -> dict[str, Category]:
    """Category name → Category with a unique slug, in name order.

    Who keeps a contested slug does not depend on the order names turn up: a configured slug first,
    then a name that is already its own slug ("sport" before "Sport"), then name order. The others
    get the slug cut short plus a hash of the whole name, so two names never share a URL.
    """
    names = {c for a in articles for c in a.categories}
    wanted = {name: make_slug(name, slugs) for name in names}
    taken: set[str] = set()
    categories: dict[str, Category] = {}
    for name in sorted(names, key=lambda n: (n not in slugs, wanted[n] != n, n)):
        slug = wanted[name] if wanted[name] not in taken else _hashed_slug(wanted[name], name, taken)
        taken.add(slug)
        categories[name] = Category(name=name, slug=slug)
    return dict(sorted(categories.items()))


def _hashed_slug(slug: str, name: str, taken: set[str]) -> str:
    """The slug cut short plus a hash of the whole name (salted again in the unlikely case that is taken)."""
    salt = ""
    while True:
        digest = hashlib.sha256((name + salt).encode("utf-8")).hexdigest()[:8]
        candidate = f"{slug[:SLUG_MAX - 9].rstrip('-')}-{digest}"
        if candidate not in taken:
            return candidate
        salt += "\0"


def dominant_language(items: Iterable[Article], default: str) -> str:
    """The most common language among the items; ties go to the site language, then alphabetically."""
    counts = Counter(a.lang for a in items)
    if not counts:
        return default
    return max(sorted(counts), key=lambda lang: (counts[lang], lang == default))


def build_feeds(articles: Iterable[Article], site: Site, slugs: dict[str, str], max_items: int, now: datetime) -> list[Feed]:
    """The site-wide feed first, then one feed per category in name order."""
    articles = [a for a in articles if not a.draft]
    live = newest_first(a for a in articles if is_published(a, now))
    # Slugs are given out over embargoed articles too, so a release never moves another category's URL.
    categories = assign_categories(articles, slugs)
    description = site.description or site.title
    feeds = [_feed("", site.title, description, None, live[:max_items], site, site.url + "/")]
    for name, category in categories.items():
        items = [a for a in live if name in a.categories][:max_items]
        if not items:
            continue  # a category whose articles are all still embargoed has no feed yet
        page = f"{site.url}/category/{quote(category.slug, safe='')}/"
        feeds.append(_feed(category.slug, f"{site.title} — {name}", f"{name}: {description}", category, items, site, page))
    return feeds


def _feed(key: str, title: str, description: str, category: Category | None, items: list[Article], site: Site, page_url: str) -> Feed:
    return Feed(
        key=key,
        title=title,
        description=description,
        category=category,
        items=tuple(items),
        language=dominant_language(items, site.language),
        updated=max((a.updated for a in items), default=EPOCH),
        page_url=page_url,
    )


def feed_url(site: Site, feed: Feed, fmt: str) -> str:
    """Absolute URL of a feed in a format; Unicode slugs percent-encoded."""
    return f"{site.url}/{quote(feed.path(fmt), safe='/')}"


def article_url(site: Site, article: Article) -> str:
    """Absolute URL of an article's page."""
    return f"{site.url}/articles/{quote(article.id, safe='/')}"

"""The absolute URLs the site publishes: a feed's (in a format, with a query) and an article page's."""
from __future__ import annotations

from urllib.parse import quote

from .model import Article, Feed, Site


def feed_url(site: Site, feed: Feed, fmt: str, query: str | None = None) -> str:
    """Absolute URL of a feed (this page, or the page with `query`) in a format; Unicode percent-encoded."""
    return f"{site.url}/{quote(feed.path(fmt), safe='/')}{feed.query if query is None else query}"


def article_url(site: Site, article: Article) -> str:
    """Absolute URL of an article's page."""
    return f"{site.url}/articles/{quote(article.id, safe='/')}"

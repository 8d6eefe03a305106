"""A search as a feed and as a page: the Feed of the articles a query found (search.py finds them), and the
HTML page that shows them and lets browsers discover the query's three feeds (templates/search.html).
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence
from urllib.parse import quote_plus

from .feeds import dominant_language
from .model import Article, Feed, Site, text_direction
from .pages import _ENV, _FORMAT_LABELS, _rows

PREFIX = "search/"  # a search feed's path: search/feed.<fmt>, with the query in ?q=


def query_string(query: str) -> str:
    """The query part of a search's URLs as a form sends it: spaces as "+", every other reserved or non-ASCII
    character percent-encoded (so a feed's self link is the URL a reader subscribed to from the page)."""
    return "?q=" + quote_plus(query, safe="")


def search_feed(query: str, items: Sequence[Article], site: Site, updated: datetime, full_text: bool) -> Feed:
    """The feed of a search: its items newest first, its self link carrying the query, its own Atom ID."""
    shown = " ".join(query.split())
    items = tuple(items)
    return Feed(key="", title=f"{site.title} — {shown}", description=f"The newest articles matching “{shown}” on {site.title}",
                category=None, items=items, language=dominant_language(items, site.language), updated=updated,
                page_url=f"{site.url}/{PREFIX}{query_string(query)}", prefix=PREFIX, query=query_string(query),
                full_text=full_text, identity="search:" + shown)


def render_search(feed: Feed, query: str, site: Site) -> bytes:
    """The search's page: its articles and, for autodiscovery and to subscribe, its feeds."""
    shown = " ".join(query.split())
    links = [{"type": media, "href": f"{site.url}/{PREFIX}feed.{fmt}{feed.query}", "label": label, "title": f"{feed.title} ({label})"}
             for fmt, media, label in _FORMAT_LABELS]
    html = _ENV.get_template("search.html").render(
        site=site, lang=feed.language, dir=text_direction(feed.language), feed_links=links, query=shown,
        articles=_rows(feed.items, site), summaries=True,
    )
    return html.encode("utf-8")

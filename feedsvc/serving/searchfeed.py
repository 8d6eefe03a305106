"""A search as a feed and as a page: the Feed of the articles a query found (search.py finds them), and the
HTML page that shows them and lets browsers discover the query's feeds (templates/search.html).
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from ..formats import FORMATS
from ..formats.pages import _ENV, _rows, page_words
from ..model import Article, Feed, Site, text_direction
from ..paging import dominant_language
from ..urls import SEARCH, search_query, search_url


def search_feed(words: str, items: Sequence[Article], site: Site, updated: datetime, full_text: bool) -> Feed:
    """The feed of a search: its items newest first, its self link carrying the query, its own Atom ID."""
    shown = " ".join(words.split())
    items = tuple(items)
    return Feed(key="", title=f"{site.title} — {shown}", description=f"The newest articles matching “{shown}” on {site.title}",
                category=None, items=items, language=dominant_language(items, site.language), updated=updated,
                page_url=search_url(site, words), prefix=SEARCH, query=search_query(words), full_text=full_text,
                identity="search:" + shown)


def render_search(feed: Feed, words: str, site: Site) -> bytes:
    """The search's page: its articles and, for autodiscovery and to subscribe, its feeds."""
    links = [{"type": f.media_type, "href": search_url(site, words, key), "label": f.label, "title": f"{feed.title} ({f.label})"}
             for key, f in FORMATS.items()]
    html = _ENV.get_template("search.html").render(
        site=site, lang=feed.language, dir=text_direction(feed.language), feed_links=links, query=" ".join(words.split()),
        articles=_rows(feed.items, site, summaries=True), summaries=True, words=page_words(feed.language),
    )
    return html.encode("utf-8")

"""A search as a feed: the Feed of the articles a query found (search.py finds them); its HTML page is
formats/pages.py's render_search, beside the site's other pages.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from ..model import Article, Feed, Site
from ..paging import dominant_language
from ..urls import SEARCH, search_query, search_url


def search_feed(words: str, items: Sequence[Article], site: Site, updated: datetime, full_text: bool) -> Feed:
    """The feed of a search: its items newest first, its self link carrying the query, its own Atom ID."""
    shown = " ".join(words.split())
    items = tuple(items)
    language = dominant_language(items, site.language)
    # In the feed's language where the pages have words of their own for it (an Arabic search feed said it in English).
    description = (f"أحدث المقالات التي تطابق «{shown}» على {site.title}" if language.split("-")[0].lower() == "ar"
                   else f"The newest articles matching “{shown}” on {site.title}")
    return Feed(key="", title=f"{site.title} — {shown}", description=description,
                category=None, items=items, language=language, updated=updated,
                page_url=search_url(site, words), prefix=SEARCH, query=search_query(words), full_text=full_text,
                identity="search:" + shown)


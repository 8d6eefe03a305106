"""HTML pages for people: the home page, category pages and article pages, from templates/.

Every value is escaped by Jinja's autoescape; only the article body, already sanitised, is marked safe.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from jinja2 import Environment, PackageLoader, select_autoescape

from .feeds import EPOCH, article_url, dominant_language, feed_url
from .model import Article, Feed, Site, text_direction

_ENV = Environment(
    loader=PackageLoader("feedsvc", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_FORMAT_LABELS = (("rss", "application/rss+xml", "RSS"), ("atom", "application/atom+xml", "Atom"), ("json", "application/feed+json", "JSON Feed"))
LATEST_ON_HOME = 20


def feed_links(site: Site, feed: Feed) -> list[dict]:
    """Autodiscovery and subscribe links for a feed in every format."""
    return [
        {"type": media, "href": feed_url(site, feed, key), "label": label, "title": f"{feed.title} ({label})"}
        for key, media, label in _FORMAT_LABELS
    ]


def render_pages(feeds: list[Feed], live: list[Article], site: Site) -> dict[str, tuple[bytes, datetime]]:
    """Every HTML page by URL path: body bytes and last-modified time."""
    site_feed, category_feeds = feeds[0], feeds[1:]
    by_name = {f.category.name: f for f in category_feeds if f.category}
    pages = {"": _index(site_feed, category_feeds, live, site)}
    for feed in category_feeds:
        members = [a for a in live if feed.category.name in a.categories]
        pages[f"category/{feed.key}/"] = _category(feed, members, site)
    for article in live:
        pages[f"articles/{article.id}"] = _article(article, [by_name[c] for c in article.categories if c in by_name], site)
    return pages


def _index(site_feed: Feed, category_feeds: list[Feed], live: list[Article], site: Site) -> tuple[bytes, datetime]:
    latest = live[:LATEST_ON_HOME]
    rows = [
        {"name": f.category.name, "page": f.page_url, "count": sum(1 for a in live if f.category.name in a.categories), "feeds": feed_links(site, f)}
        for f in category_feeds
    ]
    lang = dominant_language(latest, site.language)
    html = _ENV.get_template("index.html").render(
        site=site, lang=lang, dir=text_direction(lang), feed_links=feed_links(site, site_feed),
        categories=rows, articles=_rows(latest, site),
    )
    return html.encode("utf-8"), _newest(live)


def _category(feed: Feed, members: list[Article], site: Site) -> tuple[bytes, datetime]:
    html = _ENV.get_template("category.html").render(
        site=site, lang=feed.language, dir=text_direction(feed.language), feed_links=feed_links(site, feed),
        category=feed.category, articles=_rows(members, site),
    )
    return html.encode("utf-8"), _newest(members)


def _article(article: Article, feeds: list[Feed], site: Site) -> tuple[bytes, datetime]:
    links = [link for feed in feeds for link in feed_links(site, feed)]
    html = _ENV.get_template("article.html").render(
        site=site, lang=article.lang, dir=article.direction, feed_links=links, article=article,
        categories=[{"name": f.category.name, "page": f.page_url} for f in feeds],
        published_iso=article.published.isoformat(), published_text=_human(article.published),
        updated_iso=article.updated.isoformat(), updated_text=_human(article.updated),
    )
    return html.encode("utf-8"), article.updated


def _rows(articles: Iterable[Article], site: Site) -> list[dict]:
    return [
        {"title": a.title, "url": article_url(site, a), "lang": a.lang, "direction": a.direction,
         "published_iso": a.published.isoformat(), "published_text": _human(a.published)}
        for a in articles
    ]


def _human(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _newest(articles: Iterable[Article]) -> datetime:
    return max((a.updated for a in articles), default=EPOCH)

"""JSON Feed 1.1, written by hand (feedgen has none). Spec: https://www.jsonfeed.org/version/1.1/"""
from __future__ import annotations

import orjson

from ..model import Article, Feed, Site
from ..urls import article_url, feed_url
from .content import item_terms, public_url, wrapped_html

from . import JSON_FEED_TYPE as MEDIA_TYPE  # noqa: E402 - the one place formats' media types are written
VERSION = "https://jsonfeed.org/version/1.1"
# JSON Feed 1.1 lets a publisher add keys that start with "_": https://www.jsonfeed.org/version/1.1/#extensions-a-name-extensions-a
EXTENSION = "_feedsvc"


def render_json_feed(feed: Feed, site: Site) -> bytes:
    """Render a feed as JSON Feed 1.1 bytes (UTF-8, keys in a fixed order), the whole document in one go."""
    return serialise(document(feed, site, [item(article, site, feed.language, feed.full_text) for article in feed.items])) + b"\n"


def document(feed: Feed, site: Site, items: list) -> dict:
    """The top-level object with these items (formats/fragments.py passes none and splits where they go)."""
    document = {
        "version": VERSION,
        "title": feed.title,
        "home_page_url": feed.page_url,
        "feed_url": feed_url(site, feed, "json"),
        "description": feed.description,
        "language": feed.language,
        "authors": [{"name": site.author}],
        "items": items,
    }
    links = dict(feed.links)
    if "next" in links:  # older items: https://www.jsonfeed.org/version/1.1/#top-level-a-name-top-level-a
        document["next_url"] = feed_url(site, feed, "json", links["next"])
    if feed.hub:
        document["hubs"] = [{"type": "WebSub", "url": feed.hub}]
    if feed.deleted:  # tombstones, as RFC 6721 gives them in Atom, in an extension object (README "Tombstones")
        document[EXTENSION] = {"deleted": [{"id": gone.ref, "when": _rfc3339(gone.when)} for gone in feed.deleted]}
    return document


def serialise(value) -> bytes:
    """Compact UTF-8 JSON, by orjson: the very bytes of json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    encoded as UTF-8 (tests/test_formats.py holds it to them), a third of the time (the 10,000-article export's 400
    JSON Feed pages: 0.28 s against 0.90).

    An item serialised alone gives the same bytes as inside the document's items array.
    """
    return orjson.dumps(value)


def date_json_feed(body: bytes, when, undo: bool = False) -> bytes:
    """A JSON Feed as it is: the format has no date of its own (its Last-Modified still moves)."""
    return body


def item(article: Article, site: Site, feed_language: str, full_text: bool) -> dict:
    """An article as a JSON Feed item; it names its own language only when it differs from feed_language."""
    item = {"id": article.guid, "url": article_url(site, article), "title": article.title}
    if full_text:
        item["content_html"] = wrapped_html(article)
        item["content_text"] = article.body_text or article.summary
    else:  # summary-only mode: JSON Feed needs content_html or content_text
        item["content_text"] = article.summary
    item.update({
        "summary": article.summary,
        "date_published": _rfc3339(article.published),
        "date_modified": _rfc3339(article.updated),
    })
    image = public_url(article.image)
    if image:
        item["image"] = image
    if article.author:
        item["authors"] = [{"name": article.author}]
    terms = item_terms(article)
    if terms:
        item["tags"] = terms
    if article.lang != feed_language:
        item["language"] = article.lang
    return item


def _rfc3339(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")

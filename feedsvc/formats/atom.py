"""Atom 1.0 with feedgen. Spec: RFC 4287, https://www.rfc-editor.org/rfc/rfc4287"""
from __future__ import annotations

from datetime import datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from ..model import Article, Deleted, Feed, Site, stable_id
from ..urls import HTML_TYPE, article_url, feed_url
from .content import (
    GENERATOR, GENERATOR_URI, UNDATED, add_stylesheet, feed_links, item_terms, listed_language, public_url, redate,
    wrapped_html,
)
from .templates import ATTR, ISO, TEXT

from . import ATOM_TYPE as MEDIA_TYPE  # noqa: E402 - the one place formats' media types are written
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MEDIA_NS = "http://search.yahoo.com/mrss/"
TOMBSTONES_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721
FOOT = b"</feed>\n"  # what follows the last entry in serialise()'s bytes


class _EntryExtras(BaseEntryExtension):
    """Per-entry xml:lang (RFC 4287 §2) when it differs from the feed's, and a Media RSS lead image."""

    def __init__(self) -> None:
        self.lang: str | None = None
        self.image: str | None = None

    def extend_ns(self):
        return {"media": MEDIA_NS}

    def extend_atom(self, entry):
        if self.lang:
            entry.set(XML_LANG, self.lang)
        if self.image:
            etree.SubElement(entry, f"{{{MEDIA_NS}}}content", url=self.image, medium="image")
        return entry


class _FeedExtras(BaseExtension):
    """Declares the Media RSS namespace on the root element, adds the browser stylesheet and the tombstones.

    Tombstones (RFC 6721 §3: https://www.rfc-editor.org/rfc/rfc6721#section-3) come before the entries, in the
    feed's head, newest first; the at: namespace is declared only on a feed that has one, so every other
    feed's bytes stay as they were.
    """

    def __init__(self) -> None:
        self.feed_path = ""
        self.deleted: tuple[Deleted, ...] = ()

    def extend_ns(self):
        return {"media": MEDIA_NS, "at": TOMBSTONES_NS} if self.deleted else {"media": MEDIA_NS}

    def extend_atom(self, feed):
        add_stylesheet(feed, self.feed_path)
        for gone in self.deleted:
            etree.SubElement(feed, f"{{{TOMBSTONES_NS}}}deleted-entry", ref=gone.ref, when=gone.when.isoformat())
        return feed


def render_atom(feed: Feed, site: Site) -> bytes:
    """Render a feed as Atom 1.0 bytes: the whole document in one go (formats/fragments.py assembles the same)."""
    fg = channel(feed, site)
    for article in feed.items:
        add_item(fg, article, site, feed.language, feed.full_text)
    return serialise(fg)


def channel(feed: Feed, site: Site) -> FeedGenerator:
    """A feed's <feed> element with everything but its entries."""
    fg = FeedGenerator()
    fg.register_extension("extras", _FeedExtras, _EntryExtras, atom=True, rss=False)
    # A tag's or an author's feed is named apart from a category's of the same name ("feed:tag:<name>"); a
    # search's by its query (Feed.identity).
    kind = feed.category.kind if feed.category else "category"
    name = feed.identity or "feed:" + ("" if kind == "category" else kind + ":") + (feed.category.name if feed.category else "")
    # A partner's view (its full text, its licensed categories) is a feed of its own, not the public one under another
    # URL: an aggregator that knows feeds by their atom:id took the two for one (RFC 4287 §4.2.6). Each partner's its own.
    fg.id(stable_id(f"partner:{feed.viewer}:{name}" if feed.viewer else name))
    fg.extras.feed_path = feed.path("atom")
    fg.extras.deleted = feed.deleted
    fg.title(feed.title)
    fg.subtitle(feed.description)
    fg.author(name=site.author)
    fg.link(href=feed_url(site, feed, "atom"), rel="self", type=MEDIA_TYPE)
    fg.link(href=feed.page_url, rel="alternate", type=HTML_TYPE)
    for rel, href in feed_links(feed, site, "atom"):
        fg.link(href=href, rel=rel)
    fg.language(listed_language(feed.language))  # xml:lang as the validator takes it (content.listed_language)
    fg.updated(feed.updated)
    fg.generator(GENERATOR, uri=GENERATOR_URI)
    return fg


def serialise(fg: FeedGenerator) -> bytes:
    """The document's bytes: pretty-printed UTF-8 with an XML declaration."""
    return fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)


def date_atom(body: bytes, when: datetime, undo: bool = False) -> bytes:
    """An Atom feed rendered UNDATED, with its own <updated> (before every entry's) set to when (undo: the reverse,
    building/rebase.py)."""
    dates = (UNDATED.isoformat(), when.isoformat())
    return redate(body, "updated", *(dates[::-1] if undo else dates))


def add_item(fg: FeedGenerator, article: Article, site: Site, feed_language: str, full_text: bool) -> None:
    """Append an article's <entry>."""
    put_item(fg, item_values(article, site, feed_language, full_text))


# Each value an entry is made of and how the serialiser writes it (formats/templates.py): in that order in item_values.
ITEM_SLOTS = (("id", TEXT), ("title", TEXT), ("link", ATTR), ("published", ISO), ("updated", ISO), ("summary", TEXT),
              ("content", TEXT), ("author", TEXT), ("terms", ATTR), ("lang", ATTR), ("image", ATTR))
ITEM_DEFAULTED = ("updated",)  # given None, feedgen writes the moment the entry was made: never a cut's


def item_values(article: Article, site: Site, feed_language: str, full_text: bool) -> dict:
    """What an article's <entry> says, as feedgen is given it; it names its own xml:lang (content.listed_language) only
    when its language differs from feed_language. None for a part it leaves out, a tuple for a part it repeats."""
    return {
        "id": article.guid,
        "title": article.title,
        "link": article_url(site, article),
        "published": article.published,
        "updated": article.updated,
        "summary": article.summary,
        "content": wrapped_html(article) if full_text else None,
        "author": article.author or None,
        "terms": tuple(item_terms(article)),
        "lang": listed_language(article.lang) if article.lang != feed_language else None,
        "image": public_url(article.image),
    }


def put_item(fg: FeedGenerator, values: dict) -> None:
    """Append an <entry> of these values (item_values) through feedgen."""
    entry = fg.add_entry(order="append")
    entry.id(values["id"])
    entry.title(values["title"])
    entry.link(href=values["link"], rel="alternate", type=HTML_TYPE)
    entry.published(values["published"])
    entry.updated(values["updated"])
    entry.summary(values["summary"])
    if values["content"] is not None:
        entry.content(values["content"], type="html")
    if values["author"] is not None:
        entry.author(name=values["author"])
    for term in values["terms"]:
        entry.category(term=term)
    entry.extras.lang = values["lang"]
    entry.extras.image = values["image"]

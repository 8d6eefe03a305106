"""RSS 2.0 with feedgen. Spec: https://www.rssboard.org/rss-specification

Extras readers rely on: content:encoded for the full body (https://web.resource.org/rss/1.0/modules/content/),
dc:creator for authors without an e-mail address, atom:link rel="self" (RSS Advisory Board best practice), and
dc:language for each item's own language (https://www.dublincore.org/specifications/dublin-core/dcmi-terms/elements11/language/):
RSS 2.0 has no element for it, and without content:encoded (PUBLIC_CONTENT=summary) nothing else names it.
"""
from __future__ import annotations

from datetime import datetime

import feedgen.entry
import feedgen.feed
import feedgen.util
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from ..model import Article, Feed, Site
from ..urls import article_url, feed_url
from .content import (
    GENERATOR, GENERATOR_URI, UNDATED, add_stylesheet, feed_links, item_terms, listed_language, public_url, redate, rfc2822,
    text_as_html, wrapped_html,
)
from .templates import ATTR, CDATA, PLAIN, RFC2822, TEXT, hex_references

from . import RSS_TYPE as MEDIA_TYPE  # noqa: E402 - the one place formats' media types are written
FOOT = b"  </channel>\n</rss>\n"  # what follows the last item in serialise()'s bytes
MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
# The elements that hold plain text (an item's <description> and content:encoded hold HTML), written as the RSS Best
# Practices Profile asks where they could be read as HTML (templates.hex_references).
PLAIN_TEXT = ("channel/title", "channel/description", f"channel/{{{DC_NS}}}creator",
              "channel/item/title", "channel/item/category", f"channel/item/{{{DC_NS}}}creator")

# feedgen's RSS dates without its setlocale calls (content.rfc2822: the same text, and no thread changes the
# process's locale). Every RSS rendering of ours comes through this module, so feedgen's own dates its feeds with it.
feedgen.util.formatRFC2822 = feedgen.feed.formatRFC2822 = feedgen.entry.formatRFC2822 = rfc2822


class _MediaImage(BaseEntryExtension):
    """Adds <media:content medium="image"> for an article's lead image (Media RSS)."""

    def __init__(self) -> None:
        self.url: str | None = None

    def extend_ns(self):
        return {"media": MEDIA_NS}

    def extend_rss(self, item):
        if self.url:
            etree.SubElement(item, f"{{{MEDIA_NS}}}content", url=self.url, medium="image")
        return item


class _FeedExtras(BaseExtension):
    """Declares the Media RSS namespace on the root element and adds the browser stylesheet."""

    def __init__(self) -> None:
        self.feed_path = ""
        self.links: list[tuple[str, str]] = []

    def extend_ns(self):
        return {"media": MEDIA_NS}

    def extend_rss(self, feed):
        add_stylesheet(feed, self.feed_path)
        # feedgen writes only the self atom:link into RSS; hub and paging links go right after it.
        channel = feed.find("channel")
        anchor = channel.find(f"{{{ATOM_NS}}}link")
        for rel, href in reversed(self.links):
            link = etree.Element(f"{{{ATOM_NS}}}link", href=href, rel=rel)
            anchor.addnext(link)
        return feed


def render_rss(feed: Feed, site: Site) -> bytes:
    """Render a feed as RSS 2.0 bytes: the whole document in one go (formats/fragments.py assembles the same)."""
    fg = channel(feed, site)
    for article in feed.items:
        add_item(fg, article, site, feed.language, feed.full_text)
    return serialise(fg)


def channel(feed: Feed, site: Site) -> FeedGenerator:
    """A feed's channel with every element but its items."""
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.register_extension("media", _FeedExtras, _MediaImage, atom=False, rss=True)
    fg.media.feed_path = feed.path("rss")
    fg.title(feed.title)
    fg.description(feed.description)
    # feedgen writes the channel <link> from the last link() call: self first, the HTML page last.
    fg.link(href=feed_url(site, feed, "rss"), rel="self", type=MEDIA_TYPE)
    fg.link(href=feed.page_url, rel="alternate")
    fg.media.links = feed_links(feed, site, "rss")
    fg.language(listed_language(feed.language))  # arb: ar-arb (content.listed_language)
    fg.lastBuildDate(feed.updated)
    fg.generator(GENERATOR, uri=GENERATOR_URI)
    fg.dc.dc_creator(site.author)  # <managingEditor> would need an e-mail address
    fg.ttl(max(1, site.max_age // 60))  # minutes; agrees with Cache-Control max-age
    return fg


def serialise(fg: FeedGenerator) -> bytes:
    """The document's bytes: pretty-printed UTF-8 with an XML declaration, its plain text as the profile asks."""
    root, document = fg._create_rss()  # what fg.rss_str() serialises
    write_plain_text(root)
    return etree.tostring(document, pretty_print=True, encoding="UTF-8", xml_declaration=True)


def write_plain_text(root) -> None:
    """Each PLAIN_TEXT element that could be read as HTML with its "&", "<" and ">" as hexadecimal character references:
    lxml escapes text as &amp;, &lt; and &gt;, and writes a reference only as a node of its own (etree.Entity)."""
    for path in PLAIN_TEXT:
        for element in root.iterfind(path):
            parts = hex_references(element.text or "")
            if parts is None:
                continue
            element.text = parts[0]
            for name, after in zip(parts[1::2], parts[2::2]):
                reference = etree.Entity(name)
                reference.tail = after
                element.append(reference)


def date_rss(body: bytes, when: datetime, undo: bool = False) -> bytes:
    """An RSS feed rendered UNDATED, with its <lastBuildDate> set to when (undo: the reverse, building/rebase.py)."""
    dates = (rfc2822(UNDATED), rfc2822(when))
    return redate(body, "lastBuildDate", *(dates[::-1] if undo else dates))


def add_item(fg: FeedGenerator, article: Article, site: Site, feed_language: str, full_text: bool) -> None:
    """Append an article's <item>."""
    put_item(fg, item_values(article, site, feed_language, full_text))


# Each value an item is made of and how the serialiser writes it (formats/templates.py): in that order in item_values.
ITEM_SLOTS = (("guid", TEXT), ("title", PLAIN), ("link", TEXT), ("description", TEXT), ("content", CDATA),
              ("published", RFC2822), ("author", PLAIN), ("terms", PLAIN), ("language", TEXT), ("image", ATTR))
ITEM_DEFAULTED = ()  # values feedgen fills in itself when given None: none an RSS item writes


def item_values(article: Article, site: Site, feed_language: str, full_text: bool) -> dict:
    """What an article's <item> says, as feedgen is given it (feed_language is unused: an item names its own language
    in every feed, so its bytes are the same whichever feed holds it); None for a part it leaves out, a tuple for a
    part it repeats."""
    return {
        "guid": article.guid,
        "title": article.title,
        "link": article_url(site, article),
        # Readers take <description> as HTML: a plain-text summary is escaped once more, or a "<b>" typed
        # in a .txt file would become markup.
        "description": text_as_html(article.summary),
        "content": wrapped_html(article) if full_text else None,  # feedgen's lxml splits a "]]>" across two CDATA sections
        "published": article.published,
        "author": article.author or None,
        "terms": tuple(item_terms(article)),
        # The body's wrapper names it too, but a summary-only feed has no body: feed.xsl reads this. In every item,
        # not only where it is not the channel's (as an Atom entry's xml:lang): formats/fragments.py reuses an RSS
        # item's bytes in feeds of any language (Pieces.own_language). As the validator takes it (arb: ar-arb, pnb:
        # lah-Arab), in the direction the article's own tag gives it: content.listed_language.
        "language": listed_language(article.lang),
        "image": public_url(article.image),
    }


def put_item(fg: FeedGenerator, values: dict) -> None:
    """Append an <item> of these values (item_values) through feedgen."""
    entry = fg.add_entry(order="append")
    entry.guid(values["guid"], permalink=False)
    entry.title(values["title"])
    entry.link(href=values["link"])
    entry.description(values["description"])
    if values["content"] is not None:
        entry.content(values["content"], type="CDATA")
    entry.pubDate(values["published"])
    if values["author"] is not None:
        entry.dc.dc_creator(values["author"])
    for term in values["terms"]:
        entry.category(term=term)
    entry.dc.dc_language(values["language"])
    entry.media.url = values["image"]

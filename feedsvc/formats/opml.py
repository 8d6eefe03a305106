"""OPML 2.0 subscription lists: the sections' feeds (/feeds.opml), and every feed with each tag's and author's
(/feeds-all.opml). Spec: http://opml.org/spec2.opml"""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime
from xml.etree import ElementTree as ET

from ..model import Feed, Site
from ..urls import feed_url
from .content import UNDATED, listed_language, redate

from . import OPML_TYPE as MEDIA_TYPE  # noqa: E402 - the one place formats' media types are written


def render_opml(feeds: list[Feed], site: Site, every: bool = False) -> bytes:
    """One outline per feed (the site-wide feed first), pointing at its RSS; readers import all at once.

    every: the list of every feed, tags' and authors' too, which says so in its title.
    """
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = f"{site.title}: {'every feed, with tags and authors' if every else 'all feeds'}"
    ET.SubElement(head, "dateModified").text = _rfc822(UNDATED)  # set by date_opml once recorded
    ET.SubElement(head, "ownerName").text = site.author
    ET.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ET.SubElement(opml, "body")
    for feed in feeds:
        ET.SubElement(body, "outline", {
            "type": "rss",
            "text": feed.title,
            "title": feed.title,
            "xmlUrl": feed_url(site, feed, "rss"),
            "htmlUrl": feed.page_url,
            "language": listed_language(feed.language),  # the RSS feed's <language> (the spec), as it writes it
        })
    ET.indent(opml)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(opml, encoding="utf-8", xml_declaration=False) + b"\n"


def date_opml(body: bytes, when: datetime, undo: bool = False) -> bytes:
    """An OPML list rendered UNDATED, with its <dateModified> set to when (RFC 822, as the spec asks; undo: the
    reverse, building/rebase.py)."""
    dates = (_rfc822(UNDATED), _rfc822(when))
    return redate(body, "dateModified", *(dates[::-1] if undo else dates))


def _rfc822(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)

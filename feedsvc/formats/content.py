"""What every format says the same way about an item: its HTML body, its categories and its URLs."""
from __future__ import annotations

import html
import re
from urllib.parse import quote, urlsplit

from ..model import UNDATED, Article  # noqa: F401 - UNDATED: the formats' date placeholder
from ..urls import stylesheet_href

GENERATOR = "feedsvc"
GENERATOR_URI = "https://pypi.org/project/feedsvc/"

# RFC 3986 §2.2 reserved characters and "%" stay as written; spaces and non-ASCII are percent-encoded
# (an IRI is not a URI: JSON Feed's schema and the W3C validator reject "my photo.jpg").
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~"
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc2822(moment) -> str:
    """An RSS date (https://www.rssboard.org/rss-specification#ltpubdategtSubelementOfLtitemgt): feedgen's formatRFC2822
    text, strftime's "%a, %d %b %Y %H:%M:%S %z" in the C locale, with English names from here instead of a locale.

    feedgen sets the process's locale to C around each call and back (setlocale is process-wide): from two threads at
    once (a serving process renders archive pages and deltas on APP_THREADS), one restored what the other had set, and
    the process was left with LC_CTYPE "C", where Python's default text encoding is ASCII. formats/rss.py puts this
    in feedgen's place. Only the names depend on a locale; the numbers are strftime's own."""
    return f"{_DAYS[moment.weekday()]}, {moment.strftime('%d')} {_MONTHS[moment.month - 1]} {moment.strftime('%Y %H:%M:%S %z')}"


def redate(body: bytes, tag: str, undated: str, dated: str) -> bytes:
    """The document with its own date element, <tag>undated</tag>, reading <tag>dated</tag>.

    The document's own date comes before any item's, so the first such element is the one.
    """
    old = f"<{tag}>{undated}</{tag}>".encode()
    at = body.find(old)
    if at < 0:
        raise ValueError(f"no <{tag}> with the undated placeholder in the rendered document")
    return body[:at] + f"<{tag}>{dated}</{tag}>".encode() + body[at + len(old):]


def add_stylesheet(root, feed_path: str) -> None:
    """Put <?xml-stylesheet?> before the root, so a browser shows a readable page instead of raw XML.

    The href is relative to the feed (../../feed.xsl from a category), so it stays same-origin
    behind any proxy or path prefix, as browsers require for XSLT.
    """
    href = stylesheet_href(feed_path)
    from lxml import etree  # here: a serving process that renders no feed never loads lxml

    root.addprevious(etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{href}"'))


def feed_links(feed, site, fmt: str) -> list[tuple[str, str]]:
    """(rel, href) of the WebSub hub and the RFC 5005 paging links, in a fixed order."""
    from ..urls import feed_url

    links = [("hub", feed.hub)] if feed.hub else []
    return links + [(rel, feed_url(site, feed, fmt, query)) for rel, query in feed.links]


def wrapped_html(article: Article) -> str:
    """The article body in an element carrying its language and direction, so readers lay RTL out right."""
    lang = html.escape(article.lang, quote=True)
    return f'<div dir="{article.direction}" lang="{lang}">{article.body_html}</div>'


def text_as_html(text: str) -> str:
    """Plain text for an element readers take as HTML (RSS description): every character escaped."""
    return html.escape(text, quote=False)


def item_terms(article: Article) -> list[str]:
    """Categories then tags, without repeats."""
    return list(dict.fromkeys(article.categories + article.tags))


def public_url(url: str | None) -> str | None:
    """An absolute http(s) URI to publish, percent-encoded; None for anything else (javascript:, data:)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(_STRAY_PERCENT.sub("%25", url), safe=_URI_SAFE)

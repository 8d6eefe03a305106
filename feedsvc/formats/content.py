"""What every format says the same way about an item: its HTML body, its categories, its URLs and the language tag
RSS, Atom and OPML write."""
from __future__ import annotations

import functools
import html
import io
import re
from urllib.parse import quote, urlsplit

from ..model import UNDATED, Article, text_direction  # noqa: F401 - UNDATED: the formats' date placeholder
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


# The W3C Feed Validator holds RSS <language>, dc:language, Atom's xml:lang and OPML's language to ISO 639 as it knew it
# (feedvalidator/iso639codes.py: ISO 639-1 and ISO 639-2, checked on the primary subtag only). In the IANA registry
# those are the language subtags of RFC 4646's first registry (2005-10-16) and ISO 639-2's additions of 2006-03-08,
# but zxx, and not the codes withdrawn before then (iw, in, ji, jw). ISO 639-3's individual languages (arb, pes,
# pnb, ckb: 2009) are not on it; nor is RSS 2.0's own list (https://www.rssboard.org/rss-language-codes), ISO 639-1's.
_LISTED_UNTIL = "2006-03-08"
_NOT_LISTED = frozenset({"zxx"})


@functools.lru_cache(maxsize=1)
def _registry() -> str:
    """The IANA language subtag registry as langcodes ships it (https://www.iana.org/assignments/language-subtag-registry);
    "" where it ships none."""
    try:
        from langcodes.registry_parser import data_filename

        with open(data_filename("language-subtag-registry.txt"), encoding="utf-8") as registry:
            return registry.read()
    except (OSError, ImportError):
        return ""


def _record(kind: str, subtag: str) -> dict:
    """A registry record as langcodes' registry_parser reads one ({} where there is none): found by its text, as
    parsing all 9,000 records took 70 ms of the first feed's render."""
    from langcodes.registry_parser import parse_file

    text = _registry()
    at = text.find(f"%%\nType: {kind}\nSubtag: {subtag}\n")
    if at < 0:
        return {}
    end = text.find("\n%%", at + 2) % (len(text) + 1)  # the last record: to the end
    return next(parse_file(io.StringIO(text[at + 3:end])), {})


def _listed(language: str) -> bool:
    """Whether a primary language subtag is on the validator's list."""
    record = _record("language", language)
    return (bool(record) and record.get("Added", "9") <= _LISTED_UNTIL and record.get("Deprecated", "9") > _LISTED_UNTIL
            and language not in _NOT_LISTED)


@functools.lru_cache(maxsize=256)  # a site has a few languages
def listed_language(tag: str) -> str:
    """A canonical language tag (config.canonical_language) as RSS's <language> and dc:language, Atom's xml:lang and
    OPML's language write it: the tag itself where its language is on ISO 639-1 or 639-2 (ar, en-GB, fil, gsw);
    else the closest tag that is, saying as much of it as it can. Pages, JSON Feed and text direction keep the tag.

    - An individual language in its RFC 5646 §4.5 "extlang form" where the registry has one: the macrolanguage it
      belongs to, then itself (arb → ar-arb, arz-EG → ar-arz-EG, yue → zh-yue): every reader that knows only the
      first subtag reads the macrolanguage, and the language is still named.
    - Else its macrolanguage, and its other subtags (pes → fa, ckb → ku, pnb → lah).
    - Else mis, ISO 639-2's "uncoded languages", which is what such a language is on a list of ISO 639-2's codes
      (mzn, tok). Not "und": the language was determined. Not left out: an Atom entry without xml:lang is in its feed's
      language, and feed.xsl lays out an RSS item without dc:language in its channel's: both would say another one.
    - With its script where the tag as written would otherwise be laid out in another direction (model.text_direction,
      and feed.xsl by the same rule): pnb → lah-Arab, ckb → ku-Arab, mzn → mis-Arab, nqo → mis-Nkoo.
    Where langcodes ships no registry, the tag as it is."""
    first, *rest = tag.split("-")
    if not _registry() or _listed(first.lower()):
        return tag
    language = first.lower()
    extlang = _record("extlang", language)
    if extlang and _listed(extlang["Prefix"][0]):
        named = [extlang["Prefix"][0], language]
    else:
        macro = _record("language", language).get("Macrolanguage", "")
        named = [macro if macro and _listed(macro) else "mis"]
    written = "-".join(named + rest)
    if text_direction(written) != text_direction(tag):
        import langcodes  # here: only a tag that needs its script looks it up

        try:
            script = langcodes.Language.get(tag).maximize().script
        except (langcodes.LanguageTagError, ValueError):  # a tag of a form langcodes refuses (config.canonical_language)
            script = None
        with_script = "-".join(named + [script] + rest) if script else written
        if text_direction(with_script) == text_direction(tag):
            return with_script
    return written

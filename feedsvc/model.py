"""The pipeline's values: frozen dataclasses with no I/O, no Flask and no feedgen."""
from __future__ import annotations

import functools
import hashlib
import uuid
from operator import attrgetter
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from .urls import feed_path


# IDs are name-based UUIDs (RFC 4122 §4.3) of the article ID alone, so they never change when the
# title, category, content, site URL or host does. https://www.rfc-editor.org/rfc/rfc4287#section-4.2.6
_ID_NAMESPACE = uuid.UUID("1b4e28ba-2fa1-4d3b-a3f5-ef19e1d6c7a0")
_ID_NAMESPACE_BYTES = _ID_NAMESPACE.bytes

# A feed's own date while it is rendered and hashed (Atom <updated>, RSS <lastBuildDate>, OPML
# <dateModified>); it is then given the time those bytes were first recorded (state.record_versions),
# so a feed's date is when it last changed, the same in every worker, and never computed from its items.
UNDATED = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Languages written right to left by default (Arabic's varieties and the languages written in Arabic, Hebrew, Thaana
# or N'Ko script), and the script subtags that make any tag right to left (ku-Arab, pa-Arab, az-Arab: BCP 47 §2.2.3).
RTL_LANGUAGES = frozenset({"ar", "fa", "ur", "he", "yi", "ps", "sd", "ckb", "dv", "ug", "arz", "ary", "arq", "apc", "acm",
                           "ajp", "afb", "aeb", "apd", "ayl", "ars", "prs", "pnb", "skr", "sdh", "lrc", "mzn", "glk", "bal",
                           "ks", "syr", "nqo", "iw", "ji", "arb", "pes", "ydd", "pbt", "pbu", "pst", "azb"})
RTL_SCRIPTS = frozenset({"arab", "aran", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg"})


@functools.lru_cache(maxsize=1024)  # a site has a few languages
def text_direction(lang: str) -> str:
    """Return "rtl" for right-to-left languages (or a tag naming a right-to-left script), else "ltr"."""
    first, *rest = lang.lower().split("-")
    script = None
    for part in rest:  # the script subtag follows the language and its extlangs (RFC 5646 §2.1), never a region or an
        if len(part) == 4 and part.isalpha():  # extension: ar-EG-u-nu-latn is Arabic with Latin digits, right to left
            script = part
            break
        if len(part) != 3 or not part.isalpha():
            break
    if script is not None:
        return "rtl" if script in RTL_SCRIPTS else "ltr"  # az-Latn, ku-Arab: the script decides
    return "rtl" if first in RTL_LANGUAGES else "ltr"


def guid_key(guid: str) -> str:
    """A GUID as GUIDs are told apart: a UUID in any case is one GUID (RFC 9562 §4: hex digits are case-insensitive),
    as written it stays in the feeds."""
    return guid.lower() if guid[:9].lower() == "urn:uuid:" and not guid.islower() else guid


@functools.lru_cache(maxsize=1 << 17)  # every render asks again for the same few thousand IDs
def stable_id(name: str) -> str:
    """A permanent urn:uuid identifier for a name (an article ID, or a feed's key)."""
    # uuid.uuid5(_ID_NAMESPACE, name) written out, its version and variant set on the bytes: 1.7 µs a name, not 5 (the
    # UUID object), and a cold start's placement makes one for every file. tests/test_reading_fast.py holds them equal.
    digest = bytearray(hashlib.sha1(_ID_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Site:
    """Site-wide facts every feed and page carries."""

    title: str
    url: str  # absolute, no trailing slash
    description: str
    author: str
    language: str
    max_age: int  # seconds a client may cache a feed: the refresh interval

    @classmethod
    def from_settings(cls, settings) -> "Site":
        """The Site facts out of the settings (config.Settings)."""
        return cls(title=settings.site_title, url=settings.site_url, description=settings.site_description,
                   author=settings.site_author, language=settings.site_language, max_age=settings.refresh_seconds)


# Slots, not a __dict__: a builder holds two Articles a file (the scanner's and the state store's dated copy), 160
# bytes each instead of 280 with a dict (24 MiB at 100,000 articles).
@dataclass(frozen=True, slots=True)
class Article:
    """One published (or publishable) article, as every format sees it."""

    id: str
    source: str  # path inside the articles folder, with "/" separators
    title: str
    categories: tuple[str, ...]
    body_html: str  # sanitised HTML, not yet wrapped for direction
    body_text: str
    summary: str
    lang: str
    content_hash: str
    published: datetime | None = None  # aware; None until the state store stamps it
    updated: datetime | None = None
    tags: tuple[str, ...] = ()
    author: str | None = None
    image: str | None = None
    draft: bool = False
    guid: str = ""  # the item's permanent id in every feed: stable_id(id), or the UUID/URI the id was written as
    image_alt: str | None = None  # what the image shows, for a reader who cannot see it (its page's alt)
    # When this deployment recorded the item as it is (its content, or its return after it went): never rendered, but
    # a `?since=` delta holds it when this is later, whatever its dates say (a story published with an older `date:`).
    recorded: datetime | None = None

    @property
    def direction(self) -> str:
        """Text direction of the article's language."""
        return text_direction(self.lang)

    def __reduce__(self):
        # Its text pickled as UTF-8 bytes encoded here: CPython's pickler writes a str through a UTF-8 copy that it
        # keeps inside the str for as long as the str lives (PyUnicode_AsUTF8AndSize), and the builder, which pickles
        # each article it commits, held 10 MiB of such copies of its first pages' Arabic text at 10,000 articles.
        values = list(_VALUES(self))
        for at in _TEXT_AT:
            values[at] = values[at].encode("utf-8", "surrogatepass")
        return _article, tuple(values)


def _article(*values) -> Article:
    """An Article from its pickle (Article.__reduce__), its categories the very tuple other articles have (shared)."""
    values = list(values)
    for at in _TEXT_AT:
        values[at] = values[at].decode("utf-8", "surrogatepass")
    # A builder unpickles every article of the folder (a cold start's placements, the background's full reads): a tuple
    # of its own for each article's few category names was two objects an article more (100,000 at 100,000 articles).
    if len(_NAMES) > NAME_SETS:  # a folder of ever new category names: kept bounded, shared again from here on
        _NAMES.clear()
    values[_CATEGORIES_AT] = _NAMES.setdefault(values[_CATEGORIES_AT], values[_CATEGORIES_AT])
    if len(values) < len(_FIELDS):  # pickled by a feedsvc before the last fields were added (a store kept over an upgrade)
        values += _DEFAULTS[len(values):]
    return _made(values)  # as pickle's own way: no __init__, the fields as they were


_FIELDS = tuple(field.name for field in fields(Article))
_TEXT_AT = tuple(_FIELDS.index(name) for name in ("title", "body_html", "body_text", "summary"))
_CATEGORIES_AT = _FIELDS.index("categories")
_VALUES = attrgetter(*_FIELDS)
_DEFAULTS = [field.default for field in fields(Article)]  # the fields' defaults (MISSING for those that have none)


def _unrolled(name: str, params: str, values: Iterable[str]) -> Callable:
    """A function that makes an Article without __init__ (its values are an article's own, already checked), each slot
    set by the slot's own setter (a frozen dataclass's __setattr__ refuses), written out field by field as dataclasses
    writes __init__: a loop over the setters took twice as long (4.2 against 2.0 µs an article dated; a builder makes
    one for each file it reads and one for each it dates: 200,000 at 100,000 articles)."""
    puts = {f"_put_{field}": Article.__dict__[field].__set__ for field in _FIELDS}
    lines = [f"def {name}({params}):", "    made = _new(Article)"]
    lines += [f"    _put_{field}(made, {value})" for field, value in zip(_FIELDS, values)]
    namespace = {"_new": object.__new__, "Article": Article, **puts}
    exec("\n".join(lines + ["    return made"]), namespace)  # noqa: S102 - code made here, of the field names only
    return namespace[name]


# An Article of these values in field order.
_made = _unrolled("_made", "values", (f"values[{at}]" for at in range(len(_FIELDS))))
# The article with these dates: dataclasses.replace() without its checks and __init__ (the fields are the same).
dated = _unrolled("dated", "article, published, updated, recorded=None",
                  (field if field in ("published", "updated", "recorded") else f"article.{field}" for field in _FIELDS))
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}  # each set of categories articles were unpickled with: a few dozen
NAME_SETS = 4096  # distinct sets kept to share (as tombstones.KEY_SETS)


def reusing(article: Article, older: Article) -> Article:
    """The article with the very values of an older one (the same file's) wherever they are equal.

    The background after a cold start replaces each placement with the one of its full read (scan.py adopt): every
    stage's map keeps the older ID and source strings as its keys, so the new article's equal strings would be held
    beside them (two copies of each article's ID, source, title, GUID and hash at 100,000 articles)."""
    return _made(tuple(map(_either, _VALUES(article), _VALUES(older))))


def _either(value, old):
    """The old value when it is equal to the new one (the same article's field, read again)."""
    return old if value == old else value


def is_placed(article: Article) -> bool:
    """Whether an Article is a placement only (reading/articles.py parse_article(full=False)): no body, summary or language yet."""
    return not article.lang


def names_site(source: str, result: object) -> bool:
    """Whether a file's result (Article or Skipped) may differ at another site URL: a Markdown file's relative links
    and a relative `image:` resolve against the article page's URL (reading/articles.py _parse's base_url); nothing else read names the
    site, and an error never does (the base is http(s), so a relative image always resolves)."""
    return source.lower().endswith(".md") or getattr(result, "image", None) is not None


# What a tag or an author is called, by language: the pages' own words (en, ar: formats/pages.py) and a tag's or an
# author's feed title (building/feeds.py label: by its name's script, and in Arabic script by the site's language).
# Hebrew's are WordPress's he_IL, Persian's its fa_IR, Urdu's its ur.
KIND_WORDS = {
    "tag": {"en": "Tag", "ar": "وسم", "fa": "برچسب", "ur": "ٹیگ", "he": "תגית"},
    "author": {"en": "Author", "ar": "الكاتب", "fa": "نویسنده", "ur": "مصنف", "he": "מחבר"},
}


@dataclass(frozen=True)
class Category:
    """A category, tag or author (`kind`): the display name from the articles and its URL slug."""

    name: str
    slug: str
    kind: str = "category"  # "category", "tag" or "author": each kind has its own URLs and slugs


@dataclass(frozen=True)
class Deleted:
    """A tombstone (RFC 6721): an entry a feed carried that is gone from the site, since when, and the
    categories it was in (a partner sees only those it licenses). https://www.rfc-editor.org/rfc/rfc6721"""

    ref: str  # the entry's atom:id (JSON Feed: its id), the article's guid
    when: datetime  # when it went, whole seconds, UTC
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Feed:
    """What goes into one feed: its items and metadata, independent of format."""

    key: str  # "" for the site-wide feed, a category's slug, or "tag/<slug>", "author/<slug>"
    title: str
    description: str
    category: Category | None
    items: tuple[Article, ...]
    language: str
    updated: datetime  # when its bytes last changed; UNDATED until the renderer dates it
    page_url: str  # the HTML page this feed belongs to
    prefix: str = ""  # urls.PARTNERS for a partner's feeds
    query: str = ""  # this page's query string: "" for the first page, "?page=3", "?since=…"
    links: tuple[tuple[str, str], ...] = ()  # RFC 5005 paging links: (rel, query string)
    full_text: bool = True  # the whole body, or the summary only
    archive: bool = False  # a complete archive page: changes only when an old article is edited
    hub: str = ""  # WebSub hub advertised by the feed
    deleted: tuple[Deleted, ...] = ()  # tombstones it announces (RFC 6721), newest first: first pages and deltas only
    identity: str = ""  # the name its permanent ID is made from when not its category's: "search:" + the query
    viewer: str = ""  # the partner whose view of the listing it is (its own atom:id), "" for a public feed

    def path(self, fmt: str) -> str:
        """URL path of this feed in a format, relative to the site root (no query)."""
        return self.prefix + feed_path(self.key, fmt)


_EPOCH, _MICROSECOND = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(microseconds=1)


def microseconds(moment: datetime) -> int:
    """A moment as whole microseconds since 1970 (exact, unlike a float of seconds)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_microseconds(value: int) -> datetime:
    """A moment kept as whole microseconds since 1970 (microseconds), as a UTC datetime."""
    return _EPOCH + value * _MICROSECOND


def item_place(published: datetime, id_: str) -> tuple[int, str]:
    """An item's place in a listing's order, newest first, then by id: the build store's (rank, id)."""
    return -microseconds(published), id_

"""HTML pages for people: the home page, category, tag and author pages, article pages and feed previews, from templates/.

Every value is escaped by Jinja's autoescape; only the article body, already sanitised, is marked safe.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Iterable, Mapping

from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, select_autoescape
from markupsafe import Markup
from jinja2.bccache import Bucket

from .. import urls
from ..model import KIND_WORDS, Article, Feed, Site, text_direction
from ..paging import dominant_language
from ..urls import article_url, feed_path, url
from . import FORMATS

_ENV = Environment(
    loader=PackageLoader("feedsvc", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # package files: not a stat of each template (and the one it extends) on every page rendered
)
_ENV.globals["urls"] = urls  # the templates' links: urls.url(site.url, urls.OPML), …


class _Compiled(FileSystemBytecodeCache):
    """The templates' compiled code kept in a folder, for every process of a deployment after the first: compiling
    them took 60-70 ms of each process that renders a page (a one-file `feedsvc build`, 0.45 s in all on the sample).
    Jinja keys each by the template's path and checks its source's checksum, so an edited template is compiled
    anew. A folder that cannot be read or written (deleted, full, read-only) is no cache, never an error."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged file: compiled again, and written over
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        # The folder deleted, full or read-only: this process compiled the template, and the next one does too.
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def keep_compiled(state_path: str) -> None:
    """Keep the templates' compiled code in a folder beside the state store (made if missing; see _Compiled), for this
    process and the next."""
    folder = state_path + ".templates"
    if getattr(_ENV.bytecode_cache, "directory", None) == folder:  # a process that builds and serves asks twice
        return
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:  # the state's folder is checked for writing by its store: here a cache is only skipped
        return
    _ENV.bytecode_cache = _Compiled(folder, "%s.jinja")


LATEST_ON_HOME = 20
LIST_ITEMS_KEPT = 4096  # list items' HTML kept, by what they show (a few hundred bytes each; 1,000 first-page items at 10,000 articles)


def feed_links(site: Site, key: str, title: str, prefix: str = "", query: str = "") -> list[dict]:
    """Autodiscovery and subscribe links for the feed with this key, in every format, in FORMATS' order (the dicts are
    shared: read only); prefix and query those of a feed under another path (a search's: urls.SEARCH, `?q=…`)."""
    return list(_feed_links(site, key, title, prefix, query))


@functools.lru_cache(maxsize=4096)  # the home page alone names every category's three feeds on every refresh
def _feed_links(site: Site, key: str, title: str, prefix: str, query: str) -> tuple[dict, ...]:
    return tuple(
        {"type": media, "href": url(site.url, prefix + feed_path(key, fmt)) + query, "label": label, "title": f"{title} ({label})"}
        for fmt, media, label in ((f.key, f.media_type, f.label) for f in FORMATS.values())
    )


# A link from an article page to a listing it is in: (kind, name, page URL, feed key), kind "category", "tag" or "author".
Link = tuple[str, str, str, str]
# The pages' own words: Arabic on a page (or an article) in Arabic, English on any other. "tag" and "author" name the
# kind of a tag's or an author's page; "search_*" are the search page's (serving/searchfeed.py); "*_label" are said with
# the colon that follows them, which an isolate must hold too (an English "Tags:" on a Persian page showed ":Tags").
_WORDS = {
    "en": {"tags_label": "Tags:", "tag": KIND_WORDS["tag"]["en"], "author": KIND_WORDS["author"]["en"], "category": "Section",
           "search": "Search",
           "subscribe_label": "Subscribe:", "updated": "updated",
           "categories": "Categories", "latest": "Latest", "newest": "Newest items",
           "search_about": "The newest articles with every word of this search (hamza and alef forms, diacritics, "
                           "tatweel, digit shapes and letter case aside).",
           "search_subscribe_label": "Subscribe to this search:",
           "search_none": "No article matches yet; the feeds will carry the first one that does."},
    "ar": {"tags_label": "الوسوم:", "tag": KIND_WORDS["tag"]["ar"], "author": KIND_WORDS["author"]["ar"], "category": "قسم",
           "search": "بحث",
           "subscribe_label": "اشترك:", "updated": "حُدِّث",
           "categories": "الأقسام", "latest": "آخر المقالات", "newest": "أحدث المواد",
           "search_about": "أحدث المقالات التي فيها كل كلمات هذا البحث (بصرف النظر عن صور الهمزة والألف والتشكيل "
                           "والتطويل وأشكال الأرقام وحالة الأحرف).",
           "search_subscribe_label": "اشترك في هذا البحث:", "search_none": "لا مقال يطابقه بعد؛ ستحمل الخلاصات أول مقال يطابقه."},
}
# English words on a page in another language (Persian, Hebrew, French): marked as English and isolated, so that a screen
# reader says them in English and a right-to-left line keeps their punctuation where English puts it.
_MARKED = {key: Markup('<bdi lang="en" dir="ltr">{}</bdi>').format(word) for key, word in _WORDS["en"].items()}


def _primary(lang: str) -> str:
    """A language tag's primary subtag, lower case: which of the pages' own words a page takes."""
    return lang.split("-")[0].lower()


def page_words(lang: str) -> Mapping[str, str]:
    """The pages' own words for a page (or an article) in this language."""
    primary = _primary(lang)
    return _WORDS["ar"] if primary == "ar" else _WORDS["en"] if primary == "en" else _MARKED


def title_words(lang: str) -> Mapping[str, str]:
    """The pages' own words as a <title> holds them: text, never marked up (Arabic on an Arabic page, else English)."""
    return _WORDS["ar"] if _primary(lang) == "ar" else _WORDS["en"]


def title_label(lang: str, key: str) -> str:
    """A page's kind with its colon, as its <title> starts: English words on a right-to-left page (Persian, Hebrew) in a
    left-to-right isolate (U+2066 … U+2069), as a <title> can hold no <bdi>: the colon showed before "Author" (found in
    review). https://www.w3.org/International/questions/qa-bidi-unicode-controls"""
    label = title_words(lang)[key] + ":"
    return f"\u2066{label}\u2069" if label.isascii() and text_direction(lang) == "rtl" else label


def preview_title(lang: str, feed_title: str, label: str) -> str:
    """A feed's page for browsers as its <title> names it: `<title> (RSS feed)`; `(خلاصة RSS)` on an Arabic page, and on
    another right-to-left page the English words in a left-to-right isolate, which a <title> holds where it can no <bdi>
    (on a Persian page the parenthesis showed on the wrong side of "feed")."""
    if _primary(lang) == "ar":
        return f"{feed_title} (خلاصة {label})"
    kind = f"({label} feed)"
    return f"{feed_title} \u2066{kind}\u2069" if text_direction(lang) == "rtl" else f"{feed_title} {kind}"


def article_links(article: Article, links: Mapping[tuple[str, str], tuple[str, str, str]]) -> tuple[Link, ...]:
    """The links an article page shows: its categories', tags' and author's (name, page, key) from `links`,
    which maps (kind, name) of every published listing; a listing not published (yet) is left out."""
    wanted = [("category", c) for c in article.categories] + [("tag", t) for t in article.tags]
    if article.author:
        wanted.append(("author", article.author))
    return tuple((kind, *links[(kind, name)]) for kind, name in wanted if (kind, name) in links)


def category_rows(category_feeds: list[Feed], live: list[Article], site: Site, counts: dict[str, int] | None = None) -> tuple[tuple, ...]:
    """(name, page URL, article count, feed links) per category, for the home page; counts: by name, if known."""
    if counts is None:
        counts = {}
        for a in live:
            for c in a.categories:
                counts[c] = counts.get(c, 0) + 1
    return tuple((f.category.name, f.page_url, counts.get(f.category.name, 0), f.key) for f in category_feeds if f.category)


def render_index(site_feed: Feed, category_feeds: tuple[Feed, ...], rows: tuple[tuple, ...], site: Site) -> tuple[bytes, datetime]:
    """The home page: categories with counts and feeds, and the latest articles."""
    by_key = {f.key: f for f in category_feeds}
    table = [{"name": name, "page": page, "count": count, "feeds": feed_links(site, key, by_key[key].title),
              "lang": by_key[key].language, "dir": text_direction(by_key[key].language)} for name, page, count, key in rows]
    latest = site_feed.items[:LATEST_ON_HOME]
    lang = dominant_language(latest, site.language)
    html = _ENV.get_template("index.html").render(
        site=site, lang=lang, dir=text_direction(lang), feed_links=feed_links(site, "", site_feed.title),
        categories=table, list_html=list_html(latest, site), words=page_words(lang), site_dir=text_direction(site.language),
    )
    return html.encode("utf-8"), site_feed.updated


def render_category(feed: Feed, site: Site) -> tuple[bytes, datetime]:
    """A category's, tag's or author's page: its newest articles (those of its feed) and its three feeds."""
    words = page_words(feed.language)
    html = _ENV.get_template("category.html").render(
        site=site, lang=feed.language, dir=text_direction(feed.language), feed_links=feed_links(site, feed.key, feed.title),
        category=feed.category, label=words[feed.category.kind] if feed.category.kind != "category" else None,
        list_html=list_html(feed.items, site), words=words, kind=title_label(feed.language, feed.category.kind),
    )
    return html.encode("utf-8"), feed.updated


def render_article(article: Article, links: tuple[Link, ...], site: Site) -> tuple[bytes, datetime]:
    """An article's page; links are (kind, name, page URL, feed key) of its categories, tags and author
    (article_links): it links each page, and names its categories' feeds for autodiscovery."""
    categories = [link for link in links if link[0] == "category"]
    author = next((link for link in links if link[0] == "author"), None)
    feeds = [feed_links(site, key, f"{site.title} — {name}") for _, name, _, key in categories]
    html = _ENV.get_template("article.html").render(
        site=site, lang=article.lang, dir=article.direction, feed_links=[link for links in feeds for link in links],
        article=article,
        categories=[{"name": name, "page": page, "feeds": links} for (_, name, page, _), links in zip(categories, feeds)],
        tags=[{"name": name, "page": page} for kind, name, page, _ in links if kind == "tag"],
        words=page_words(article.lang),
        author_page=author[2] if author else None,
        published_iso=_machine(article.published), published_text=_human(article.published),
        updated_iso=_machine(article.updated), updated_text=_human(article.updated),
    )
    return html.encode("utf-8"), article.updated


def render_preview(feed: Feed, fmt: str, site: Site) -> bytes:
    """The page a browser shows at a feed's URL: the feed's items and how to subscribe to it (a search feed's links
    carry its query, as its self link does)."""
    links = feed_links(site, feed.key, feed.title, feed.prefix, feed.query)
    this = links[list(FORMATS).index(fmt)]
    html = _ENV.get_template("preview.html").render(
        site=site, lang=feed.language, dir=text_direction(feed.language), feed_links=links, feed=feed,
        this=this, others=[link for link in links if link is not this], items=_preview_items(feed.items, site),
        arabic=_primary(feed.language) == "ar", words=page_words(feed.language),
        title=preview_title(feed.language, feed.title, this["label"]),
    )
    return html.encode("utf-8")


def render_search(feed: Feed, words: str, site: Site) -> bytes:
    """A search's page (serving/searchfeed.py finds its feed): its articles and, for autodiscovery and to subscribe,
    its feeds, each carrying the query."""
    links = feed_links(site, "", feed.title, urls.SEARCH, urls.search_query(words))
    html = _ENV.get_template("search.html").render(
        site=site, lang=feed.language, dir=text_direction(feed.language), feed_links=links, query=" ".join(words.split()),
        articles=_rows(feed.items, site, summaries=True), summaries=True, words=page_words(feed.language),
        kind=title_label(feed.language, "search"),
    )
    return html.encode("utf-8")


_last_items: list = [None, None, ""]  # (items, site, their list's HTML): the three formats of a feed show the same list


def _preview_items(items: tuple[Article, ...], site: Site) -> str:
    """The HTML list of a preview's items (escaped by its own template), made once for a feed's three formats
    (most of a preview's rendering)."""
    last = _last_items
    if last[0] is not items or last[1] != site:
        html = list_html(items, site, summaries=True)
        last[:] = [items, site, html]  # a list, so two threads at once at worst make it twice
    return last[2]


_list_items: OrderedDict[tuple, str] = OrderedDict()  # (a row's values, summaries) → its item's HTML
_list_lock = threading.Lock()


def list_html(articles: Iterable[Article], site: Site, summaries: bool = False) -> str:
    """What templates/list.html renders for these articles, put together from each item's HTML, rendered once per
    distinct row (what an item shows) and kept (LIST_ITEMS_KEPT): a refresh's home and category pages show one new
    item among items already rendered. Each item is cut from list.html's own rendering of it, never written here;
    tests/test_pages.py holds the result to list.html's rendering of the whole list."""
    rows = _rows(articles, site, summaries)
    empty = _render_list([], summaries)
    at = empty.rfind("</ol>")
    head, foot = empty[:at], empty[at:]
    parts = [head]
    for row in rows:
        key = (*row.values(), summaries)  # the item's HTML is a function of these alone
        with _list_lock:
            item = _list_items.get(key)
            if item is not None:
                _list_items.move_to_end(key)
        if item is None:
            one = _render_list([row], summaries)
            if not (one.startswith(head) and one.endswith(foot)):  # list.html changed shape: render the list whole
                return _render_list(rows, summaries)
            item = one[len(head):len(one) - len(foot)]
            with _list_lock:
                _list_items[key] = item
                while len(_list_items) > LIST_ITEMS_KEPT:
                    _list_items.popitem(last=False)
        parts.append(item)
    parts.append(foot)
    return "".join(parts)  # escaped by list.html, item by item


def _render_list(rows: list[dict], summaries: bool) -> str:
    return _ENV.get_template("list.html").render(articles=rows, summaries=summaries)


def _rows(articles: Iterable[Article], site: Site, summaries: bool = False) -> list[dict]:
    """What templates/list.html shows of each article (its summary only where the list shows summaries)."""
    return [
        {"title": a.title, "url": article_url(site, a), "lang": a.lang, "direction": a.direction,
         "published_iso": _machine(a.published), "published_text": _human(a.published)}
        | ({"summary": a.summary} if summaries else {})
        for a in articles
    ]


def _machine(when: datetime) -> str:
    """A <time datetime> value: whole seconds, as HTML's valid date strings allow at most three digits of a second (an
    article first seen has six). https://html.spec.whatwg.org/multipage/common-microsyntaxes.html#global-dates-and-times"""
    return when.isoformat(timespec="seconds")


def _human(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")

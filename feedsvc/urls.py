"""Every URL and path the site publishes, in one place: feeds, the home, category, tag and author pages, article
pages, feeds' pages for browsers, the OPML lists, the static files, partners' feeds, and the export's file names.

A path is relative to the site root, without the leading slash: the build store's key, the route, the
export's file (export_file). A URL is SITE_URL, "/" and the path, percent-encoded as UTF-8.
"""
from __future__ import annotations

import re
from datetime import timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:  # types only: model.py imports this module
    from datetime import datetime

    from .model import Article, Feed, Site

HOME = ""  # the home page
OPML = "feeds.opml"  # the sections' feeds (site-wide and each category) in one list
OPML_ALL = "feeds-all.opml"  # every feed, tags' and authors' too: a second file, which a static export can serve
PARTNERS = "partners/"  # a partner's feeds: the public paths under this prefix
SEARCH = "search/"  # a search's page; its feeds are the site-wide feed's paths under this prefix; the words in ?q=
STYLESHEET, FEED_XSL, FAVICON = "style.css", "feed.xsl", "favicon.ico"
# Files served as they are (feedsvc/static/), by path, with their media types.
STATIC = {STYLESHEET: "text/css", FEED_XSL: "text/xsl", FAVICON: "image/x-icon"}
HTML_TYPE = "text/html"  # the media type of the site's pages: home, lists, article pages, feeds' pages for browsers
# For search engines and news aggregators (formats/sitemap.py): every page (an index of sitemap_path(n) children
# past the Sitemaps protocol's limits), the articles of the last two days, and robots.txt naming both.
SITEMAP, NEWS_SITEMAP, ROBOTS = "sitemap.xml", "sitemap-news.xml", "robots.txt"
HEALTHZ, METRICS = "healthz", "metrics"  # the server's health (JSON) and Prometheus's numbers: never exported
# The store's key for a feed's page for browsers is this + the feed's path: a fragment, which no request carries.
PREVIEW = "#preview/"
# The export's key for the same page is the feed's path + this; its file is beside the feed's (feed.rss.html).
EXPORT_PREVIEW = "#preview"
_ARTICLES = "articles/"
_CATEGORY = "category/"
_LONGEST_SUFFIX = len(".html.page-999999999.gz")  # what an export's file name may gain over its URL segment
_NAME_MAX = 255  # bytes in one file name (ext4, xfs, tmpfs)
# Characters of an article's id in a URL, percent-encoded: its page's request line, and a delta's next link that names
# it (?after=), stay within what servers take (gunicorn's limit_request_line, 4,094 bytes; nginx's 8 KiB), with a
# category's slug (SLUG_BYTES) and the rest of the query beside it.
ID_URL_MAX = 3000
SLUG_BYTES = 240  # bytes in a category's, tag's or author's slug: a folder of the static export, at most _NAME_MAX


def feed_path(key: str, fmt: str) -> str:
    """Path of the feed with this key ("" = site-wide, a category's slug, "tag/<slug>", "author/<slug>") in a format."""
    from .formats import FORMATS  # here: the formats' writers import this module

    name = "feed" + FORMATS[fmt].suffix
    return name if not key else f"{listing_page(key)}{name}"


def page_query(page: int) -> str:
    """The query of a feed's page `page` (RFC 5005 §3 archive pages, and RFC 5005 §2 paging): none for the first."""
    return "" if page == 1 else f"?page={page}"


def since_query(since: datetime, page: int = 1, after: tuple[datetime, str] | None = None) -> str:
    """The query of a delta: the items published or updated after a moment, from its first page, page `page`, or the
    page after the item `after` (its published time and id: paging.since_feed); instants in RFC 3339, UTC written Z."""
    base = "?since=" + quote(_instant(since), safe=":")
    if after is not None:
        return f"{base}&after={quote(_instant(after[0]), safe=':')},{quote(after[1], safe=':/')}"
    return base if page == 1 else f"{base}&page={page}"


def _instant(moment: datetime) -> str:
    """A moment in RFC 3339, UTC written Z, to the microsecond where it has any."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def archive_path(key: str, fmt: str, page: int) -> str:
    """A feed's page as the build store and the export's manifest name it: the feed's path and ?page=N (any N)."""
    return f"{feed_path(key, fmt)}?page={page}"


def archive_feed(path: str) -> str | None:
    """The feed path of an archive_path, else None."""
    base, _, page = path.partition("?page=")
    return base if page else None


def is_sitemap(path: str) -> bool:
    """sitemap.xml, its children (sitemap_path) and the News sitemap."""
    return path.startswith("sitemap") and path.endswith(".xml")


def sitemap_path(number: int) -> str:
    """Path of the child sitemap with this number (from 1) of a sitemap index."""
    return f"sitemap-{number}.xml"


def category_path(slug: str) -> str:
    """Path of a category's page."""
    return f"{_CATEGORY}{slug}/"


def listing_key(kind: str, slug: str) -> str:
    """The key of a category's (its slug), a tag's ("tag/<slug>") or an author's ("author/<slug>") listing and feeds."""
    return slug if kind == "category" else f"{kind}/{slug}"


def is_category_key(key: str) -> bool:
    """Whether a listing key is a category's (its slug): not the site-wide listing's ("") nor a tag's or author's."""
    return key != "" and "/" not in key  # a category slug never holds "/" (config.py)


def listing_page(key: str) -> str:
    """Path of the page of the listing with this key (not the site-wide one): category/x/, tag/x/, author/x/."""
    return category_path(key) if is_category_key(key) else f"{key}/"


def listing_url(site: Site, kind: str, slug: str) -> str:
    """Absolute URL of a category's, tag's or author's page; a slash in a slug would be escaped, never a path segment."""
    return f"{site.url}/{kind}/{quote(slug, safe='')}/"


def article_path(id_: str) -> str:
    """Path of an article's page."""
    return _ARTICLES + id_


def article_id(path: str) -> str | None:
    """The article ID in an article page's path, else None."""
    return path[len(_ARTICLES):] if ARTICLE_PATH.fullmatch(path) else None


def preview_key(path: str) -> str:
    """The store's key of the page a browser gets at the feed with this path."""
    return PREVIEW + path


def is_article(path: str) -> bool:
    """Whether a path is under the article pages."""
    return path.startswith(_ARTICLES)


# What quote(path, safe="/") leaves as it is (RFC 3986 unreserved characters and "/"): a path of only these, as most
# article IDs are, needs no quoting (urllib's quote costs 5 µs a call: 0.5 s of a sitemap's 100,000 URLs).
_AS_IS = re.compile(r"[A-Za-z0-9_.~/-]*")


def url(base: str, path: str) -> str:
    """Absolute URL of a path on the site at base (SITE_URL)."""
    return f"{base}/{path}" if _AS_IS.fullmatch(path) else f"{base}/{quote(path, safe='/')}"


def home_url(site: Site) -> str:
    return url(site.url, HOME)


def category_url(site: Site, slug: str) -> str:
    """Absolute URL of a category's page; a slash in a slug would be escaped, never a path segment."""
    return listing_url(site, "category", slug)


def feed_url(site: Site, feed: Feed, fmt: str, query: str | None = None) -> str:
    """Absolute URL of a feed (this page, or the page with `query`) in a format; Unicode percent-encoded."""
    return f"{site.url}/{quote(feed.path(fmt), safe='/')}{feed.query if query is None else query}"


def search_query(words: str) -> str:
    """The query part of a search's URLs as a form sends it: spaces as "+", every other reserved or non-ASCII
    character percent-encoded (so a search feed's self link is the URL a reader subscribed to from its page)."""
    return "?q=" + quote_plus(words, safe="")


def search_url(site: Site, words: str) -> str:
    """Absolute URL of a search's page (its feeds': formats/pages.py feed_links with the SEARCH prefix)."""
    return url(site.url, SEARCH) + search_query(words)


def article_url(site: Site, article: Article) -> str:
    """Absolute URL of an article's page."""
    return url(site.url, article_path(article.id))


def stylesheet_href(path: str) -> str:
    """The feeds' stylesheet relative to the feed at path (../../feed.xsl from a category): same-origin wherever served."""
    return "../" * path.count("/") + FEED_XSL


def export_file(path: str, media_type: str) -> str | None:
    """The file, inside the export, that serves a URL path (no leading slash); None if none can.

    "" and "category/x/" → index.html inside; another page ("articles/<id>") → <path>.html;
    "feed.rss?page=2" → feed.rss.page-2; a feed's page for browsers "feed.rss#preview" → feed.rss.html;
    everything else keeps its name, which carries its extension.
    """
    from .formats import FORMATS  # here: the formats' writers import this module

    if path.endswith(EXPORT_PREVIEW) and not is_article(path):  # an article's id may end so: its page is its own
        feed = path[: -len(EXPORT_PREVIEW)]
        if media_type != HTML_TYPE or "?" in feed or not any(feed.endswith(f.suffix) for f in FORMATS.values()):
            return None  # only a feed's first page has one
        name = export_file(feed, "")
        return name and name + ".html"
    # An article's ID may hold "?" (its page is /articles/q%3Fx): only the site's own paths carry a query here.
    path, _, query = (path, "", "") if is_article(path) else path.partition("?")
    segments = path.rstrip("/").split("/") if path else []
    # A folder's name is as long as a file name may be; a file's leaves room for what it gains (_LONGEST_SUFFIX).
    named = segments[-1:] if segments and not path.endswith("/") else []
    if (any(s in ("", ".", "..") or "\0" in s or len(s.encode()) > _NAME_MAX for s in segments)
            or any(len(s.encode()) > _NAME_MAX - _LONGEST_SUFFIX for s in named)):
        return None  # outside the export, or longer than a file name may be
    if query and not (query.startswith("page=") and query[5:].isdigit()):
        return None  # only archive pages are files; nginx serves ?since= as the first page
    suffix = ".page-" + query[5:] if query else ""
    if path == "" or path.endswith("/"):
        if is_article(path):
            return None  # nginx serves /articles/<id> from <id>.html only
        return path + "index.html" + suffix
    return path + (".html" if media_type == HTML_TYPE else "") + suffix


def feed_pattern(suffixes) -> re.Pattern:
    """The paths of every feed with one of these suffixes: groups `kind` ("category", "tag", "author"; None:
    site-wide), `slug` and `suffix`."""
    return re.compile(r"(?:(?P<kind>category|tag|author)/(?P<slug>[^/]+)/)?feed(?P<suffix>"
                      + "|".join(re.escape(s) for s in suffixes) + ")")


def matched_key(match: re.Match) -> str:
    """The listing key a feed_pattern() match names: "" (site-wide), a category's slug, "tag/<slug>", "author/<slug>"."""
    return "" if match["kind"] is None else listing_key(match["kind"], match["slug"])


ARTICLE_PATH = re.compile(_ARTICLES + r".+")  # an ID is a file's path by default: "economy/story" has its "/"

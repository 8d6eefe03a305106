"""Feeds and articles → Rendered resources by URL path, re-rendering only what changed since last time.

Each resource is keyed by everything it is made from; an unchanged key reuses the previous Rendered
object, so unchanged feeds keep their bytes and ETag and a refresh costs what changed.

Last-Modified is when a resource's bytes last changed: each is rendered UNDATED, hashed, and the hash
recorded with a time in the state store (`versions`), which dates the feed's own date field too. The
same bytes get the same time in every worker and after restarts; new bytes a later time, never earlier.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from importlib import resources as package_files
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator

from ..formats import FORMATS
from ..formats.ondemand import FeedRenderer
from ..formats.opml import MEDIA_TYPE as OPML_TYPE, date_opml, render_opml
from ..formats.pages import article_links, category_rows, render_article, render_category, render_index
from ..formats.sitemap import MEDIA_TYPE as SITEMAP_TYPE, ROBOTS_MEDIA_TYPE
from ..model import UNDATED, Article, Feed, Site
from ..resource import Rendered
from ..urls import HOME, HTML_TYPE, OPML, OPML_ALL, ROBOTS, STATIC, article_path, is_sitemap, listing_page
from .sitemaps import Sitemaps

Versions = Callable[[Mapping[str, str]], Mapping[str, datetime]]  # URL path → digest, to path → recorded time
Recorded = Callable[[list[str]], Mapping[str, tuple[str, datetime]]]  # URL paths → (digest, time) as recorded now


class Resources(Mapping):
    """Rendered resources by URL path. Article pages are made on first access and kept while their entry is the same."""

    def __init__(self, ready: dict[str, Rendered], pages: dict[str, tuple], make: Callable[[tuple], Rendered],
                 made: dict[str, tuple[tuple, Rendered]] | None = None):
        self._ready, self._pages, self._make = ready, pages, make  # pages: path → (article, its links)
        self._made = {} if made is None else made  # path → (entry, its page made): the Renderer's, carried over

    def __getitem__(self, path: str) -> Rendered:
        found = self._ready.get(path)
        if found is None:
            entry = self._pages[path]  # KeyError: not published
            made = self._made.get(path)
            if made is None or made[0] is not entry:  # two requests at once make it twice; both the same
                made = self._made[path] = (entry, self._make(entry))
            found = made[1]
        return found

    def __contains__(self, path: object) -> bool:
        return path in self._ready or path in self._pages

    def __iter__(self) -> Iterator[str]:
        yield from self._ready
        yield from self._pages

    def __len__(self) -> int:
        return len(self._ready) + len(self._pages)

    @property
    def ready(self) -> Mapping[str, Rendered]:
        """Every resource but the article pages, by path: rendered (the Committer compares them by identity)."""
        return self._ready

    @property
    def pages(self) -> Mapping[str, tuple]:
        """The article pages' entries by path, (article, its links): what each page is made from, made when asked for."""
        return self._pages


@dataclass(frozen=True)
class Rendering:
    """What one render() made: every resource by URL path, how many it rendered anew, and the feeds among
    those (their gzip and brotli forms are still to make: an observer of the refresh makes them, beside it)."""

    resources: Resources
    made: int
    fresh: tuple[Rendered, ...]
    seeded: int = 0  # resources taken over from the build store (Renderer.seed) instead of rendered


class Renderer(FeedRenderer):
    """Renders a site's resources, keeping the previous results to reuse the unchanged ones."""

    def __init__(self, site: Site, versions: Versions, recorded: Recorded, archive_max_age: int = 86400, variants: int = 512,
                 fragments: int | None = None, load_full: Callable[[Article], Article | None] | None = None):
        super().__init__(site, archive_max_age, variants, fragments)
        self.versions = versions
        self.recorded = recorded
        self._cache: dict[str, tuple[Hashable, Rendered, str]] = {}  # path → (key, Rendered, digest)
        # Files served as they are; their Last-Modified is recorded like any resource's (when these bytes were
        # first served by this deployment), so it moves with an upgrade that changes them.
        self._static = {name: ((package_files.files("feedsvc") / "static" / name).read_bytes(), media) for name, media in STATIC.items()}
        # Article pages: path → (article, its links), the very tuple while both are the same (the Committer compares
        # by identity); a tuple, not a list with room for the page made: 72 bytes an article less (7 MiB at 100,000).
        self._pages: dict[str, tuple] | None = None
        # Article pages made on request (Resources): path → (entry, page), carried to the next render's resources while
        # the entry is the same object. The builder asks for none (Committer renders what it commits).
        self._made: dict[str, tuple[tuple, Rendered]] = {}
        # The live articles by ID as last rendered: the caller's map itself (the publisher makes one for each snapshot
        # and never changes it after), kept instead of a set of its IDs (4 MiB at 100,000 articles).
        self._live: Mapping[str, Article] = {}
        self._counts: dict[str, int] = {}  # live articles per category name, as last counted
        self._previous_by_name: dict | None = None
        self.load_full = load_full  # an article held as a placement, in full (site.Publisher.load_full), or None
        self.sitemaps = Sitemaps(site)  # sitemap.xml, sitemap-news.xml, robots.txt: remade in part (sitemaps.py)
        # A fresh process's first render takes over what the build store holds (a restart, `feedsvc build` again):
        # `origin` names what a resource is made from besides its key (the code, the settings and the site), set by
        # the builder that commits (builder.start_building); `seed(path → key, digest of a key)` answers path →
        # (Rendered, undated digest) for the rows stored as made from those keys (made_of). Unset: every first render
        # renders everything.
        self.origin: str | None = None
        self.seed: Callable[[dict, Callable[[Hashable], str]], Mapping[str, tuple[Rendered, str]]] | None = None
        # Called with the feeds a render made anew as soon as they are made, before its sitemaps and pages: `feedsvc
        # build`, which commits every coding with them, has them made beside the rest (resource.code_beside). Unset for
        # a server's builder, whose first build commits its feeds before it codes them.
        self.code_fresh: Callable[[list[Rendered]], None] | None = None
        self._key_digests: dict[int, tuple[Hashable, str]] = {}  # id(key) → (key, _key_digest), for this render's keys
        self._articles: dict[int, tuple[Article, str]] = {}  # id(article) → (article, its part of a key's digest), this render's
        self._site_wide: set[str] = set()  # IDs on the site-wide feed's first page, as last rendered (let_go)
        self._lean = False  # keep the site-wide page's item fragments and LEAN_SPARE bytes of others only (let_go)
        self.alone = False  # no other process dates versions in the state store (Publisher.build_alone): no drift

    def render(self, feeds: list[Feed], live: list[Article], live_by_id: Mapping[str, Article] | None = None,
               changed: set[str] | None = None, now: datetime | None = None,
               moved: tuple[set[str], set[str]] | None = None, with_pages: bool = True) -> Rendering:
        """Every feed, page, the OPML lists, the static files, the sitemaps and robots.txt, keyed by URL path.

        changed: IDs of the articles that are new or changed since the last render, if known. now: the build's
        moment, which the News sitemap's two-day window is taken at (default: the newest article's publication).
        moved: the IDs that left the live articles and those that came since the last render, if known (else found
        by comparing every ID). with_pages=False: without the home and category pages and the sitemaps (a deployment's
        first build: its feeds first, Publisher.feeds_first), which the next render makes.
        """
        live_by_id = {a.id: a for a in live} if live_by_id is None else live_by_id
        site, cache, out = self.site, {}, {}
        undated: dict[str, tuple] = {}  # path → (key, bytes without their date, media type, date function, options)
        fresh = []  # the feeds rendered anew
        if changed:  # their items are made again when a feed holds them
            self.fragments.forget(changed)

        drifted = self.drifted()
        self._site_wide = {a.id for a in feeds[0].items} if feeds else set()
        self._articles = {}  # an article's part of the keys' digests (_fingerprint), made once for the feeds that hold it
        puts: list[tuple[str, Hashable, Callable[[], tuple]]] = []

        def put(path: str, key: Hashable, make: Callable[[], tuple]) -> None:
            puts.append((path, key, make))

        for name, (body, media) in self._static.items():
            put(name, body, lambda b=body, m=media: (b, m, None, {}))
        lazy = {"precompress": False}  # compressed beside the refresh (feeds) or on first request (pages)
        for feed in feeds:
            for fmt in FORMATS.values():
                put(feed.path(fmt.key), feed, lambda f=feed, k=fmt.key: self._undated_feed(k, f))
        site_feed = feeds[0]
        category_feeds = tuple(f for f in feeds[1:] if f.category.kind == "category")  # then tags' and authors'
        by_name = {(f.category.kind, f.category.name): (f.category.name, f.page_url, f.key) for f in feeds[1:]}
        pages, counts = self._article_pages(live, live_by_id, changed, by_name, moved)
        if with_pages:
            rows = category_rows(list(category_feeds), live, site, counts)
            put(HOME, (site_feed, rows), lambda: (render_index(site_feed, category_feeds, rows, site)[0], HTML_TYPE, None, lazy))
        sections = (site_feed, *category_feeds)  # /feeds.opml lists sections; /feeds-all.opml tags and authors too
        # Keyed by what an outline shows, not by the feeds' items: a new article re-renders neither list.
        put(OPML, _outlines(sections), lambda: (render_opml(list(sections), site), OPML_TYPE, date_opml, {}))
        put(OPML_ALL, _outlines(feeds), lambda: (render_opml(feeds, site, every=True), OPML_TYPE, date_opml, {}))
        for feed in feeds[1:] if with_pages else ():
            put(listing_page(feed.key), feed, lambda f=feed: (render_category(f, site)[0], HTML_TYPE, None, lazy))
        stored = self._stored(puts) if not self._cache else {}
        for path, key, make in puts:
            previous = self._cache.get(path) or stored.get(path)
            if previous is not None and previous[0] == key and path not in drifted:
                cache[path] = previous
                out[path] = previous[1]
            else:
                undated[path] = (key, *make())
        digests = {path: _digest(entry[1]) for path, entry in undated.items()}
        times = self.versions(digests) if undated else {}
        rendered = len(undated)
        for path in list(undated):
            # Each undated body let go of as its dated copy is made: never both of every feed at once (23 MiB of
            # first pages at 10,000 articles, beside their items' fragments).
            key, body, media, date, options = undated.pop(path)
            when = times[path]
            dated = date(body, when) if date else body
            found = Rendered(dated, media, when, digest=digests[path] if dated is body else None, **options)
            if date is not None and media != OPML_TYPE:
                fresh.append(found)
            cache[path] = (key, found, digests[path])
            out[path] = found
        if fresh and self.code_fresh is not None:
            self.code_fresh(fresh)
        made = self._put_sitemaps(cache, out, feeds, live, now, drifted) if with_pages else 0
        self._cache = cache
        if self._key_digests:
            self._key_digests = {id(entry[0]): found for entry in cache.values()
                                 if (found := self._key_digests.get(id(entry[0]))) is not None and found[0] is entry[0]}
        # The next refresh assembles only feeds it changes, from these pages' items and new ones: any other item
        # (an archive page or delta asked of this process) would only hold memory until the budget pushed it out.
        if self._lean:  # the site-wide page's items and LEAN_SPARE bytes of the others used last (let_go)
            self.fragments.keep_only(self._site_wide, LEAN_SPARE)
        else:
            self.fragments.keep_only({a.id for feed in feeds for a in feed.items})
        self._made = {path: found for path, found in self._made.items() if pages.get(path) is found[0]}
        return Rendering(Resources(out, pages, self._article_page, self._made), rendered + made, tuple(fresh), len(stored))

    def made_of(self, path: str) -> str:
        """What the resource at path was made from, as the store keeps it (made_from) for a later first render to
        take it over (seed): its key's digest and its undated bytes' digest; "" for what no first render takes
        over (the sitemaps, article pages) or when no origin is set."""
        found = self._cache.get(path)
        if found is None or self.origin is None or found[0] is None or is_sitemap(path) or path == ROBOTS:
            return ""
        return f"{self._key_digest(found[0])}:{found[2]}"

    def _key_digest(self, key: Hashable) -> str:
        """A digest of a resource's key and origin: same digest, same undated bytes. Kept while the key is the
        same object (a refresh reuses the unchanged feeds' keys)."""
        found = self._key_digests.get(id(key))
        if found is not None and found[0] is key:
            return found[1]
        digest = hashlib.sha256(f"{self.origin}\0{_fingerprint(key, self._articles)}".encode()).hexdigest()[:32]
        self._key_digests[id(key)] = (key, digest)
        return digest

    def _stored(self, puts: list) -> dict[str, tuple]:
        """A first render's cache entries taken from the build store: path → (key, Rendered, undated digest) for
        each resource whose stored row was made from the same key and origin, and that the state store still
        dates as the row does (else it is rendered, and dated, anew)."""
        if self.seed is None or self.origin is None:
            return {}
        keys = {path: key for path, key, _ in puts if path not in self._static}  # static files: read, not rendered
        found = self.seed(keys, self._key_digest)  # no key digested unless the store holds a row at its path
        if not found:
            return {}
        rows = self.recorded(list(found))
        return {path: (keys[path], res, digest) for path, (res, digest) in found.items()
                if rows.get(path) == (digest, res.last_modified)}

    def _put_sitemaps(self, cache: dict, out: dict, feeds: list[Feed], live: list[Article], now: datetime | None,
                      drifted: set[str]) -> int:
        """Put the sitemaps and robots.txt (building/sitemaps.py) into cache and out, dated like every resource;
        after the pages, whose Last-Modified is their lastmod. Returns how many were made anew."""
        sections = [(self.site.url + "/", out[HOME].last_modified)]
        sections += [(feed.page_url, out[listing_page(feed.key)].last_modified) for feed in feeds[1:]]  # categories, tags, authors
        files = self.sitemaps.render(sections, live, now or (live[0].published if live else UNDATED))
        fresh = {path: body for path, body in files.items()
                 if (previous := self._cache.get(path)) is None or previous[0] is not body or path in drifted}
        digests = {path: self.sitemaps.digest(path, body) or _digest(body) for path, body in fresh.items()}
        times = self.versions(digests) if fresh else {}
        for path, body in files.items():
            if path in fresh:
                media = ROBOTS_MEDIA_TYPE if path == ROBOTS else SITEMAP_TYPE
                cache[path] = (body, Rendered(body, media, times[path], precompress=False, digest=digests[path]), digests[path])
            else:
                cache[path] = self._cache[path]
            out[path] = cache[path][1]
        return len(fresh)

    def drifted(self) -> set[str]:
        """Paths whose bytes the store dates differently than this process did.

        Another worker that rendered a feed from an older view of the folder after this one recorded it
        moves the record on; when it catches up, the same bytes carry its later time. Rendering those
        again takes that time, so workers agree again.
        """
        if not self._cache or self.alone:
            return set()
        rows = self.recorded(list(self._cache))
        return {path for path, (_, res, digest) in self._cache.items()
                if path in rows and rows[path][0] == digest and rows[path][1] != res.last_modified}

    def _article_pages(self, live: list[Article], live_by_id: Mapping[str, Article], changed: set[str] | None,
                       by_name: dict, moved: tuple[set[str], set[str]] | None = None) -> tuple[dict[str, tuple], dict[str, int]]:
        """Article pages (one per article, most never requested): entries now, pages on first request; and
        how many live articles each category has.

        With the IDs of the articles that changed, the previous entries and counts are carried over and only
        those (and articles published or withdrawn since) are touched: no loop over every article.
        """
        previous = self._pages
        # A listing that came or went changes no unchanged article's page (a live article's listings are all
        # there, before and after); one whose slug or page moved does (a new CATEGORY_SLUGS, SITE_URL).
        before = self._previous_by_name
        relinked = before is None or any(before.get(group, link) != link for group, link in by_name.items())
        self._previous_by_name = by_name
        shown: dict[tuple, tuple] = {}  # an article's links by its categories, tags and author: most share them

        def links(article: Article) -> tuple:
            names = (article.categories, article.tags, article.author)
            found = shown.get(names)
            if found is None:
                found = shown[names] = article_links(article, by_name)
            return found

        if changed is None or previous is None or relinked:
            self.fragments.forget(self._live.keys() - live_by_id.keys())
            pages, counts = {}, {}
            for article in live:
                path = article_path(article.id)
                key = (article, links(article))
                entry = (previous or {}).get(path)
                pages[path] = entry if entry is not None and entry == key else key
                for c in article.categories:
                    counts[c] = counts.get(c, 0) + 1
        else:
            pages, counts = dict(previous), dict(self._counts)
            ids = live_by_id.keys()
            gone, new = moved if moved is not None else (self._live.keys() - ids, ids - self._live.keys())
            changed = {id_ for id_ in changed if id_ in ids}  # not `changed & ids`: that walks every ID
            self.fragments.forget(gone)
            for id_ in gone | changed:  # out with the version last counted
                entry = pages.pop(article_path(id_), None)
                for c in entry[0].categories if entry is not None else ():
                    counts[c] -= 1
            for id_ in changed | new:
                article = live_by_id[id_]
                pages[article_path(id_)] = (article, links(article))
                for c in article.categories:
                    counts[c] = counts.get(c, 0) + 1
            counts = {c: n for c, n in counts.items() if n}
        self._live = live_by_id
        self._pages, self._counts = pages, counts
        return pages, counts

    def _article_page(self, entry: tuple) -> Rendered:
        article, cats = entry
        if self.load_full is not None:  # an article held as a placement: its body from the parse store
            article = self.load_full(article) or article
        body = render_article(article, cats, self.site)[0]
        path, digest = article_path(article.id), _digest(body)
        return Rendered(body, HTML_TYPE, self.versions({path: digest})[path], precompress=False, digest=digest)

    def _undated_feed(self, fmt: str, feed: Feed) -> tuple:
        """A feed's bytes without its date, media type, date function and Rendered options."""
        spec = FORMATS[fmt]
        before = self._cache.get(feed.path(fmt))
        if before is not None and isinstance(before[0], Feed):
            # Its items the last version shares, cut from that version's bytes (read back from the build store once
            # released) where this process let go of them (let_go): only the new items are rendered.
            self.fragments.refill(fmt, feed, before[0], lambda: before[1].body)
        body = self.fragments.assemble(fmt, feed)
        if self._lean:  # its items go with it, but the site-wide page's and the most recently used few
            self.fragments.keep_only(self._site_wide, LEAN_SPARE)
        return body, spec.media_type, spec.date, {"precompress": False, **self._feed_options(fmt, feed)}

    def let_go(self) -> None:
        """From now on keep the item fragments of the site-wide first page (every new article changes it) and
        LEAN_SPARE bytes of the most recently used others, not those of every first page (23 MiB at 10,000 articles,
        as much again as the feeds' bytes, and held beside them): a refresh cuts the items of any other feed it
        changes from that feed's last bytes (_undated_feed), read back from the build store. For the builder, which
        keeps no copy of what it commits (committer.Committer)."""
        self._lean = True
        self.fragments.keep_only(self._site_wide, LEAN_SPARE)


# Bytes of item fragments a lean builder keeps beyond the site-wide page's, the most recently used: a category saved to
# again soon after (a story being followed, a busy section) is assembled without reading its feeds back from the
# store and cutting them (about 5 ms of a one-file refresh at 10,000 articles). A first page's items in the three
# formats are about 1.1 MiB at 10,000 full-text articles of the benchmark corpus: this keeps three or four.
LEAN_SPARE = 4 << 20


def newest(resources: Mapping[str, Rendered]) -> datetime | None:
    """The latest Last-Modified among resources already rendered (article pages are dated on request)."""
    ready = resources._ready if isinstance(resources, Resources) else resources
    return max((r.last_modified for r in ready.values()), default=None)


def _outlines(feeds) -> tuple:
    """What an OPML list shows of each feed (formats/opml.py)."""
    return tuple((f.key, f.prefix, f.title, f.page_url, f.language) for f in feeds)


def _fingerprint(value, articles: dict) -> str:
    """What a resource's key is made of, for its digest (Renderer._key_digest), as text: an article as the fields
    everything else in it is read from (its file's bytes by content_hash, its path, its dates; the reading code
    and settings are in the renderer's origin), made once per article (articles: id → (article, text)); any
    other dataclass field by field; tuples item by item; anything else by its repr."""
    if isinstance(value, Article):
        found = articles.get(id(value))
        if found is None or found[0] is not value:
            found = articles[id(value)] = (value, repr((value.id, value.source, value.content_hash, value.published,
                                                        value.updated, value.guid, value.lang, value.draft)))
        return found[1]
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_fingerprint(v, articles) for v in value) + ")"
    if hasattr(value, "__dataclass_fields__"):
        return type(value).__name__ + "(" + ",".join(_fingerprint(getattr(value, name), articles)
                                                     for name in value.__dataclass_fields__) + ")"
    return repr(value)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()

"""Everything published, rendered once per refresh into an immutable snapshot of bytes, swapped whole.

Every resource a URL names exactly is rendered here; what a serving process makes on a request (a feed asked for by
query, a coding or an article page not committed yet) is listed in the README's "What is published". The same
articles give the same bytes, ETags and compressed bodies in every process, so conditional GET works across workers
and restarts.
"""
from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from operator import attrgetter, itemgetter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from ..config import Settings
from ..formats import FORMATS
from ..formats.sitemap import news_window
from ..model import Article, Feed, Site, dated
from ..paging import Listing, dominant_language, page_feed
from ..reading import scan as scan_module
from ..reading.articles import Options, Skipped, is_placed
from ..reading.pool import release
from ..reading.progress import Progress
from ..reading.scan import Scanner
from ..resource import Rendered, compress_all
from ..urls import feed_url
from .archive import ArchiveCuts
from .feeds import ListingBuilder, assign_slugs
from .owners import Owners
from .render import Renderer, Rendering, newest
from .state import StateStore, damaged, state_problem, wait_for
from .tombstones import Tombstones
from .versions import ListingVersions

log = logging.getLogger(__name__)
# Seconds since 1970 before which a file's mtime dates nothing (1971-01-01): as `date:`'s years start at 1970, and the
# W3C validator calls such dates implausible (reproducible images set every mtime to 0 or 1).
PLAUSIBLE_MTIME = 365 * 86_400
_ID, _STAMPED = attrgetter("id"), itemgetter(1)


@dataclass(frozen=True)
class Snapshot:
    """All published resources by URL path (no leading slash), plus what /healthz reports."""

    resources: Mapping[str, Rendered] = field(default_factory=dict)
    feeds: tuple[Feed, ...] = ()  # the first page of every public feed
    listings: Mapping[str, Listing] = field(default_factory=dict)  # every feed's items, by key
    changed: Mapping[str, datetime] = field(default_factory=dict)  # when each listing last changed, by key
    pages: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)  # when each archive page did (page 2 first)
    articles: Mapping[str, Article] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()
    built_at: datetime | None = None
    next_release: datetime | None = None
    next_expiry: datetime | None = None  # a tombstone expires, or an article leaves the News sitemap: a refresh is due
    # A deployment's first build of a big folder (Publisher.feeds_first): its feeds, OPML and static files only; the
    # home and category pages and the sitemaps come in the snapshot made right after it (Publisher._complete), which
    # the build store commits with the listings' rows and the articles.
    partial: bool = False
    memo: dict = field(default_factory=dict, compare=False)  # derived views, computed on first use


@dataclass(frozen=True)
class Refreshed:
    """What one refresh did, handed to each of Publisher.observers (the build store, metrics)."""

    ok: bool
    previous: Snapshot
    snapshot: Snapshot  # the previous one again when the refresh failed
    seconds: float
    error: str | None = None
    made: int = 0  # resources rendered anew
    fresh: tuple[Rendered, ...] = ()  # the feeds among them, whose gzip and brotli forms are still to make
    seeded: int = 0  # resources taken over from the build store instead of rendered (a restart's first refresh)
    looked_at: int = 0  # articles its stages looked at one by one: what a refresh costs follows what changed

    @property
    def changed(self) -> bool:
        """Whether the refresh made a new set of resources."""
        return self.snapshot.resources is not self.previous.resources


@dataclass(frozen=True)
class FeedOptions:
    """What the publisher needs of the settings: the folder, how to read it, the site and its feeds."""

    root: Path
    reading: Options
    settle: float  # seconds a file changed less than this long ago may still be being written
    site: Site
    max_items: int
    category_slugs: Mapping[str, str]
    public: Mapping[str, Any]  # what public feeds carry: full_text, hub (a partner's view overrides them)
    archive_max_age: int
    tombstone_days: int = 30  # how long the feeds that carried a gone article announce it (tombstones.py)
    # Category names the settings give (CATEGORY_SLUGS' keys, each partner's licensed ones), by the setting that names
    # them: one that no article has is said once (a misspelt one licensed nothing and mapped no slug, unsaid).
    named: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> "FeedOptions":
        return cls(
            root=Path(settings.articles_dir),
            reading=Options.from_settings(settings),
            settle=settings.settle_ms / 1000,  # wall-clock time
            site=Site.from_settings(settings),
            max_items=settings.feed_max_items,
            category_slugs=settings.category_slugs,
            public=MappingProxyType({"full_text": settings.public_content == "full", "hub": settings.websub_hub}),
            archive_max_age=settings.archive_max_age,
            tombstone_days=settings.tombstone_days,
            named=MappingProxyType({"CATEGORY_SLUGS": tuple(settings.category_slugs), **{
                f"PARTNERS ({entry.get('name', '?')})": tuple(entry["categories"]) for entry in settings.partners
                if isinstance(entry.get("categories"), (list, tuple))}}),
        )


class Publisher:
    """Holds the current snapshot and brings it up to date with the articles folder on refresh()."""

    def __init__(self, options: FeedOptions, store: StateStore, clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], object] | None = None, parsed: Any = None, place: bool = False):
        self.options = options
        self.site = options.site
        self.root = options.root
        self.store = store
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        # How to wait for a new Last-Modified to come (at most a second); a test's own clock does not wait.
        self.sleep = sleep or (time.sleep if clock is None else (lambda seconds: None))
        # parsed: parse results kept by stat (parsed.ParsedCache), or None; place=False: every article read in full by
        # every scan (`feedsvc build` exports them all at once).
        # A published article whose file reads as broken (a save emptied, a front-matter typo) stays published as last
        # read good, as the scanner asks here (published_as_read): across a restart too, from the parse store.
        self.scanner = Scanner(self.root, options.reading, settle=options.settle, parsed=parsed,
                               place_from=scan_module.PLACE_FROM if place else float("inf"), published=self.published_as_read)
        self.renderer = Renderer(self.site, lambda digests: store.record_versions(digests, self.clock()),
                                 store.recorded_versions, archive_max_age=options.archive_max_age,
                                 load_full=self.load_full)  # an article page of an article held as a placement
        # What public feeds carry; a partner's view overrides full_text and adds its prefix.
        self.public = dict(options.public)
        # The shape of every view of a listing: the reading options too (a new SUMMARY_LENGTH, CHROME_MARKERS or
        # SITE_LANGUAGE changes every item's bytes where its file did not change), so archive pages and deltas get a
        # new Last-Modified with their new bytes, and a client sending If-Modified-Since alone is not answered 304.
        self.versions = ListingVersions(lambda digests: store.record_versions(digests, self.clock()), store.recorded_versions,
                                        (self.site, self.public, options.max_items, options.reading), options.max_items)
        self.listing_builder = ListingBuilder()  # the listings, updated for what changed (feeds.py)
        self.tombstones = Tombstones(store, timedelta(days=options.tombstone_days))  # what went from them (tombstones.py)
        self.archive_cuts = ArchiveCuts(store, options.max_items)  # where each complete archive page ends (archive.py)
        self.listeners: list[Callable[[list[str]], None]] = []  # told the URLs of feeds a refresh changed
        # The ETag the site served before this process at a path (the build store's latest build), for the first
        # refresh's listeners: a restart that changed nothing tells the WebSub hub of nothing.
        self.served_before: Callable[[str], str | None] | None = None
        # Told what each refresh did, in order, before the next one starts: what start_building adds (the build store
        # commits here, or without one compress_fresh codes the new feeds; metrics count, WebSub).
        self.observers: list[Callable[[Refreshed], None]] = []
        # Asked before each commit of the background reading after a cold start (finish_reading): each waits up to
        # the seconds given for what an observer left for later (the build store's article pages and codings of the
        # last builds), True once none is left; so the reading never runs ahead of the committing, and neither its
        # parse results nor the codings pile up waiting.
        self.backlogs: list[Callable[[float], bool]] = []
        self.snapshot = Snapshot()
        self.last_error: str | None = None
        self.last_success: datetime | None = None
        # An observer's failure in the last refresh (one traceback, then a line a refresh), None once they all succeed:
        # /healthz tells it (observer_error), as the search index or the metrics failing leaves the feeds served.
        self.observer_error: str | None = None
        # The latest time the clock has shown (or the state store recorded a change at): what the embargoes are released
        # by. A clock stepped back (a VM restored, NTP stepping) never holds back again what was published, which would
        # withdraw every article first seen since and announce it deleted (tombstones); None until the first refresh.
        self._released: datetime | None = None
        self._kept_release: datetime | None = None  # the latest of it the state store holds (StateStore.latest_seen)
        self.pending: frozenset[str] = frozenset()
        self._stamped: dict[str, tuple[Article, Article]] = {}  # id → (as read, as stamped)
        # The stages of a refresh follow the scan by what came and went (ScanResult.came/went), not by a look at every
        # article: Owners.unique() hands its changes to _stamp(), which hands its own to the listing builder. False
        # before the first refresh and after a failed one: then each stage compares everything once (see each).
        self._synced = False
        self._slugs: dict[str, str] = {}  # category name → its slug, as the state store last said
        self._unpublished_said: set[str] = set()  # categories the settings name that no article had, said once
        self._term_slugs: dict[str, dict[str, str]] = {"tag": {}, "author": {}}  # the same for tags and authors
        self._pages: dict[str, tuple] = {}  # listing key → (listing, its first page, that page dated), as last built
        self.owners = Owners(store)  # which file owns each ID and GUID (owners.py)
        self._lock = threading.Lock()  # one refresh at a time; readers never wait on it
        self.progress = Progress()  # what the running refresh does, for /healthz (feedsvc/reading/progress.py)
        self._finisher: threading.Thread | None = None  # reads in full what a scan only placed (finish_reading)
        # Set by a builder that commits into a store holding no build (builder.start_building): the first refresh of a
        # big folder (one it only places, most of it) renders its feeds, OPML and static files, has `committers` (the
        # build store's) commit them, then renders its pages and sitemaps (_complete) and tells every observer of the
        # whole (the store commits those, with the listings' rows and the articles). Every feed answers sooner by their
        # making and writing (0.25 s of a cold start's 1.5 at 10,000 articles); a page, archive page or delta asked for
        # meanwhile waits for the whole build (serving/web.py, at most serving/variants.py's WAIT_SECONDS), then a 503.
        self.feeds_first = False
        self.committers: list[Callable[[Refreshed], None]] = []
        self._waited = 0.0  # seconds the running refresh waited for its versions' second to come

    def refresh(self, hints: Iterable[str] | None = None) -> bool:
        """Bring the snapshot up to date; on failure log it and keep serving the last good one.

        hints: paths a file watcher saw change; only those are looked at instead of the whole folder.
        """
        with self._lock, self.progress.running():
            started = time.perf_counter()
            self._waited = 0.0
            try:
                snapshot, changes, rendering, rest = self._build(self.clock(), hints)
            except Exception as exc:  # the edge where work must go on: keep the last good feeds
                self._synced = False  # a stage may have missed what came and went: the next refresh compares all
                if self.store.rolled_back:  # what the state store said in this refresh is not in it: ask again
                    self._stamped, self._slugs = {}, {}
                    self._released = self._kept_release = None  # a release time noted in it too
                    self.owners.forget()
                    self._term_slugs = {"tag": {}, "author": {}}
                    self._forget_carried()
                    self.archive_cuts.forget()
                broken = damaged(exc, self.store.path)
                self.last_error = broken or f"{type(exc).__name__}: {exc}"
                if broken is not None:  # the store the serving processes read is broken too: they answer 503, serve nothing
                    log.error("refresh failed: %s", self.last_error)
                elif self.snapshot.built_at is None:  # nothing built yet: nothing to keep serving
                    log.error("refresh failed, no feeds built yet: %s", self.last_error)
                else:
                    log.error("refresh failed, still serving the feeds built at %s: %s", self.snapshot.built_at, self.last_error)
                self._tell_observers(Refreshed(False, self.snapshot, self.snapshot, time.perf_counter() - started, self.last_error))
                return False
            previous, self.snapshot = self.snapshot, snapshot  # one assignment: old set or new, never a mix
            if not self.scanner.placed:  # reading workers kept since start (pool.prestart): not needed any more
                release()
            made, fresh, seeded = (rendering.made, rendering.fresh, rendering.seeded) if rendering is not None else (0, (), 0)
            files, stored, looked_at = changes if changes is not None else (0, 0, 0)
            counts = {"made": made, "fresh": fresh, "seeded": seeded, "looked_at": looked_at}
            self.last_error = None
            committed_before, self.last_success = self.last_success, snapshot.built_at
            if changes is not None:
                # The work's time last (what the benchmarks read); a wait for the next second (a second version
                # within one second of the last: Last-Modified has whole seconds) said apart. A fresh process holds
                # no file before its first scan: those the parse store had as they are now are said apart too.
                took = time.perf_counter() - started
                log.info("refresh: %d articles, %d changed files%s, %d resources rendered, %d skipped, %s%.0f ms",
                         len(snapshot.articles), files, f" ({stored} unchanged, from the store)" if stored else "",
                         made, len(snapshot.skipped),
                         f"waited {self._waited * 1000:.0f} ms for the next second, " if self._waited else "",
                         (took - self._waited) * 1000)
                self._tell_listeners(previous, snapshot)
            if snapshot.partial:  # the build store commits its feeds, then the same refresh makes its pages
                for commit in self.committers:
                    commit(Refreshed(True, previous, snapshot, time.perf_counter() - started, **counts))
                # The background reading from now, not once the pages are made: the articles asked for meanwhile (an
                # article page of a file only placed) are read while they are, and committed right after this refresh.
                self._finish_reading()
                self.snapshot = snapshot = self._complete(snapshot, rest)
            if not self._tell_observers(Refreshed(True, previous, snapshot, time.perf_counter() - started, **counts)):
                # Not committed (a full disk, a store a newer feedsvc changed): serving processes still serve the last
                # build committed, so this is no success, and /healthz turns stale after three refresh intervals.
                self.last_success = committed_before
            self._finish_reading()
            return True

    def _finish_reading(self) -> None:
        """Start finish_reading on a thread of its own, if files are only placed and it does not run yet."""
        if self.scanner.placed and (self._finisher is None or not self._finisher.is_alive()):
            self._finisher = threading.Thread(target=self.finish_reading, args=(self.scanner.placed,), name="finish-reading", daemon=True)
            self._finisher.start()

    def finish_reading(self, placed: Mapping[str, tuple[int, int]]) -> None:
        """Read in full, beside the refreshes, the files a cold start only placed (building/background.py)."""
        from .background import finish_reading  # only a builder's cold start of a big folder needs it

        finish_reading(self, placed)

    def adopt(self, results: Mapping[str, tuple[tuple[int, int], Article | Skipped]]) -> None:
        """Hold these full results read outside a refresh (the background reading) for the next one (Scanner.adopt)."""
        with self._lock:
            self.scanner.adopt(results)

    def read_in_full(self) -> None:
        """Read every file in full from now on, however many: no placement pass (`feedsvc build`, which writes
        every page at once, and gains nothing from the feeds first)."""
        self.scanner.place_from = float("inf")

    def read_full(self, article: Article) -> Article | None:
        """load_full() for an article read in full once (its text is in the parse store); None for one a cold
        start has only placed so far (the background reads it): never a file read here."""
        if self.not_read_yet(article):
            return None
        return self.load_full(article)

    def published_as_read(self, article: Article) -> bool:
        """Whether an article, as read from its file, is published now: in the last build, from that file with that content;
        before this process's first build, carried by the feeds of the last build the state store recorded (a restart, a
        builder taking over). A draft, an embargoed article, another file's duplicate or one deleted since is not."""
        if self.snapshot.built_at is None:
            return self.tombstones.carries(article.guid, article.source)
        live = self.snapshot.articles.get(article.id)
        return live is not None and live.source == article.source and live.content_hash == article.content_hash

    def not_read_yet(self, article: Article) -> bool:
        """Whether an article is a placement a cold start's background has not read in full yet (no text anywhere)."""
        return is_placed(article) and self.scanner.unread(article.source)

    def load_full(self, article: Article) -> Article | None:
        """The article with its body, summary and language, stamped as given: itself when it has them, else from
        the parse store (or its file); None when its file changed since (the next scan reads it)."""
        if not is_placed(article):
            return article
        found = self.scanner.full(article.source)
        if not isinstance(found, Article) or (found.id, found.content_hash) != (article.id, article.content_hash):
            return None
        return dated(found, article.published, article.updated, article.recorded)

    def wait_reading(self, timeout: float | None = None) -> bool:
        """Wait for finish_reading(); True when every article is read in full (tests, tools)."""
        finisher = self._finisher
        if finisher is not None:
            finisher.join(timeout)
        return not self.scanner.placed

    def build(self, now: datetime) -> Snapshot:
        """Read, stamp, select and render everything for the moment `now` (used by tests and tools)."""
        with self._lock:
            return self._build(now, None)[0]

    def next_wakeup(self) -> datetime | None:
        """When a refresh is due before the next tick: an embargo ending, a tombstone expiring, an article leaving
        the News sitemap, a file settling, or the folder to be walked again (a cold start's walk read ahead)."""
        times = [t for t in (self.snapshot.next_release, self.snapshot.next_expiry) if t is not None]
        if self.pending:  # a file held back settles, one the watcher saw go is looked at again (scan.GONE_AFTER)
            times.append(self.clock() + timedelta(seconds=max(self.scanner.settle, scan_module.GONE_AFTER)))
        if self.scanner.rewalk:  # the last walk was made ahead, before the watcher was set (readahead.ReadAhead): walk again now
            times.append(self.clock())
        return min(times, default=None)

    def _build(self, now: datetime, hints: Iterable[str] | None
               ) -> tuple[Snapshot, tuple[int, int, int] | None, Rendering | None, tuple | None]:
        """The snapshot for `now`; how many files changed, how many of them the parse store had as they are, and how
        many articles its stages looked at (None: nothing to do, the last snapshot as it was); what was rendered (None:
        nothing); and for a partial snapshot (feeds_first) what its pages are rendered from (_complete), else None."""
        scan = self.scanner.scan(hints)
        self.pending = scan.pending
        old = self.snapshot
        released = any(t is not None and t <= now for t in (old.next_release, old.next_expiry))
        if (old.built_at is not None and not scan.changed and not released and self._synced
                and (hints is not None or not self._drifted())):
            return replace(old, built_at=now), None, None, None  # nothing to do: same bytes, same ETags
        fresh: set[str] = set()
        size, changes = self.options.max_items, (len(scan.changed) - scan.stored, scan.stored)
        synced, looked = self._synced, 0
        if not synced:
            self.listing_builder = ListingBuilder()  # built again from every article
        builder = self.listing_builder
        # One transaction for the state store's writes of this refresh (owners, stamps, slugs, versions, tombstones),
        # committed before any wait for the next second. A deployment's first build that only placed files holds its
        # owners' and stamps' rows back (20,000 at 10,000 articles): _complete's transaction writes them, first thing,
        # once the feeds are committed. Its feeds come 85 ms sooner at 10,000 articles, and 0.15-0.55 s sooner at 100,000
        # (4.59-5.14 s against 5.02-5.28 s, in six pairs), where the builder maps its big blocks apart from its walk on
        # (building/builder.py map_apart): without that, what the held rows displaced stayed scattered in the heap, and
        # the builder's peak in the background reading seconds later was 401-402 MiB, over its 400 MiB line.
        hold = self.feeds_first and bool(self.scanner.placed)
        with self.store.transaction(hold=hold):
            while True:
                came, went, duplicates, seen = self.owners.unique(scan, synced, self._stamped)
                came, went, stamped, also_seen = self._stamp(came, went, now, scan.modified)
                looked += seen + also_seen
                fresh |= stamped
                released = self._release_time(now)
                builder.apply(came, went, released, len(self._stamped), lambda: map(_STAMPED, self._stamped.values()))
                newest = builder.newest_published()
                if newest is not None and newest > self._kept_release:  # an embargo ended since: kept, should the clock step back
                    self.store.record_release(released)
                    self._kept_release = released
                synced = True  # the next round (complete()) follows by what came and went
                listings = builder.listings(self.site, self.options.category_slugs, self._claim_slugs(),
                                            self._claim_term_slugs({kind: builder.names(kind) for kind in ("tag", "author")}))
                # A scan that only placed most files (a cold start), or a restart that holds placements: the articles on
                # every listing's first page, and those the News sitemap names (their language and title), are read in
                # full now, the rest in the background (finish_reading). Each round reads at least one more. A listing
                # whose items are the very tuple of the last refresh's (tombstones and archive cuts dress it in a copy
                # that keeps them) had its first page read in full then.
                pages, site_wide = self._pages, listings[0]
                first = {a.source for listing in listings if _items_of(pages.get(listing.key)) is not listing.items
                         for a in listing.items[:size] if is_placed(a)}
                if _items_of(pages.get("")) is not site_wide.items:
                    first |= {a.source for a in news_window(site_wide.items, now)[0] if is_placed(a)}
                if not first:
                    break
                scan = self.scanner.complete(first)
            partial, self.feeds_first = self.feeds_first and bool(self.scanner.placed), False
            if hold and not partial:  # every file read for the first pages: no _complete to write them
                self.store.write_held()
            held = {s.source for s in scan.skipped} | scan.pending
            # A deployment's first build has no tombstone to show: what its listings carry (20,000 rows at 10,000
            # articles, 1.3 s at 100,000) is recorded with its pages (_complete), after its feeds.
            record_now = not (partial and self.tombstones.announce_nothing())
            listings, expires = self.tombstones.update(listings, now, held=held) if record_now else (listings, None)
            listings = self.archive_cuts.apply(listings)
            feeds = self._first_pages(listings)
            live = list(listings[0].items)
            live_by_id, moved = self._live_by_id(listings[0])
            rendering = self.renderer.render(feeds, live, live_by_id, fresh, now=now, moved=moved, with_pages=not partial)
            resources = rendering.resources
            # The listings' and archive pages' times date what a partial snapshot does not serve (deltas, archive pages,
            # the listings' rows its pages are committed with): dated with its pages (_complete), after its feeds.
            before = (self.snapshot.listings, self.snapshot.changed)
            changed, pages = ({}, {}) if partial else self.versions.times(listings, *before)
        self._synced = True
        # A new version may be dated up to a second ahead (a second change within one second): it is
        # served once its time has come, so no Last-Modified is ever later than the response's Date.
        latest = _latest(resources, changed, pages)
        self._waited = wait_for(latest, self.clock())
        if self._waited:
            self.sleep(self._waited)
        snapshot = Snapshot(
            resources=resources,
            feeds=tuple(self._dated(feed, resources[feed.path("rss")].last_modified) for feed in feeds),
            listings=MappingProxyType({listing.key: listing for listing in listings}),
            changed=MappingProxyType(changed),
            pages=MappingProxyType(pages),
            articles=live_by_id,
            skipped=tuple(sorted(scan.skipped + tuple(duplicates), key=lambda s: s.source)),
            built_at=now,
            next_release=builder.next_release(),
            next_expiry=_soonest(expires, news_window(live, now)[1]),
            partial=partial,
        )
        return snapshot, (*changes, looked), rendering, (feeds, live, live_by_id, now, listings, before, None if record_now else held) if partial else None

    def _complete(self, partial: Snapshot, rest: tuple) -> Snapshot:
        """The whole snapshot of a partial one (its feeds committed): the home and category pages and the sitemaps of
        the same listings rendered, every other resource taken as it is. If that fails, the partial snapshot, and the
        next refresh renders them (feeds_first is over); until then a page asked for waits a bounded time and is a 503
        (the store's build still says it is partial). rest: what _build rendered the partial one from."""
        feeds, live, live_by_id, now, listings, before, held = rest
        try:
            with self.store.transaction():
                if held is not None:  # what the listings carry, left by _build: none has a tombstone to show (no listing changes)
                    self.tombstones.update(listings, now, held=held)
                rendering = self.renderer.render(feeds, live, live_by_id, set(), now=now, moved=(set(), set()))
                changed, pages = self.versions.times(listings, *before)
            latest = _latest(rendering.resources, changed, pages)
            if waited := wait_for(latest, self.clock()):  # as _build
                self.sleep(waited)
        except Exception as exc:  # the edge where work must go on: the feeds are committed; the next refresh renders the rest
            self._synced = False
            self.versions.forget()  # archive pages it may have dated in a transaction that did not commit
            if held is not None:  # and what the listings carry, as it may have recorded it
                self._forget_carried()
            log.error("the first build's pages could not be rendered, the next refresh renders them: %s: %s",
                      type(exc).__name__, exc)
            return partial
        return replace(partial, resources=rendering.resources, changed=MappingProxyType(changed), pages=MappingProxyType(pages),
                       partial=False, memo={})

    def _forget_carried(self) -> None:
        """Let the next refresh learn what the listings carry from the state store again: a transaction that recorded
        it was rolled back, and the rows it wrote in memory only would never be written (a deletion then unannounced)."""
        self.tombstones = Tombstones(self.store, self.tombstones.retention)

    def in_full(self, feed: Feed) -> Feed:
        """The feed with its items in full: those held as placements come from the parse store (load_full)."""
        if not any(is_placed(a) for a in feed.items):
            return feed
        items = tuple(self.load_full(a) or a for a in feed.items)
        return replace(feed, items=items, language=dominant_language(items, self.site.language))

    def build_alone(self) -> None:
        """From now on this process alone dates versions in the state store (it holds the build lock): the drift
        checks, which read back every resource's and listing's recorded date each refresh to heal a difference
        another process made (Renderer.drifted), have nothing to find."""
        self.renderer.alone = self.versions.alone = True

    def _drifted(self) -> bool:
        """Whether another worker dated bytes this process serves differently: then build again to agree."""
        return bool(self.renderer.drifted() or self.versions.drifted(self.snapshot.changed))

    def _appeared(self, articles: Iterable[Article], modified: Mapping[str, float]) -> dict[str, datetime]:
        """When each article's file appeared (its mtime), from the stat the scan made (ScanResult.modified); none for
        an mtime before PLAUSIBLE_MTIME (a reproducible image's 0 or 1, a clock that was never set), which is no date
        the file was written at: such an article is dated when first seen."""
        times = {}
        for a in articles:
            seconds = modified.get(a.source)
            if seconds is not None and seconds >= PLAUSIBLE_MTIME:
                times[a.id] = datetime.fromtimestamp(seconds, timezone.utc)
        return times

    def _release_time(self, now: datetime) -> datetime:
        """The time embargoes are released by: now, or the latest the clock was at before it stepped back."""
        if self._released is None:
            self._released = self._kept_release = self.store.latest_seen() or now
        self._released = max(self._released, now)
        return self._released

    def _claim_slugs(self) -> dict[str, str]:
        """Slugs of the categories published as of the listings' last update, each recorded in the state store when
        first published (the listing builder knows them: no look at every article)."""
        names = self.listing_builder.names("category")
        if not names <= self._slugs.keys():
            configured = self.options.category_slugs
            self._slugs.update(self.store.claim_slugs(names, lambda new, recorded: assign_slugs(new, configured, recorded)))
            self._say_unpublished(names)
        return self._slugs

    def _say_unpublished(self, names: Iterable[str]) -> None:
        """Say once each category a setting names that no article has (yet): a misspelling licenses or maps nothing."""
        for setting, named in self.options.named.items():
            for name in sorted(set(named) - set(names) - self._unpublished_said):
                log.warning("setting %s names the category %r, which no published article has (yet): check its spelling "
                            "against the articles' categories (the site's OPML lists them)", setting, name)
                self._unpublished_said.add(name)

    def _first_pages(self, listings: list[Listing]) -> list[Feed]:
        """Each listing's first page; a listing that did not change keeps its Feed (a few hundred tags, one file saved)."""
        kept, made = self._pages, {}
        for listing in listings:
            found = kept.get(listing.key)
            if found is None or found[0] is not listing:
                found = (listing, page_feed(listing, self.site, self.options.max_items, 1, **self.public), None)
            made[listing.key] = found
        self._pages = made
        return [found[1] for found in made.values()]

    def _dated(self, feed: Feed, updated: datetime) -> Feed:
        """The feed with its recorded time, the same object as last time when neither changed."""
        listing, undated, with_date = self._pages[feed.key]
        if with_date is None or with_date.updated != updated:
            with_date = replace(feed, updated=updated)
            self._pages[feed.key] = (listing, undated, with_date)
        return with_date

    def _claim_term_slugs(self, live: Mapping[str, set[str]]) -> dict[str, dict[str, str]]:
        """Slugs of the tags and authors published now (`live`, by kind), each recorded when first published."""
        for kind, names in live.items():
            known = self._term_slugs[kind]
            if not names <= known.keys():
                known.update(self.store.claim_term_slugs(kind, names, lambda new, recorded: assign_slugs(new, {}, recorded)))
        return self._term_slugs

    def _tell_observers(self, refreshed: Refreshed) -> bool:
        """Hand the refresh to each observer (the build store's committer, metrics, the search index); False when a
        committer failed. A failure is said once with its traceback, then in one line a refresh while it fails the
        same way; only a committer's makes the refresh a failed one (its build is not what the site serves)."""
        failed, committed = None, True
        for observer in self.observers:
            if not committed and refreshed.ok:  # the build is not committed: those after see a failed refresh
                refreshed = replace(refreshed, ok=False, error=self.last_error)  # (metrics count it so, search waits)
            try:
                observer(refreshed)
            except Exception as exc:  # an observer's failure (a full disk under the build store) never stops refreshing
                failed = f"{type(exc).__name__}: {exc}"
                # A full or read-only disk: what to do is said with it (naming the file), and no traceback adds to it.
                said = state_problem(exc, self.store.path) if _said_by_itself(exc) else None
                if failed != self.observer_error and said is None:
                    log.exception("a refresh observer failed")
                else:
                    log.error("a refresh observer failed%s: %s", " again" if failed == self.observer_error else "", said or failed)
                if refreshed.ok and observer in self.committers:
                    committed = False
                    self.last_error = (f"the build could not be committed to the store: {said}" if said is not None
                                       else f"the build could not be committed to the store ({failed}); see the log")
        self.observer_error = failed
        return committed

    def _tell_listeners(self, previous: Snapshot, current: Snapshot) -> None:
        """Hand the URLs of public feeds whose bytes changed to each listener (WebSub)."""
        if not self.listeners:
            return
        served = self.served_before if not previous.resources else None  # this process's first build: the store's
        self.served_before = None
        changed = []
        for feed in current.feeds:
            for fmt in FORMATS:
                path = feed.path(fmt)
                was, now = previous.resources.get(path), current.resources.get(path)
                if _same_bytes(was, now):  # rendered again, to the same bytes (an edit its format does not show): no news
                    continue
                if served is not None and now is not None:
                    try:
                        if served(path) == now.etag:
                            continue
                    except Exception:  # a store that cannot be read: every feed is told, as before a store
                        log.exception("the ETags served before could not be read; the hub is told of every feed")
                        served = None
                changed.append(feed_url(self.site, feed, fmt))
        if changed:
            for listener in self.listeners:
                listener(changed)

    def _stamp(self, came: list[Article], went: list[Article] | None, now: datetime,
               modified: Mapping[str, float]) -> tuple[list[Article], list[Article], set[str], int]:
        """Stamp the articles that came (read anew); the rest keep their stamped objects. Returns the stamped articles
        that came, those that went (as stamped), the fresh IDs, and how many articles it looked at.

        went None (the first refresh, after a failed one, or a repeated ID): `came` is every article, each compared
        with what is held, once."""
        stamped_map, left, looked = self._stamped, [], 0
        if went is None:
            unique = came
            looked = len(unique)
            came = [a for a in unique if stamped_map.get(a.id, (None,))[0] is not a]
            went = [stamped_map[id_][0] for id_ in stamped_map.keys() - set(map(_ID, unique))]
        looked += len(came) + len(went)
        for a in went:
            found = stamped_map.get(a.id)
            if found is not None and found[0] is a:
                del stamped_map[a.id]
                left.append(found[1])
        fresh = {a.id: a for a in came if stamped_map.get(a.id, (None,))[0] is not a}
        self.store.forget_recorded({a.id for a in went} - {a.id for a in came})  # recorded anew if they come back
        made = []
        if fresh:
            for stamped in self.store.stamp(fresh.values(), now, appeared=self._appeared(fresh.values(), modified)):
                before = stamped_map.get(stamped.id)
                if before is not None:
                    left.append(before[1])
                stamped_map[stamped.id] = (fresh[stamped.id], stamped)
                made.append(stamped)
        return made, left, set(fresh), looked

    def _live_by_id(self, site_wide: Listing) -> tuple[Mapping[str, Article], tuple[set[str], set[str]] | None]:
        """The published articles by ID, a map of its own for each snapshot (the build store's commit compares them by
        identity): the last one copied with the site-wide listing's moves (left, came) when it follows the last
        snapshot's listing, else made from every item. With it the IDs that left the published ones and those that
        came, when known that way (None: the renderer compares every ID)."""
        before = self.snapshot.listings.get("")
        if before is site_wide:
            return self.snapshot.articles, (set(), set())
        if before is not None and site_wide.since == id(before) and isinstance(self.snapshot.articles, MappingProxyType):
            live = self.snapshot.articles.copy()  # the dict under the proxy, copied in C
            for a in site_wide.left:
                if live.get(a.id) is a:
                    del live[a.id]
            live.update(zip(map(_ID, site_wide.came), site_wide.came))
            left, came = set(map(_ID, site_wide.left)), set(map(_ID, site_wide.came))
            return MappingProxyType(live), (left - came, came - left)
        return MappingProxyType(dict(zip(map(_ID, site_wide.items), site_wide.items))), None


# What the machine says of its disk, in SQLite's words or the system's: the fix is the operator's, not in the code.
_DISK_WORDS = ("database or disk is full", "attempt to write a readonly database", "disk I/O error")


def _same_bytes(was: Rendered | None, now: Rendered | None) -> bool:
    """Whether a resource before and after a refresh has the same bytes: the same object, or the same ETag (a digest of
    the bytes): a feed rendered again to its old bytes was told to the WebSub hub as changed."""
    return was is now or (was is not None and now is not None and was.etag == now.etag)


def _said_by_itself(exc: BaseException) -> bool:
    """Whether a failure says all there is to it in one line: a full or read-only disk under the store."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
        return True
    return isinstance(exc, sqlite3.OperationalError) and any(words in str(exc) for words in _DISK_WORDS)


def compress_fresh(refreshed: Refreshed) -> None:
    """Observer: make the gzip and brotli forms of the feeds a refresh rendered anew (tens of ms each) in a
    thread beside the refresh, not inside it; a request that comes first makes the coding it needs, once."""
    if refreshed.fresh:
        threading.Thread(target=compress_all, args=(refreshed.fresh,), name="compress", daemon=True).start()


def _items_of(found: tuple | None) -> tuple | None:
    """The items of the listing a first page was cut from (Publisher._pages), or None."""
    return None if found is None else found[0].items


def _latest(resources, changed: Mapping[str, datetime], pages: Mapping[str, tuple[datetime, ...]]) -> datetime | None:
    """The latest date of a build: its resources', its listings' and their archive pages' (what waits for its second)."""
    return max(filter(None, [newest(resources), *changed.values(), *(max(t, default=None) for t in pages.values())]), default=None)


def _soonest(*moments: datetime | None) -> datetime | None:
    """The earliest of these moments that are set: when a refresh is due without a file changing."""
    return min(filter(None, moments), default=None)


__all__ = ["FeedOptions", "Publisher", "Refreshed", "Rendered", "Snapshot"]

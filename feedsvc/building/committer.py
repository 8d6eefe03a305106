"""How a refresh reaches the build store: each refresh's rows that differ from what the store holds, the article pages
and codings a cold start leaves to background builds, and the parse results landed before the process ends.

The Committer is an observer of the Publisher (building/site.py), added by building/builder.py's start_building in the
process that builds.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import logging
import os
import pickle
import sqlite3
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from itertools import compress
from operator import is_not, not_
from typing import Any, Callable, Mapping

from .. import allocator
from ..children import flush_output
from ..formats import FORMATS
from ..model import Article, dated, names_site
from ..store import ItemRef, ListingHead, StoreReader, connect, short_digest
from .storewriter import Build, ItemRows, StoreWriter, item_row, resource_row, validators_of
from ..transactions import made_hash, rows_for
from ..urls import HTML_TYPE, is_sitemap, preview_key
from .parsed import ParsedCache

log = logging.getLogger(__name__)

# Article pages a build commits itself; past that many new ones (a cold start), the build commits without them, so
# the feeds, home, category pages and OPML answer first, and a background thread commits the pages right after,
# PAGES_PER_BUILD to a build. A page asked for meanwhile is rendered by the serving process (variants.py).
FIRST_PAGES = 500
PAGES_PER_BUILD = 250
# What else a background build (Committer.finish) takes at most: the codings of this many resources committed
# without them, this many sitemaps and feeds' pages for browsers. A cold start leaves a hundred feeds to code (27 MB
# at 10,000 articles, full text): made and committed all at once, they added 32 MiB to the builder's peak.
OTHERS_PER_BUILD = 16
# Once every file is read, a build that put fewer bytes than this (a few saved files: at 10,000 articles 2-5 MB, its
# feeds, pages, sitemap and their codings) keeps the memory it freed for the next refresh, which takes the same
# again: given back and taken anew, those pages cost about 1,200 page faults a one-file refresh at 10,000 articles,
# 6 ms of its 28 in-process at 3.4 µs a fault on this machine, for about 20 MiB held between saves, until the first
# refresh that finds nothing changed (the schedule's) gives it back. Any other build (a cold start's, while its pages
# are made, or a big change) gives it back at once (Committer._give_back).
TRIM_FROM = 16 << 20
# How long a process that ends waits for the parse results its first build left to the background to be committed
# (land_at_exit): a cold start's placements, 0.4 s after the feeds answer at 10,000 files and 1-2 s at 100,000. Below
# the 10 s `feedsvc serve` gives its builder to stop (server.with_builder).
LAND_WITHIN_S = 5


class Committer:
    """Commits each refresh that changed something to the build store, as rows that differ from what it holds.

    A builder's first build compares every row with the store (a restart writes only what moved while it was
    down). Each later one looks only at what its refresh changed: resources, article pages and articles whose
    objects are not the ones last committed (compared by identity, in C), and each changed listing's items that
    left and came (ListingBuilder's delta): one saved file writes a few dozen rows, however big the archive.
    Feeds are committed with the codings already made (a builder's first build makes them all); those still to make
    (gzip and brotli of the changed feeds, the sitemaps) are made after the commit and committed by builds of their
    own, a moment later (`finish`):
    a serving process asked for one meanwhile makes it from the same bytes.
    """

    def __init__(self, writer: StoreWriter, publisher, parsed: ParsedCache | None = None, reader=None, made_by: str = "",
                 release: bool = False, rebase_key: str = "", variant_settings: dict | None = None):
        self.writer, self.publisher, self.parsed, self.reader = writer, publisher, parsed, reader
        # What every resource is made from but the site's URL (rebase.py): a build made with the same key at
        # another URL is republished at this one before the first build.
        self.rebase_key = rebase_key
        self.variant_settings = variant_settings or {}  # feedsvc.VARIANT_SETTINGS by name, for each build's report
        # release: once committed, the feeds' bytes live in the store only (Rendered.release); for the process
        # that holds the build lock, the one writer, whose committed rows nobody else replaces.
        self.release = release and reader is not None
        # What an article page or stored item is made from besides the article's own fields below: the reading
        # and rendering code, the reading settings and the site. An article is its file's text as read
        # (content_hash) at its path, dated by the state store; so these fields say when it must be stored again.
        self.made_by = short_digest(f"{made_by} {publisher.site!r}")
        # A stored item is the Article as read and dated: the site is in it only when the file names it (a Markdown
        # link, a relative `image:`), so a deployment moved to another URL does not store 10,000 items again.
        self.read_by = short_digest(made_by)
        self.behind = True  # the store may not hold this process's snapshot yet (start, or a failed commit)
        self._synced = False  # what is remembered below is what the store holds (after a first whole comparison)
        # The first whole comparison's rows when read ahead (`feedsvc build`: storewriter.held_at in children.Ahead): () →
        # (version, rows) or None.
        self.held_ahead: Callable[[], tuple[int, dict] | None] | None = None
        self._pages: Mapping[str, Any] = {}  # article page path → the renderer entry committed
        self._plain: Mapping[str, Any] = {}  # every other resource's path → the Rendered committed
        self._preview_keys: set[str] = set()  # the feeds' pages for browsers committed (urls.preview_key)
        self._listings: dict[str, tuple] = {}  # key → (Listing, changed, items hash) committed
        self._next_listings: dict[str, tuple] = {}  # the same for the build being made, until it is committed
        self._items: Mapping[str, Any] = {}  # id → the Article object committed
        # Article pages left to commit after the last build: path → renderer entry, in order. Not with its made_from,
        # made again as each is committed (_made_from is a function of the entry): a restart at a new URL, or after an
        # upgrade, leaves every article page for later, and 100,000 of those texts held 35 MB through its background.
        self._deferred: dict[str, tuple] = {}
        self._report: dict = {}
        self._recode: dict[str, tuple] = {}  # path → (Rendered, made_from): rows committed without their codings
        self._later: dict[str, tuple] = {}  # path → (Rendered, made_from): sitemaps left out of a refresh's build
        self._parsed: list[tuple] = []  # parse results left for the background pages' first build (for restarts only)
        self._parsed_refs: list = []  # for each of them, the items row it is stored as (store.ItemRef) or None (_refs)
        self._previews: dict[str, tuple] = {}  # feed path → (snapshot, made_from): feeds' pages for browsers left to commit
        self._lock = threading.Lock()  # one commit at a time: a refresh's or the background's (finish)
        self._peeking: sqlite3.Connection | None = None  # _peek()
        self._holder: int | None = None  # the thread in a refresh's commit (_committing), for on_sigterm and land()
        self._finisher: threading.Thread | None = None
        self._finishing = False  # the background thread runs and will look for work again (under the lock)
        self.written = 0  # rows the last build of a refresh put or deleted (tests: a build costs what changed)
        self._kept_freed = False  # a small build kept the memory it freed (_give_back), for the next one to take
        # The earliest time what the refreshes not committed yet show anew is dated at (_dated): a builder's first build
        # starts from the store's latest build's, as what changed while none ran may be dated before this one started.
        self._dated = writer.dated()
        _COMMITTERS.add(self)

    def __call__(self, refreshed) -> None:
        if not refreshed.ok or not (refreshed.changed or self.behind or (self.parsed and self.parsed.waiting)):
            if refreshed.ok and self._kept_freed:  # nothing changed since (the schedule's refresh): saves are over
                self._kept_freed = False
                allocator.trim()
            return
        with self._committing():
            self.behind = True
            build = self.build(refreshed.snapshot)
            deferred, build.deferred = build.deferred, {}
            build.report["pages_pending"] = len(deferred) + build.report["placed"]
            # Parse results wait for the pages' first build when there is one, each with the items row it is stored
            # as: this build's, which puts the very article it was read as.
            parsed, refs = self._parsed + build.parsed, self._parsed_refs + self._refs(build.parsed, build.items)
            (build.parsed, build.parsed_refs), later_parsed = (([], []), (parsed, refs)) if deferred else ((parsed, refs), ([], []))
            recode = {path: found for path, found in self._recode.items() if path not in build.resources}
            recode.update(build.recode)
            later = {path: found for path, found in self._later.items() if path not in build.gone["resources"] and path not in build.resources}
            later.update(build.later)
            previews = {path: found for path, found in self._previews.items() if preview_key(path) not in build.gone["resources"]}
            previews.update(build.previews)
            build.dated = self._dated = _dated(refreshed, self._dated)
            try:
                version = self.writer.commit(build, datetime.now(timezone.utc))
            except BaseException:
                self._synced = False  # compare everything with the store next time
                raise
            finally:
                if self.parsed is not None:
                    self.parsed.landed(build.parsed)
            if not refreshed.snapshot.partial:  # a feeds-first build's listings and items come with its pages' build
                self._dated = None
            self.behind = False
            self.written = build.rows_written()
            self._deferred, self._report, self._recode, self._later = deferred, build.report, recode, later
            self._parsed, self._parsed_refs = later_parsed
            self._previews = previews
            self._remember(refreshed.snapshot)
            self._release()
            self._give_back(build)
            if self.reader is not None:
                self.reader.current(force=True)  # this process's own requests see it at once
            log.debug("build %d committed: %d resources, %d listings, %d items changed, %d article pages to follow", version,
                      len(build.resources), len(build.listings), len(build.items), len(deferred))
            if (deferred or recode or later or previews) and not self._finishing:
                self._finishing = True
                finisher = threading.Thread(target=self.finish, name="background-builds", daemon=True)
                finisher.start()
                self._finisher = finisher  # started: idle() and wait() may join it

    @contextlib.contextmanager
    def _committing(self):
        """A refresh's commit: the lock, with this thread named as the one in it. A SIGTERM handler runs on the main
        thread between two of its bytecodes, and there it cannot wait for the commit it stopped in the middle (the
        parse results it leaves to the background not handed on yet): it asks for the end instead (on_sigterm), which
        comes here, once the commit is done."""
        # Named before the lock is taken: a SIGTERM that comes while this thread waits for it, or the moment it has it,
        # is asked to end the process after this commit too; handled as if no commit ran, land() found no parse results
        # yet (the first build's) or waited for a background build this thread's lock held up, and the end lost them.
        self._holder = threading.get_ident()
        try:
            with self._lock:
                yield
        finally:
            self._holder = None
            if _TERM_ASKED.is_set() and threading.current_thread() is threading.main_thread():
                land_at_exit()
                _end()

    def finish(self) -> None:
        """(the background thread) _finish(); if it fails, what is left waits for the next refresh's build."""
        try:
            self._finish()
        except Exception:  # the edge where work must go on
            log.exception("the background builds (article pages, codings) stopped")
            with self._lock:
                self._stopped()

    def _stopped(self) -> None:
        """A background build failed (called with the lock held): what is left stays, for the next refresh's build,
        which compares every row with the store and starts another thread (behind: even if nothing changed);
        meanwhile a serving process makes a missing coding itself, and renders a missing article page."""
        self.behind, self._synced, self._finishing = True, False, False

    def _finish(self) -> None:
        """Commit what the builds of refreshes left for later, in builds of their own until none is left: the
        article pages past FIRST_PAGES (PAGES_PER_BUILD to a build), and OTHERS_PER_BUILD each of the codings of the
        rows committed without them, the sitemaps left out of a refresh's build and the feeds' pages for browsers.
        Each build's bytes are let go of once committed, so the builder never holds a cold start's codings or pages
        all at once; a refresh commits between two of them.

        The parse results a refresh left (a cold start's) go first, in a build of their own: a restart a moment later
        (a deploy) then places every file from the store instead of reading the folder again."""
        with self._lock:
            if self._parsed and self._commit_left(Build(dict(self._report), parsed=self._parsed, parsed_refs=self._parsed_refs),
                                                  "parse results") is None:
                return
        while True:
            with self._lock:
                recode, later, previews = (dict(itertools.islice(left.items(), OTHERS_PER_BUILD))
                                           for left in (self._recode, self._later, self._previews))
                if not (recode or later or previews or self._deferred):
                    self._finishing = False
                    return
            # Made outside the lock: a refresh (a saved file) commits meanwhile instead of waiting for them. A row
            # committed without its codings is read back from the store (its bytes released once committed); one a
            # refresh replaced meanwhile (LookupError) is no longer asked for.
            coded = {}
            for path, (res, _) in (*recode.items(), *later.items()):
                with contextlib.suppress(LookupError):
                    coded[path] = (res.coded("gzip"), res.coded("br"))
            pages = {path: (found, row) for path, found in previews.items()
                     for row in _previews({path: found}, self.publisher.site).values()}
            with self._lock:
                for taken, held in ((recode, self._recode), (later, self._later)):
                    for path, found in taken.items():
                        if path not in coded and held.get(path) is found:
                            del held[path]  # its row holds other bytes now (or none): nothing of these to code
                paths = list(self._deferred)[:PAGES_PER_BUILD]
                chunk = {path: self._deferred[path] for path in paths}
                # Only what is still as it was taken: a refresh may have replaced (or dropped) any of it meanwhile.
                recode = {path: found for path, found in recode.items() if self._recode.get(path) is found and path in coded}
                later = {path: found for path, found in later.items() if self._later.get(path) is found and path in coded}
                pages = {path: found for path, found in pages.items() if self._previews.get(path) is found[0]}
                build = Build(dict(self._report, pages_pending=len(self._deferred) - len(paths) + self._report.get("placed", 0)),
                              parsed=self._parsed, parsed_refs=self._parsed_refs)
                build.codings = {path: (made, *coded[path]) for path, (_, made) in recode.items()}
                build.resources.update((path, resource_row(res, made, coded=True)) for path, (res, made) in later.items())
                build.resources.update((preview_key(path), row) for path, (_, row) in pages.items())
                version = self._commit_left(build, "article pages, codings", lambda: self._render_pages(
                    build, {path: (entry, self._made_from(*entry)) for path, entry in chunk.items()}))
                if version is None:
                    return
                for taken, held in ((recode, self._recode), (later, self._later), (pages, self._previews)):
                    for path in taken:
                        del held[path]
                for path in paths:
                    del self._deferred[path]
                self._pages = {**self._pages, **chunk}
                self._report = build.report
                self._release()
                self._give_back(build)
                if self.reader is not None:
                    self.reader.current(force=True)
                log.debug("build %d committed: %d article pages (%d to follow), the codings of %d resources, %d sitemaps, "
                          "%d feeds' pages for browsers", version, len(paths), len(self._deferred), len(recode), len(later), len(pages))

    def _commit_left(self, build: Build, what: str, make: Callable[[], None] | None = None) -> int | None:
        """(the background thread, with the lock held) Make the rest of a build (make), commit it with the parse
        results left, and return its version; None when that failed: what is left stays for the next refresh."""
        try:
            if make is not None:
                make()
            version = self.writer.commit(build, datetime.now(timezone.utc))
        except Exception:  # the edge where work must go on: the next refresh's build starts them again
            log.exception("a background build (%s) could not be committed to the store", what)
            self._stopped()
            return None
        if self.parsed is not None:
            self.parsed.landed(build.parsed)
        self._parsed, self._parsed_refs = [], []
        log.debug("background build %d committed: %s", version, what)
        return version

    def _release(self) -> None:
        """Let go of the bytes of every committed resource the store holds as they are, those still to code too
        (finish reads them back); not the sitemaps left for a later build. Called with the lock held, after a commit."""
        if not self.release:
            return
        pending = {id(found[0]) for found in self._later.values()}
        resource = self.reader.resource
        for path, res in self._plain.items():
            if res._body is not None and id(res) not in pending:
                res.release(lambda path=path: resource(path))

    def _give_back(self, build: Build) -> None:
        """After a commit and its release, the memory freed goes back to the system now, not at the next build
        (allocator.trim); once every file is read and no article page waits, only after a big build (TRIM_FROM), else
        at the first refresh that changes nothing (the next scheduled one, at the latest)."""
        if self.publisher.scanner.placed or self._deferred or build.bytes_put() >= TRIM_FROM:
            self._kept_freed = False
            allocator.trim()
        else:
            self._kept_freed = True

    def land(self, timeout: float) -> bool:
        """Wait, at most timeout seconds, for the parse results a refresh left to the background builds (a cold start's
        placements) to be committed; whether none is left. A process stopped a moment after its first build (a deploy,
        serve_ready.py half a second after the feeds answer) then leaves them in the store, and its restart places every
        file from there instead of reading the folder again."""
        deadline = time.monotonic() + timeout
        if self._holder not in (None, threading.get_ident()) and self._lock.acquire(timeout=timeout):
            self._lock.release()  # a refresh's commit on another thread (the schedule's) has handed its results on
        while self._parsed and self._finisher is not None and self._finisher.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._parsed

    def idle(self, timeout: float | None = None) -> bool:
        """(Publisher.backlogs) Wait up to timeout for the background builds; True once none is running. What a
        failed one left waits for the next refresh's build, which the background reading's own commits bring."""
        thread = self._finisher
        if thread is not None:
            thread.join(timeout)
        return not self._finishing

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background article pages and codings; True when none are left (tests, tools)."""
        self.idle(timeout)
        return not self._deferred and not self._recode and not self._later and not self._previews

    def build(self, snap) -> Build:
        """The rows of this snapshot that the store does not hold yet, and those it holds no more.

        Past FIRST_PAGES new article pages, those are left out of the rows and named in `deferred`.
        """
        site, writer = self.publisher.site, self.writer
        # A whole comparison at first, and whenever another writer committed since this one (a second builder
        # on the same store in a test or tool): then every row the store holds is read (held()).
        whole = not self._synced or (writer.conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0) != writer.version
        held = self._held() if whole else None
        report = {"articles": len(snap.articles), "feeds": len(snap.feeds), "skipped": len(snap.skipped),
                  "built_at": snap.built_at.isoformat() if snap.built_at else None,
                  "files_read": self.parsed.read if self.parsed else None,
                  "made_by": self.made_by,  # the code and settings its rows were made by (export.py keys archive pages by it)
                  "site_url": site.url, "rebase_key": self.rebase_key,  # what a builder at another URL republishes (rebase.py)
                  "variants": self.variant_settings,  # the rest of what its archive pages are made with (VARIANT_SETTINGS)
                  # Feeds first (Publisher.feeds_first): pages and sitemaps to come, a miss is not a 404 (web.py).
                  "partial": snap.partial}
        build = Build(report)
        unread = self.publisher.scanner.placed  # placed only so far: their items and pages come once read
        pages = getattr(snap.resources, "pages", {})  # article pages: path → (article, its links); none in a plain map
        ready = getattr(snap.resources, "ready", None)  # every other resource
        if ready is None:
            ready = {path: snap.resources[path] for path in snap.resources if path not in pages}
        feeds = {feed.path(fmt) for feed in snap.feeds for fmt in FORMATS}
        if whole:
            plain_paths, page_paths = list(ready), list(pages)
        else:  # only what this refresh made anew: objects that are not those last committed
            plain_paths, page_paths = _changed(self._plain, ready), _changed(self._pages, pages)
        preview_paths = [path for path in plain_paths if path in feeds]
        # An article placed only (is_placed: no language yet) whose file is not read yet has its page and item put once
        # read. Its `lang` looked at first, then the scanner's own set, in C: not two calls an article (100,000 after a
        # cold start's scan, 53 ms against 21).
        waiting = unread.sources if unread else ()
        page_paths = [path for path in page_paths if (a := pages[path][0]).lang or a.source not in waiting]
        placed = (len(pages) - len(page_paths) if whole else sum(1 for a, _ in pages.values() if not a.lang and a.source in waiting)) if waiting else 0
        have = held["resources"] if whole else writer.made_hashes("resources", [*plain_paths, *page_paths, *map(preview_key, preview_paths)])
        plain = {}  # the resources to put, but article pages
        # Rows the store holds as they are but without their codings: a builder stopped before its background made
        # them (a cold start commits its feeds first, coded after) left them so, and nothing else would code them
        # until they change; each request for one in gzip or brotli would make it. Coded in the background.
        heal, uncoded = {}, writer.uncoded(plain_paths) if whole else ()
        made_of = self.publisher.renderer.made_of
        for path in plain_paths:
            res = ready[path]
            made = f"{made_of(path)} {validators_of(res)}"
            if have.get(path) != made_hash(made):
                plain[path] = (res, made)
            elif path in uncoded:
                heal[path] = (res, made)
        previews = {}  # feed path → made_from of its page for browsers, for those the store does not hold
        for path in preview_paths:
            made = validators_of(ready[path]) + repr(site)
            if have.get(preview_key(path)) != made_hash(made):
                previews[path] = made
        # The pages to put, as their entries alone: their made_from is made again for those rendered now (FIRST_PAGES at
        # most), not held for every one (a restart at a new URL or after an upgrade puts all; 100,000 of those texts were
        # 35 MB more at the peak of its first build).
        todo = {path: entry for path in page_paths for entry in [pages[path]] if have.get(path) != made_hash(self._made_from(*entry))}
        if len(todo) > FIRST_PAGES:
            # The feeds first: their gzip and brotli bodies (a second at 10,000 articles) come with the pages'
            # first build; a serving process asked for a coding meanwhile makes it itself.
            # The feeds' pages for browsers too (a second at 10,000 articles): a browser gets the feed meanwhile.
            build.deferred, build.recode = todo, plain
            build.resources.update((path, resource_row(res, made, coded=False)) for path, (res, made) in plain.items())
            build.previews = {path: (snap, made) for path, made in previews.items()}
        else:
            # Codings already made (those of a file that did not change) go with the row; the others are made after
            # the commit (finish).
            # The sitemaps (1.3 MB at 10,000 articles) are left for that build too: no feed waits for them.
            # A builder's first build (a start) commits everything with its codings, in one build, as it always did.
            # Not a sitemap the store has none of (the one after a deployment's feeds-first build): a 404 meanwhile.
            build.later = {path: found for path, found in plain.items() if not whole and is_sitemap(path) and path in have}
            if whole:  # a start's or a `feedsvc build`'s first build: every coding now, on two threads
                _code_all([res for path, (res, _) in plain.items() if path not in build.later])
            build.resources.update((path, resource_row(res, made, coded=True if whole else None)) for path, (res, made) in plain.items() if path not in build.later)
            build.recode = {path: found for path, found in plain.items()
                            if not whole and len(found[0]._coded) < 2 and path not in build.later}
            self._render_pages(build, {path: (entry, self._made_from(*entry)) for path, entry in todo.items()})
            if whole:  # a start: everything in one build
                build.resources.update(_previews({path: (snap, made) for path, made in previews.items()}, site))
            else:  # the feeds' pages for browsers after the feeds too (a browser gets the feed meanwhile)
                build.previews = {path: (snap, made) for path, made in previews.items()}
        if heal:
            build.recode = {**build.recode, **heal}
        build.report["placed"] = placed
        preview_keys = {preview_key(path) for path in feeds}
        if whole:
            build.gone["resources"] = {p for p in have if p not in snap.resources and p not in preview_keys}
        else:
            build.gone["resources"] = (self._plain.keys() - ready.keys()) | (self._pages.keys() - pages.keys()) | (self._preview_keys - preview_keys)
        if not snap.partial:  # a feeds-first build's listing rows and items come with its pages (site.py _complete)
            self._listing_rows(build, snap, held["listings"] if whole else None)
            ids = list(snap.articles) if whole else _changed(self._items, snap.articles)
            ids = [id_ for id_ in ids if (a := snap.articles[id_]).lang or a.source not in waiting]
            items = held["items"] if whole else writer.made_hashes("items", ids)
            for id_ in ids:
                article = snap.articles[id_]
                made = self._item_made_from(article)
                if items.get(id_) != made_hash(made):
                    full = self.publisher.load_full(article)  # the builder holds most articles as placements
                    if full is not None:
                        build.items[id_] = (full, made)
            build.gone["items"] = (set(items) if whole else self._items.keys()) - snap.articles.keys()
        build.parsed = self.parsed.take() if self.parsed else []  # last: the articles above found them in it
        return build

    @staticmethod
    def _refs(rows: list[tuple], items: Mapping[str, tuple]) -> list[ItemRef | None]:
        """For each parse result row, the ItemRef it is stored as where the build's items row for it (items: id →
        (Article or its pickle, made_from)) is the article as read but for its dates, else None (stored whole)."""
        refs: list[ItemRef | None] = []
        if not items:  # a feeds-first build's 100,000 placements: none has an items row
            return [None] * len(rows)
        for row in rows:
            result = row[5]
            entry = items.get(result.id) if type(result) is Article else None
            item = entry[0] if entry is not None else None
            same = type(item) is Article and dated(item, result.published, result.updated) == result
            refs.append(ItemRef(result.id, entry[1], result.published, result.updated) if same else None)
        return refs

    def _held(self) -> dict[str, dict[str, int]]:
        """writer.held(): the rows read ahead (held_ahead) when no build was committed since, else read now."""
        ahead, self.held_ahead = self.held_ahead, None
        found = ahead() if ahead is not None else None
        latest = self.writer.conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0
        return found[1] if found is not None and found[0] == latest else self.writer.held()

    def stored_body(self, path: str) -> bytes | None:
        """(Sitemaps.stored) The bytes the store holds at path, read as seed() reads."""
        row = self._peek().execute("SELECT body FROM resources WHERE path = ?", (path,)).fetchone()
        return None if row is None else bytes(row[0])

    def _peek(self) -> sqlite3.Connection:
        """A read-only connection for the refresh's own reads of the store (seed, stored_body), not the writer's.

        The refresh reads inside the state store's write transaction (site.py), which holds the file's write lock; the
        background builds (finish) wait for that lock inside the writer's connection, and SQLite holds a connection's
        mutex while it waits (https://www.sqlite.org/threadsafe.html), so a read through it waited for them: a cold
        start's pages, rendered right after its first commit, stood still for the busy timeout (30 s) and the
        background build failed. A reader in WAL mode waits for no writer."""
        if self._peeking is None:
            self._peeking = connect(self.writer.path, readonly=True)
        return self._peeking

    def seed(self, keys: Mapping[str, Any], digest_of: Callable[[Any], str]) -> dict[str, tuple]:
        """(Renderer.seed) path → (Rendered, undated digest) of the stored resources at these paths made from the
        same key (path → key; digest_of(key): its digest, Renderer.made_of): a fresh process's first render takes
        them over instead of rendering them again. Read from the rows committed now (_peek); a key is
        digested only where a row is stored (a cold start digests none). Each is taken as its row's validators, its
        bytes and codings read from the store only if they are asked for (a restart holds none of them)."""
        conn, paths, found = self._peek(), list(keys), {}
        reader = self.reader if self.reader is not None else StoreReader(self.writer.path)
        for path, made, *row in rows_for(conn, "SELECT path, made_from, etag, media_type, last_modified, max_age, headers "
                                               "FROM resources WHERE path IN ({marks})", paths):
            of, _, rest = made.partition(" ")
            key, _, digest = of.partition(":")
            if digest and key == digest_of(keys[path]):
                res = reader.from_row(path, *row)
                if validators_of(res) == rest:  # else not the row it says it is: rendered anew
                    found[path] = (res, digest)
        return found

    def _listing_rows(self, build: Build, snap, held: dict | None) -> None:
        """Each changed listing's head and the item rows that moved (all of them when the store's are not known).

        A listing row's made_from is its head's digest, its size, the listing's digest (versions.py: each item's
        ID, content and dates, which make its row) and its archive pages' times: a whole comparison hashes no item.
        """
        committed, made_now = ({} if held is not None else self._listings), {}  # whole: every row compared with the store
        digests = self.publisher.versions.digests
        for key, listing in snap.listings.items():
            changed = (snap.changed[key], snap.pages.get(key, ()))  # the listing's time and its archive pages'
            previous = committed.get(key)
            if previous is not None and previous[0] is listing and previous[1] == changed:
                made_now[key] = previous
                continue
            head = ListingHead(key, listing.title, listing.description, listing.category, listing.page_url, changed[0], listing.deleted,
                               listing.cuts)
            blob = pickle.dumps(head, protocol=5)
            made_now[key] = (listing, changed)
            times = changed[1]
            made = (f"{hashlib.sha256(blob).hexdigest()[:32]} {len(listing.items)} {digests[key]} "
                    f"{short_digest(repr(times))}")
            if held is not None and held.get(key) == made_hash(made):
                continue
            if previous is not None and previous[0] is listing:  # the same items, dated anew
                whole, gone, rows = False, [], []
            elif previous is not None:
                left, came = ((listing.left, listing.came) if listing.since == id(previous[0])
                              else _moved(previous[0].items, listing.items))
                whole, gone, rows = False, [item_row(a)[:2] for a in left], ItemRows(came)
            else:
                whole, gone, rows = True, [], ItemRows(listing.items)
            build.listings[key] = (blob, len(listing.items), made)
            build.listing_items[key] = (whole, gone, rows)
            had = previous[1][1] if previous is not None else ()  # the archive pages' times committed (none: put all)
            page_digests = self.publisher.versions.page_digests(key)
            build.listing_pages[key] = (len(times), [(at + 2, when.isoformat(), page_digests[at]) for at, when in enumerate(times)
                                                     if at >= len(had) or had[at] != when])
        build.gone["listings"] = (set(held) if held is not None else committed.keys()) - snap.listings.keys()
        self._next_listings = made_now

    def _render_pages(self, build: Build, todo: dict) -> None:
        """Article pages rendered as Renderer would on a request, dated by the state store in one call."""
        from ..formats.pages import render_article
        from ..resource import Rendered

        if not todo:
            return
        site, full = self.publisher.site, self.publisher.load_full
        bodies = {}
        for path, (key, _) in todo.items():
            article = full(key[0])  # the builder holds most articles as placements: the parse store has the rest
            if article is not None:  # None: its file changed since; the next refresh reads it and its page comes then
                bodies[path] = render_article(article, key[1], site)[0]
        digests = {path: hashlib.sha256(body).hexdigest() for path, body in bodies.items()}
        times = self.publisher.renderer.versions(digests)
        for path, body in bodies.items():
            build.resources[path] = resource_row(Rendered(body, HTML_TYPE, times[path], precompress=False, digest=digests[path]), todo[path][1])

    def _made_from(self, article, categories: tuple = (), by: str | None = None) -> str:
        # Timestamps, no hash: a fresh process compares 20,000 of these at 10,000 articles (2.5 → 1 µs each).
        return (f"{by or self.made_by} {article.content_hash} {article.published.timestamp()} {article.updated.timestamp()} "
                f"{article.id} {article.source!r} {categories!r}")

    def _item_made_from(self, article) -> str:
        """What a stored item is made from: _made_from's, with the site only for an article that names it."""
        return self._made_from(article, by=None if names_site(article.source, article) else self.read_by)

    def _remember(self, snap) -> None:
        """What this build committed, kept by reference (the refresh's own maps, never changed after it)."""
        deferred = self._deferred
        pages = getattr(snap.resources, "pages", {})
        self._pages = {path: entry for path, entry in pages.items() if path not in deferred} if deferred else pages
        self._plain = getattr(snap.resources, "ready", snap.resources)
        self._preview_keys = {preview_key(feed.path(fmt)) for feed in snap.feeds for fmt in FORMATS}
        self._listings, self._next_listings = self._next_listings, {}
        self._items = {} if snap.partial else snap.articles  # a feeds-first build committed none (build)
        self._synced = True


_COMMITTERS: "weakref.WeakSet[Committer]" = weakref.WeakSet()  # this process's, for land_at_exit
_TERM_ASKED = threading.Event()  # a SIGTERM came in the middle of a refresh's commit on the main thread (on_sigterm)


def on_sigterm(*_) -> None:
    """The dedicated builder's SIGTERM: land the parse results (land_at_exit), then end. In the middle of a refresh's
    commit on this very thread (the first build runs on the main thread), the end is asked for and comes as that
    commit ends (Committer._committing): waiting here for what it has not handed on yet would wait for ever."""
    here = threading.get_ident()
    if any(committer._holder == here for committer in list(_COMMITTERS)):
        _TERM_ASKED.set()
        return
    # Anywhere else, this thread may be in the middle of a state store transaction (a refresh's stamps, a first build's
    # pages' dates and what its listings carry), whose write lock the background build that lands the parse results
    # waits for: waited for here, that build could land nothing until the wait gave up (LAND_WITHIN_S), and the end
    # lost them. The landing is waited for on a thread of its own, which ends the process, while this one goes on.
    threading.Thread(target=_land_then_end, name="ending", daemon=True).start()


def _land_then_end() -> None:
    """(a thread of its own, on_sigterm) Let the parse results land, then end the dedicated builder."""
    land_at_exit()
    _end()


def _end() -> None:
    """End the dedicated builder now, its output flushed (as children.fork ends it). Not by raising SystemExit: the
    handler runs wherever the main thread is, also inside a finalizer or an import's module-lock callback, where Python
    prints what is raised and goes on ("Exception ignored in: …"), and the builder then ran on for good, holding the
    build lock, after its master was killed (seen with the SIGTERM of PR_SET_PDEATHSIG)."""
    flush_output()  # where there is an output: started with it closed (`>&-`), Python has None
    os._exit(0)


@atexit.register
def land_at_exit() -> None:
    """Before this process ends, let each committer's parse results land (Committer.land): called by the interpreter's
    exit (a gunicorn worker that builds), and by the dedicated builder's SIGTERM (build_forever), which ends with
    os._exit (children.fork) and so runs no atexit function."""
    for committer in list(_COMMITTERS):
        committer.land(LAND_WITHIN_S)



def _dated(refreshed, before: datetime | None) -> datetime | None:
    """The earliest time anything a refresh's build shows anew is dated at, for ?since= deltas (store.StoreReader.landed_after):
    its start (a new file is first seen then, an edit and a deletion recorded then, a tombstone dated to that second), or
    the earliest embargo it may have ended (the one its previous refresh still held back: ended while that refresh ran,
    it is dated seconds before this one started); `before`: the same of refreshes not committed yet (a commit failed)."""
    times = (refreshed.snapshot.built_at, refreshed.previous.next_release, before)
    return min((t for t in times if t is not None), default=None)


def _changed(committed: Mapping, now: Mapping) -> list:
    """The keys of `now` whose value is not the very object committed under that key (a C loop, no Python one)."""
    keys = list(now)
    return list(compress(keys, map(is_not, map(committed.get, keys), now.values())))


def _moved(before: tuple, after: tuple) -> tuple[list, list]:
    """The items that left a listing and those that came, by identity."""
    had, has = set(map(id, before)), set(map(id, after))
    return (list(compress(before, map(not_, map(has.__contains__, map(id, before))))),
            list(compress(after, map(not_, map(had.__contains__, map(id, after))))))


def _previews(previews: dict, site) -> dict:
    """Rows of the feeds' pages for browsers (preview.py) by their store key (urls.preview_key), from
    {feed path: (snapshot, made_from)}: not kept in preview_page's cache, which is for a process that serves them
    (the builder only commits them: 2.2 MiB held for nothing at 10,000 articles)."""
    from ..preview import preview_page

    return {preview_key(path): resource_row(preview_page(snap, site, path, keep=False), made) for path, (snap, made) in previews.items()}


def _code_all(resources: list) -> None:
    """Both codings of each resource made now, on two threads: zlib and brotli let go of the GIL while they
    compress, so a build's second core takes half (the changed feeds of a one-file `feedsvc build`: ~0.1 s)."""
    jobs = [(res, coding) for res in resources for coding in ("gzip", "br") if coding not in res._coded]
    if len(jobs) > 1:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda job: job[0].coded(job[1]), jobs))  # the bytes stay with each resource

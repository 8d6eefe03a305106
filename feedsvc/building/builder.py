"""The process that builds, and how it becomes the builder.

Exactly one process per deployment builds: the one holding the build lock (building/lock.py). It runs the scheduler,
the watcher and the refreshes, and commits each refresh's result to the build store (building/committer.py, an
observer of the Publisher). `feedsvc serve` forks a dedicated builder process (spawn) before its workers, so workers
stay thin; a serving process that wins the lock later (the builder died) builds from here.
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import allocator
from ..children import Forked, fork
from ..search import SearchIndexer
from ..store import PARSED_LAYOUT, StoreReader, code_version, has_build, package_version, short_digest
from .storewriter import Build, StoreWriter, resource_row, validators_of
from ..transactions import rows_for
from ..urls import article_path
from .lock import BuilderStatus, BuildLock, lock_path, status_of, status_path
from .rebase import MEDIA_TYPES, heads, in_first, moved_from, republished
from .state import StateStore, wait_for

log = logging.getLogger(__name__)

# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the builder's threads (the
# refresh, the background reading, the article pages) each free tens of MB in theirs that the others never reuse:
# at most ARENAS in the builder (allocator.arenas), and in the processes it starts (their environment).
ARENAS = 2
BUILDER_ENV = {"MALLOC_ARENA_MAX": str(ARENAS)}
# The cyclic collector's thresholds in a process that keeps an archive's worth of objects (the defaults are 700, 10,
# 10): `feedsvc build` for the whole build (cli.py), the serving builder in its first build and once every file is read
# in full (collect_less). A build
# keeps what it makes (every placement, the state's maps, the manifest) to its end, and the defaults walked that
# growing heap again and again: 500 collections, 0.1 s of a build with one file changed at 10,000 articles. A
# builder's refresh makes a few maps and tuples the size of the archive (the published articles by ID, the article
# pages, the listings), and a collection of the youngest generation that finds them there visits every item they
# hold, out of cache: at 100,000 articles 50-80 ms each, and the defaults ran one or two inside each one-file
# refresh (its home page took 60 ms instead of 7); at these, a one-file refresh makes too few objects to start one
# (none in ten refreshes). Not through a cold start's background reading: its cyclic garbage kept longer raised its
# peak at 10,000 articles from 148 to 175 MiB (9939ab4). Cycles are still collected.
ARCHIVE_GC_THRESHOLDS = (20_000, 10, 10)
# Blocks from which glibc maps each apart, at a fixed threshold (allocator.mmap_from), so that what a block held goes
# back to the system once freed: glibc's own starting value, which left to itself it raises to the largest block freed
# (up to 32 MiB), and the heap keeps the high-water mark of the biggest feeds, chunks of results and blobs the builder
# ever held. Kept fixed once the first build is done; in a cold start of MAP_APART_FROM files or more, from its walk on
# (map_apart): there the builder's first build holds its rows back (site.py Publisher._build), and its peak, in the
# background reading later on, is 386-389 MiB (seven starts): 401-402 MiB holding them without this, 391-397 MiB with
# neither. Not in a smaller cold start, whose peak is far from its line: at 10,000 articles its feeds answered 14-25 ms
# later, a mapping of its own, page faults and all, for each block of the first build's feeds and results.
MMAP_THRESHOLD = 128 << 10
MAP_APART_FROM = 50_000
REFRESHERS: list = []  # this process's schedulers, stopped when a gunicorn worker exits (serving.worker_exit)


# --- becoming the builder ---

def rebase_key(settings) -> str:
    """What every resource a builder publishes is made from but the site's URL: this package's files (its code,
    templates and static files) and every other setting. A build stored with the same key at another URL is
    republished at this one (rebase.py). Read from the files, not from imported modules: a restarted builder
    republishes before it imports what builds (run_builder), and everything it would republish is in the key."""
    return short_digest(f"{package_version()} {replace(settings, site_url='')!r}")


def republish(writer: StoreWriter, versions: StateStore, settings, reader: StoreReader | None = None) -> list[int]:
    """(a builder's start, before its first build) The stored build republished at this site's URL when it was made
    at another (rebase.py): the feed lists and the feeds they name in one build, then the other formats and the pages
    in a second. Dated by versions (the state store, as a render dates them); reader: this process's, told of each
    build. Returns the versions committed: none when it was made here, or cannot be moved."""
    conn, new = writer.conn, settings.site_url
    row = conn.execute("SELECT report FROM builds ORDER BY version DESC LIMIT 1").fetchone()
    old = moved_from(json.loads(row[0]) if row else None, new, rebase_key(settings))
    if old is None:
        return []
    # /healthz tells of each as of the build it republishes, but for the site and the files this builder read: none yet.
    report = {**json.loads(row[0]), "site_url": new, "files_read": 0}
    paths = conn.execute(f"SELECT path, media_type FROM resources WHERE media_type IN ({','.join('?' * len(MEDIA_TYPES))}) "
                         f"AND path NOT LIKE ?", (*MEDIA_TYPES, article_path("") + "%")).fetchall()
    listings = conn.execute("SELECT key, head, size, made_from FROM listings").fetchall()
    first = [path for path, media in paths if in_first(path, media)]
    rest = [path for path, media in paths if not in_first(path, media)]
    record = lambda digests: versions.record_versions(digests, datetime.now(timezone.utc))  # as Publisher's renderer
    one = lambda paths, heads_of, what: _republish(writer, record, reader, paths, old, new, report, heads_of, what)
    # A builder stopped between the two leaves a latest build at the new URL, so the next start republishes nothing:
    # its first build renders the rest there, as it renders everything.
    return ([one(first, listings, "feed lists and the feeds they name")]
            + ([one(rest, [], "other feeds and pages")] if rest else []))


def _republish(writer: StoreWriter, record, reader, paths: list[str], old: str, new: str, report: dict,
               listings: list[tuple], what: str) -> int:
    """One build of the stored resources at these paths and these listings' heads, rebased from old to new; its version."""
    rows = rows_for(writer.conn, "SELECT path, media_type, last_modified, max_age, headers, body FROM resources "
                                 "WHERE path IN ({marks})", paths)
    found = republished(rows, old, new, record)
    del rows
    # Rows no render's made_from matches (made_of ""), without codings: the first build puts its own, with the same
    # bytes; a serving process asked for a coding meanwhile makes it.
    build = Build(report, {path: resource_row(res, f" {validators_of(res)}", coded=False) for path, res in found.items()},
                  heads(listings, old, new))
    # Served once its time has come, as a refresh's (site.py): a version dated a second ahead (a restart within a
    # second of the last) never has a Last-Modified later than the response's Date.
    latest = max((res.last_modified for res in found.values()), default=None)
    if waited := wait_for(latest, datetime.now(timezone.utc)):
        time.sleep(waited)
    version = writer.commit(build, datetime.now(timezone.utc))  # checkpointed beside (storewriter.Checkpoints)
    if reader is not None:
        reader.current(force=True)
    log.info("build %d: the last build's %d %s republished at %s (they were made at %s)", version, len(build.resources),
             what, new, old)
    return version


def start_building(app, commit: bool = True, release: bool = False, search: bool = True,
                   writer: StoreWriter | None = None, state: StateStore | None = None):
    """Make this process's Publisher and wire it to the store, WebSub and metrics; returns it (nothing runs yet).

    commit=False: nothing is written to the build store; the Publisher keeps and compresses its own snapshot (tests).
    release: the process holds the build lock, so what it committed is in the store as it left it: it keeps no
    copy of the committed bytes (Rendered.release).
    search=False: the search index is left to the server that answers searches (`feedsvc build`: an export holds
    none; that server's builder indexes what the store's build holds, search.py).
    writer, state: the build store's writer and the state store, when the caller opened them (run_builder's republish).
    """
    from ..reading import articles, chrome, folder, frontmatter, markup, scan, text
    from . import feeds, render
    from .. import model
    from .. import VARIANT_SETTINGS
    from ..formats import pages
    from ..reading.articles import Options
    from .committer import Committer
    from .parsed import ParsedCache
    from .site import FeedOptions, Publisher, compress_fresh

    settings, path = app.extensions["feedsvc.settings"], app.extensions["feedsvc.state_path"]
    pages.keep_compiled(path)  # the pages' templates, compiled once for the deployment
    options = Options.from_settings(settings)
    reading = code_version(articles, chrome, folder, frontmatter, markup, model, scan, text)
    # Two hashes of the reading options: without the site's URL for what does not name it (ParsedCache).
    parsed = ParsedCache(path, f"{reading} {PARSED_LAYOUT}", short_digest(repr(replace(options, site_url=""))),
                         short_digest(repr(options))) if commit else None
    # A process that commits codes what it commits in the Committer's background builds, a batch at a time: no
    # thread beside it codes every fresh feed at once (a cold start's hundred feeds, 27 MB).
    publisher = Publisher(FeedOptions.from_settings(settings), state or StateStore(path), parsed=parsed, place=commit)
    if commit:
        templates = "".join(sorted(p.read_text(encoding="utf-8") for p in (Path(pages.__file__).parents[1] / "templates").iterdir()))
        made_by = f"{reading} {parsed.settings_hash} {code_version(feeds, pages, render)} {hashlib.sha256(templates.encode()).hexdigest()}"
        from ..formats import atom, content, fragments, jsonfeed, ondemand, opml, rss, templates as item_templates
        from .. import resource, urls
        # What a first render takes over the stored feeds and pages by (Renderer.seed), besides their keys: this code
        # (the formats' too) and these settings.
        origin = (f"{made_by} {code_version(atom, content, fragments, jsonfeed, ondemand, opml, rss, item_templates, resource, urls)} "
                  f"{publisher.renderer.archive_max_age!r}")
        committer = Committer(writer or StoreWriter(path), publisher, parsed, app.extensions["feedsvc.store"], made_by,
                              release, rebase_key=rebase_key(settings),
                              variant_settings={name: getattr(settings, name) for name in VARIANT_SETTINGS})
        if committer.release:  # nor its feeds' items: a refresh cuts those it needs from the stored feeds
            publisher.renderer.let_go()
            publisher.build_alone()  # and it holds the build lock: no other process dates what it renders
            # A deployment's first build (no stored build to serve meanwhile): its feeds before its pages (site.py).
            publisher.feeds_first = not has_build(path)
        publisher.observers.append(committer)
        publisher.committers.append(committer)  # and before its pages, a feeds-first refresh's feeds (site.py)
        if committer.release:  # a builder that lives on; after the committer: its first build's commit collects less too
            publisher.observers.append(collect_less(publisher))
        publisher.backlogs.append(committer.idle)
        publisher.renderer.origin = f"{origin} {publisher.site!r}"
        publisher.renderer.seed = committer.seed
        # and the sitemaps' entries of the articles as they are (building/sitemaps.py), from the files as stored.
        publisher.renderer.sitemaps.stored = committer.stored_body
        if search:
            publisher.observers.append(app.extensions.setdefault("feedsvc.indexer", SearchIndexer(path, publisher.read_full, publisher.not_read_yet, f"{reading} {parsed.settings_hash}")).observe)  # search.py
    else:  # no store to commit and code them: its own snapshot's new feeds compressed beside each refresh, first
        publisher.observers.append(compress_fresh)
    if "feedsvc.metrics" in app.extensions:
        publisher.observers.append(app.extensions["feedsvc.metrics"].observe_refresh)
    if "feedsvc.websub" in app.extensions:
        publisher.listeners.append(app.extensions["feedsvc.websub"].notify)
        if commit:  # a restart tells the hub only of feeds whose bytes differ from those the store served
            reader = app.extensions["feedsvc.store"]
            publisher.served_before = lambda path: getattr(reader.resource(path), "etag", None)
    app.extensions["feedsvc"] = publisher
    # This process's own status, as of now, for its /healthz (serving/web.py), instead of the file the builder writes.
    app.extensions["feedsvc.own_status"] = lambda: {**status_of(publisher), "heard": 0.0}
    if commit:
        app.extensions["feedsvc.committer"] = committer
    return publisher


def run_builder(app) -> Any:
    """Build now, then keep building on a schedule and on file changes; this process must hold the lock."""
    # The language model is not loaded ahead: it loads with the first file that needs it (feedsvc/reading/text.py),
    # and a first scan's reading workers (feedsvc/reading/pool.py) load their own.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    settings, path = app.extensions["feedsvc.settings"], app.extensions["feedsvc.state_path"]
    # A deployment's first build (a cold start) with the cyclic collector off, on again once it is done. What it makes (every
    # placement, the state's maps, the listings) lives on, and what it drops reference counting frees: its collections
    # found next to nothing (22 to 164 objects each) and took 375 ms of the 5.1 s to a 100,000-article cold start's feeds
    # in process (88 collections; 31 ms at 10,000), on its one busy core. The background reading after it collects as
    # before (collect_less): its cyclic garbage is what raised a peak (9939ab4).
    collecting = gc.isenabled() and not has_build(path)
    if collecting:
        gc.disable()
    try:
        return _run_builder(app, settings, path)
    finally:
        if collecting:
            gc.enable()


def _run_builder(app, settings, path: str) -> Any:
    writer, state = StoreWriter(path), StateStore(path)
    try:  # a deployment moved to another URL: the last build there first, before reading anything (rebase.py), and
        # before importing the modules that read and render (0.05-0.1 s of a restart's start on two busy cores)
        republish(writer, state, settings, app.extensions["feedsvc.store"])
    except Exception:  # the edge where work must go on: the first build renders it all at the new URL anyway
        log.exception("the last build could not be republished at %s; the first build renders it there", settings.site_url)
    publisher = start_building(app, release=True, writer=writer, state=state)
    ahead = app.extensions.pop("feedsvc.read_ahead", None)
    if ahead is not None:  # build_forever's cold start: its walk, and the files read from it, for the first scan
        publisher.scanner.ahead, publisher.scanner.read_ahead = ahead.walk, ahead
    from .scheduler import Refresher  # (watchdog) here, not on the way to the republish
    status = BuilderStatus(status_path(path))
    publisher.last_success = last_success(status, app.extensions["feedsvc.store"])
    from .statefile import StateFile  # here: the serving master imports this module, never this step

    status.beat(publisher, app.extensions.get("feedsvc.lock"), StateFile(path))
    publisher.observers.append(lambda refreshed: status.written(publisher, finished=True))  # with the build it tells of, not up to a beat later
    watch = publisher.root if settings.watch else None
    # Watch first, then build: a file saved while the first build runs is not missed. The schedule after it. A first
    # scan walked ahead is walked again right after (Scanner.rewalk): its watch is set as the first build ends.
    refresher = Refresher(publisher.refresh, publisher.next_wakeup, settings.refresh_seconds, watch).start(
        watch_after_run=ahead is not None)
    app.extensions["feedsvc.refresher"] = refresher
    REFRESHERS.append(refresher)
    refresher.run()  # the first build; the reading workers started ahead (main) go once nothing is left to read
    if (notifier := app.extensions.get("feedsvc.websub")) is not None:
        notifier.keep_in(path)  # and the pings a process before this one (or a build) left unsent
    # After it, not before: a mapping of its own for each of the first build's big blocks cost it 0.1-0.2 s of CPU
    # (page faults), and its peak is below the background builds' that follow.
    allocator.mmap_from(MMAP_THRESHOLD)  # every big block a mapping of its own: given back once freed
    return refresher


def last_success(status: BuilderStatus, store) -> datetime | None:
    """The deployment's last successful refresh, which a restarted builder reports until its own first one: the site
    serves the stored build meanwhile, so /healthz must not call it stale (a restart whose first refresh waits on a
    locked state file, or walks 100,000 files, would be taken out of a load balancer). None without a stored build."""
    before = status.read()
    if store.build() is None or not before or not before.get("last_success"):
        return None
    try:
        return datetime.fromisoformat(before["last_success"])
    except (TypeError, ValueError):  # a status file of another shape: the first refresh says
        return None


def collect_less(publisher) -> Callable[[Any], None]:
    """The cyclic collector at ARCHIVE_GC_THRESHOLDS from now on, for a builder's first build, which makes the archive's
    placements and maps; a refresh observer that puts the thresholds as they were back while a cold start's background
    reads the files it placed (its cyclic garbage, 9939ab4), and ARCHIVE_GC_THRESHOLDS again once every file is read.

    With the defaults the first build's collections walked what it had made so far again and again: a cold start at
    100,000 articles spent 2.3 s of its 14.4 s in process in them (12 full collections, 1.8 s), and took 10.6 s at these
    (1.35-1.74 s and 1.26-1.39 s at 10,000)."""
    before = gc.get_threshold()
    gc.set_threshold(*ARCHIVE_GC_THRESHOLDS)
    all_read = False  # as of the last refresh

    def observe(refreshed) -> None:
        nonlocal all_read
        was, all_read = all_read, not publisher.scanner.placed
        if not all_read:
            gc.set_threshold(*before)
        elif not was:
            gc.set_threshold(*ARCHIVE_GC_THRESHOLDS)
            log.info("every file read: the cyclic collector at %s from now on", ARCHIVE_GC_THRESHOLDS)

    return observe


def spawn(overrides: Mapping[str, Any]) -> Forked:
    """Fork the dedicated builder process, handing it the build lock when nobody holds it.

    The lock is taken here, in the serving master, and kept by the builder alone, so no worker forked afterwards
    can win it first and nobody waits for the builder to start. A fork, not a new interpreter: the master has
    imported the settings, the store and this module already, and a builder started anew spent 0.13-0.14 s
    starting Python and importing them again before it began (a restart at a new URL republishes then, a cold
    start reads). Called before gunicorn is imported, so the master has no thread yet.
    """
    from .. import state_path
    from ..config import load_settings

    lock = BuildLock(lock_path(state_path(load_settings(dict(overrides)))))
    held = lock.try_acquire()  # else another deployment's builder holds it: this one waits its turn

    def run() -> None:
        os.environ.update(BUILDER_ENV)  # for the processes it starts
        allocator.arenas(ARENAS)
        build_forever(overrides, lock if held else None)

    try:
        return fork(run, "feedsvc-builder")
    finally:
        if held:  # the builder's copy holds it now
            os.close(lock.fd)


def map_apart(files: int) -> bool:
    """A cold start with this many files to read: from MAP_APART_FROM, have glibc map its big blocks apart from now on,
    where the builder's peak binds more than its speed. Whether it did."""
    return files >= MAP_APART_FROM and allocator.mmap_from(MMAP_THRESHOLD)


def map_apart_taken_over(state: str, articles_dir: str) -> bool:
    """A builder that took the lock over from one that left no build (it died before its first): its first build holds
    its rows back as a cold start's does, so its big blocks go apart by the same bound (map_apart), its files counted
    by name, as it read none ahead. A 100,000-article first build so taken over peaked at 408 MiB, over its 400 MiB
    line, and at 398 MiB with this (its background reading done). Whether it did."""
    from ..reading.folder import Folder

    return (not has_build(state) and Folder(articles_dir).holds_at_least(MAP_APART_FROM)
            and allocator.mmap_from(MMAP_THRESHOLD))


def build_forever(overrides: Mapping[str, Any], lock: BuildLock | None) -> None:
    """The dedicated builder process: take the lock (or hold the one handed over), then build for ever."""
    from .. import for_building, state_path
    from ..config import load_settings
    from ..reading.folder import Folder
    from ..reading.articles import Options
    from ..reading.pool import POOL_FROM, prestart
    from ..reading.readahead import ReadAhead
    from ..store import has_build
    from .committer import on_sigterm

    settings = load_settings(overrides)
    ahead = None  # handed to the first scan, and not held here: its list of files is 30 MB at 100,000 articles
    if not has_build(state_path(settings)) and Folder(settings.articles_dir).holds_at_least(POOL_FROM):
        # A cold start of a big folder reads every file: its reading workers start now, before any thread, and read
        # from now on (ReadAhead), while this process imports what builds. A restart reads only what changed (workers
        # start if that is many): two interpreters importing beside the serving workers that answer from the store
        # would only slow those answers; so would they beside a small folder's cold start, which reads its files here
        # sooner than they start.
        prestart()
        if lock is not None:  # it builds now: not one waiting for another deployment's builder (which reads meanwhile)
            ahead = ReadAhead(Path(settings.articles_dir), Options.from_settings(settings), settings.settle_ms / 1000)
            map_apart(len(ahead.batch))
    app = for_building(overrides)
    app.extensions["feedsvc.read_ahead"], ahead = ahead, None
    if lock is None:
        lock = BuildLock(lock_path(app.extensions["feedsvc.state_path"]))
        lock.acquire()
        map_apart_taken_over(app.extensions["feedsvc.state_path"], settings.articles_dir)
    app.extensions["feedsvc.lock"] = lock
    signal.signal(signal.SIGTERM, on_sigterm)
    run_builder(app)
    threading.Event().wait()


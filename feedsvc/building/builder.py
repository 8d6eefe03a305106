"""Who builds, and how a build reaches the store.

Exactly one process per deployment builds: the one holding an exclusive flock on `<STATE_PATH>.build-lock`.
It runs the scheduler, the watcher and the refreshes, and commits each refresh's result to the build
store (Committer, an observer of the Publisher). Every other process serves from the store and tries
the lock every half refresh interval: when the builder dies the kernel frees the lock and one of them
takes over. `feedsvc serve` starts a dedicated builder process (`python -m feedsvc.building.builder`) before its
workers, so workers stay thin. The builder writes what it is doing to `<STATE_PATH>.builder` (BuilderStatus)
twice a second, for /healthz in every process.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ..formats import FORMATS
from ..model import is_placed
from ..search import SearchIndexer
from ..store import Build, ListingHead, ParsedCache, StoreWriter, code_version, item_index
from ..urls import preview_key

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.5
# Article pages a build commits itself; past that many new ones (a cold start), the build commits without them, so
# the feeds, home, category pages and OPML answer first, and a background thread commits the pages right after,
# PAGES_PER_BUILD to a build. A page asked for meanwhile is rendered by the serving process (variants.py).
FIRST_PAGES = 500
PAGES_PER_BUILD = 1000
LOCK_FD = "FEEDSVC_BUILD_LOCK_FD"  # the build lock's file descriptor, inherited by the dedicated builder
# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the builder's threads (the
# refresh, the background reading, the article pages) each free tens of MB in theirs that the others never reuse.
BUILDER_ENV = {"MALLOC_ARENA_MAX": "2"}
REFRESHERS: list = []  # this process's schedulers, stopped when a gunicorn worker exits (serving.worker_exit)


def lock_path(state_path: str) -> str:
    return state_path + ".build-lock"


def status_path(state_path: str) -> str:
    return state_path + ".builder"


class BuildLock:
    """An exclusive flock on the lock file; the kernel frees it when its holder dies, however it dies."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True if this process holds it now."""
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def acquire(self) -> None:
        """Wait for the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.fd = fd


class BuilderStatus:
    """The builder's last success, last error and running refresh, shared with other processes through a file."""

    def __init__(self, path: str):
        self.path = path

    def write(self, publisher, finished: bool = False) -> None:
        """Write the publisher's status now (atomically: a reader sees the old file or the new).

        finished: called as a refresh ends (by an observer, still inside it): no refresh is running.
        """
        running = None if finished else publisher.progress.now()
        body = {"pid": os.getpid(), "heartbeat": time.time(),
                "last_success": publisher.last_success.isoformat() if publisher.last_success else None,
                "last_error": publisher.last_error, "refreshing": None if running is None else list(running)}
        temporary = f"{self.path}.{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(body, out)
        os.replace(temporary, self.path)

    def read(self) -> dict | None:
        """The status as last written, with `heard` seconds since; None if no builder ever wrote one."""
        try:
            with open(self.path, encoding="utf-8") as status:
                body = json.load(status)
        except (OSError, ValueError):
            return None
        body["heard"] = max(0.0, time.time() - body["heartbeat"])
        return body

    def beat(self, publisher) -> threading.Thread:
        """Write the status every HEARTBEAT_SECONDS from a daemon thread."""
        def loop() -> None:
            while True:
                try:
                    self.write(publisher)
                except OSError as exc:
                    log.warning("cannot write the builder status %s: %s", self.path, exc)
                time.sleep(HEARTBEAT_SECONDS)
        thread = threading.Thread(target=loop, name="builder-status", daemon=True)
        thread.start()
        return thread


class Committer:
    """Commits each refresh that changed something to the build store, as rows that differ from what it holds."""

    def __init__(self, writer: StoreWriter, publisher, parsed: ParsedCache | None = None, reader=None, made_by: str = ""):
        self.writer, self.publisher, self.parsed, self.reader = writer, publisher, parsed, reader
        # What an article page or stored item is made from besides the article's own fields below: the reading
        # and rendering code, the reading settings and the site. An article is its file's text as read
        # (content_hash) at its path, dated by the state store; so these fields say when it must be stored again.
        self.made_by = hashlib.sha256(f"{made_by} {publisher.site!r}".encode()).hexdigest()[:16]
        self.behind = True  # the store may not hold this process's snapshot yet (start, or a failed commit)
        self._pages: dict[str, Any] = {}  # article page path → the renderer entry committed
        self._listings: dict[str, tuple] = {}  # key → (items, changed) committed
        self._items: dict[str, Any] = {}  # id → the Article object committed
        # Article pages left to commit after the last build: path → (renderer entry, made_from), in order.
        self._deferred: dict[str, tuple] = {}
        self._report: dict = {}
        self._recode: dict[str, tuple] = {}  # path → (Rendered, made_from): rows committed without their codings
        self._parsed: list[tuple] = []  # parse results left for the background pages' first build (for restarts only)
        self._previews: tuple | None = None  # (snapshot, {feed path: made_from}): feeds' browser pages left to commit
        self._lock = threading.Lock()  # one commit at a time: a refresh's, or the background pages'
        self._finisher: threading.Thread | None = None

    def __call__(self, refreshed) -> None:
        if not refreshed.ok or not (refreshed.changed or self.behind or (self.parsed and self.parsed.waiting)):
            return
        with self._lock:
            self.behind = True
            build = self.build(refreshed.snapshot)
            deferred, build.deferred = build.deferred, {}
            build.report["pages_pending"] = len(deferred) + build.report["placed"]
            parsed = self._parsed + build.parsed  # parse results wait for the pages' first build when there is one
            build.parsed, later = ([], parsed) if deferred else (parsed, [])
            recode = {path: found for path, found in self._recode.items() if path not in build.resources}
            recode.update(build.recode)
            if not deferred:  # rows left without codings by an earlier split get them now
                build.resources.update(self._recoded(recode))
                recode = {}
            try:
                version = self.writer.commit(build, datetime.now(timezone.utc))
            finally:
                if self.parsed is not None:
                    self.parsed.landed(build.parsed)
            self.behind = False
            _trim()
            self._deferred, self._report, self._parsed, self._recode = deferred, build.report, later, recode
            self._remember(refreshed.snapshot)
            if self.reader is not None:
                self.reader.current(force=True)  # this process's own requests see it at once
            log.debug("build %d committed: %d resources, %d listings, %d items changed, %d article pages to follow", version,
                      len(build.resources), len(build.listings), len(build.items), len(deferred))
            if deferred and (self._finisher is None or not self._finisher.is_alive()):
                self._finisher = threading.Thread(target=self.finish, name="article-pages", daemon=True)
                self._finisher.start()

    def finish(self) -> None:
        """Commit the article pages the last build left out, PAGES_PER_BUILD to a build, until none are left."""
        while True:
            with self._lock:
                if not self._deferred:
                    return
                paths = list(self._deferred)[:PAGES_PER_BUILD]
                chunk = {path: self._deferred[path] for path in paths}
                build = Build(dict(self._report, pages_pending=len(self._deferred) - len(paths) + self._report["placed"]),
                              parsed=self._parsed)
                try:
                    if self._previews is not None:
                        build.resources.update(_previews(*self._previews[:1], self.publisher.site, self._previews[1]))
                    build.resources.update(self._recoded(self._recode))
                    self._render_pages(build, {path: (entry[0], made) for path, (entry, made) in chunk.items()})
                    version = self.writer.commit(build, datetime.now(timezone.utc))
                except Exception:  # the next refresh commits them again (they are not remembered as committed)
                    if self.parsed is not None:
                        self.parsed.landed(build.parsed)
                    log.exception("the article pages could not be committed to the store")
                    # Parse results lost: a restart reads those files again; rows left without codings: made on request.
                    self._deferred, self._parsed, self._recode, self._previews, self.behind = {}, [], {}, None, True
                    return
                if self.parsed is not None:
                    self.parsed.landed(build.parsed)
                self._parsed, self._recode, self._previews = [], {}, None
                for path in paths:
                    del self._deferred[path]
                self._pages.update((path, entry) for path, (entry, _) in chunk.items())
                self._report = build.report
                _trim()
                if self.reader is not None:
                    self.reader.current(force=True)
                log.debug("build %d committed: %d article pages, %d to follow", version, len(paths), len(self._deferred))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background article pages; True when none are left (tests, tools)."""
        finisher = self._finisher
        if finisher is not None:
            finisher.join(timeout)
        return not self._deferred

    def build(self, snap) -> Build:
        """The rows of this snapshot that the store does not hold yet, and those it holds no more.

        Past FIRST_PAGES new article pages, those are left out of the rows and named in `deferred`.
        """
        site = self.publisher.site
        held = self.writer.held()
        report = {"articles": len(snap.articles), "feeds": len(snap.feeds), "skipped": len(snap.skipped),
                  "built_at": snap.built_at.isoformat() if snap.built_at else None,
                  "files_read": self.parsed.read if self.parsed else None}
        build = Build(report)
        unread = self.publisher.scanner.placed  # placed only so far: their items and pages come once read
        pages = getattr(snap.resources, "_pages", {})  # article pages: path → [(article, categories), Rendered or None]
        have = held["resources"]
        plain = {}  # the resources to put, but article pages
        for path in snap.resources:
            if path in pages:
                continue
            res = snap.resources[path]
            made = _made_from(res)
            if have.get(path) != made:
                plain[path] = (res, made)
        previews = {}  # feed path → made_from of its page for browsers, for those the store does not hold
        for feed in snap.feeds:
            for fmt in FORMATS:
                path = feed.path(fmt)
                made = _made_from(snap.resources[path]) + repr(site)
                if have.get(preview_key(path)) != made:
                    previews[path] = made
        todo, placed = {}, 0
        for path, entry in pages.items():
            if self._pages.get(path) is not entry:
                if entry[0][0].source in unread and is_placed(entry[0][0]):  # its page comes once it is read
                    placed += 1
                    continue
                made = self._made_from(entry[0][0], entry[0][1])
                if have.get(path) != made:
                    todo[path] = (entry, made)
        if len(todo) > FIRST_PAGES:
            # The feeds first: their gzip and brotli bodies (a second at 10,000 articles) come with the pages'
            # first build; a serving process asked for a coding meanwhile makes it itself.
            # The feeds' pages for browsers too (a second at 10,000 articles): a browser gets the feed meanwhile.
            build.deferred, build.recode = todo, plain
            build.resources.update((path, _row(res, made, coded=False)) for path, (res, made) in plain.items())
            self._previews = (snap, previews)
        else:
            build.resources.update((path, _row(res, made, coded=True)) for path, (res, made) in plain.items())
            self._render_pages(build, {path: (entry[0], made) for path, (entry, made) in todo.items()})
            build.resources.update(_previews(snap, site, previews))
            self._previews = None
        previews = {preview_key(feed.path(fmt)) for feed in snap.feeds for fmt in FORMATS}
        build.report["placed"] = placed
        build.gone["resources"] = {p for p in have if p not in snap.resources and p not in previews}
        for key, listing in snap.listings.items():
            if self._listings.get(key) == (listing.items, snap.changed[key]):
                continue
            head = ListingHead(key, listing.title, listing.description, listing.category, listing.page_url, snap.changed[key],
                               listing.deleted)
            index, blob = json.dumps(item_index(listing.items)), pickle.dumps(head, protocol=5)
            made = hashlib.sha256(index.encode() + blob).hexdigest()
            if held["listings"].get(key) != made:
                build.listings[key] = (blob, index, made)
        build.gone["listings"] = set(held["listings"]) - set(snap.listings)
        for id_, article in snap.articles.items():
            if self._items.get(id_) is not article and not (article.source in unread and is_placed(article)):
                made = self._made_from(article)
                if held["items"].get(id_) != made:
                    full = self.publisher.load_full(article)  # the builder holds most articles as placements
                    if full is not None:
                        build.items[id_] = (full, made)
        build.gone["items"] = set(held["items"]) - set(snap.articles)
        build.parsed = self.parsed.take() if self.parsed else []  # last: the articles above found them in it
        return build

    def _recoded(self, recode: dict) -> dict:
        """Rows with their codings for resources committed without them and still held as they were."""
        held = self.writer.held()["resources"]
        return {path: _row(res, made, coded=True) for path, (res, made) in recode.items() if held.get(path) == made}

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
        times = self.publisher.renderer.versions({path: hashlib.sha256(body).hexdigest() for path, body in bodies.items()})
        for path, body in bodies.items():
            build.resources[path] = _row(Rendered(body, "text/html", times[path], precompress=False), todo[path][1], coded=False)

    def _made_from(self, article, categories: tuple = ()) -> str:
        return (f"{self.made_by} {article.content_hash} {article.published.isoformat()} {article.updated.isoformat()} "
                f"{hashlib.sha256(repr((article.id, article.source, categories)).encode()).hexdigest()[:16]}")

    def _remember(self, snap) -> None:
        deferred = self._deferred
        self._pages = {path: entry for path, entry in getattr(snap.resources, "_pages", {}).items() if path not in deferred}
        self._listings = {key: (listing.items, snap.changed[key]) for key, listing in snap.listings.items()}
        self._items = dict(snap.articles)


def _previews(snap, site, previews: dict) -> dict:
    """Rows of the feeds' pages for browsers (preview.py), by their store key (urls.preview_key)."""
    from ..preview import preview_page

    return {preview_key(path): _row(preview_page(snap, site, path), made, coded=False) for path, made in previews.items()}


def _trim() -> None:
    """Give the memory a build freed back to the system now (glibc keeps it otherwise); elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _made_from(res) -> str:
    return f"{res.etag} {res.http_date} {res.max_age} {res.media_type} {res.headers!r}"


def _row(res, made: str, *, coded: bool) -> tuple:
    return (res.etag, res.media_type, res.last_modified.isoformat(), res.max_age, json.dumps(res.headers), res.body,
            res.coded("gzip") if coded else None, res.coded("br") if coded else None, made)


# --- becoming the builder ---

def start_building(app, commit: bool = True):
    """Make this process's Publisher and wire it to the store, WebSub and metrics; returns it (nothing runs yet).

    commit=False: nothing is written to the build store (`feedsvc build`, which exports the snapshot itself).
    """
    from ..reading import articles, chrome, folder, frontmatter, markup, scan, text
    from . import feeds, render
    from .. import model
    from ..formats import pages
    from ..reading.articles import Options
    from .site import Publisher
    from .state import StateStore

    settings, path = app.extensions["feedsvc.settings"], app.extensions["feedsvc.state_path"]
    options = Options.from_settings(settings)
    reading = code_version(articles, chrome, folder, frontmatter, markup, model, scan, text)
    parsed = ParsedCache(path, reading, hashlib.sha256(repr(options).encode()).hexdigest()[:16]) if commit else None
    publisher = Publisher(settings, StateStore(path), parsed=parsed, place=commit)
    if commit:
        templates = "".join(sorted(p.read_text(encoding="utf-8") for p in (Path(pages.__file__).parents[1] / "templates").iterdir()))
        made_by = f"{reading} {parsed.settings_hash} {code_version(feeds, pages, render)} {hashlib.sha256(templates.encode()).hexdigest()}"
        publisher.observers.append(Committer(StoreWriter(path), publisher, parsed, app.extensions["feedsvc.store"], made_by))
        publisher.observers.append(app.extensions.setdefault("feedsvc.indexer", SearchIndexer(path, publisher.read_full)).observe)  # search.py
    if "feedsvc.metrics" in app.extensions:
        publisher.observers.append(app.extensions["feedsvc.metrics"].observe_refresh)
    if "feedsvc.websub" in app.extensions:
        publisher.listeners.append(app.extensions["feedsvc.websub"].notify)
    app.extensions["feedsvc"] = publisher
    return publisher


def run_builder(app) -> Any:
    """Build now, then keep building on a schedule and on file changes; this process must hold the lock."""
    from .scheduler import Refresher

    # No warm_up() of the language model: it loads with the first file that needs it (feedsvc/reading/text.py),
    # and a first scan's reading workers (feedsvc/reading/pool.py) load their own.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    publisher = start_building(app)
    status = BuilderStatus(status_path(app.extensions["feedsvc.state_path"]))
    status.beat(publisher)
    publisher.observers.append(lambda refreshed: status.write(publisher, finished=True))  # with the build it tells of, not up to a beat later
    settings = app.extensions["feedsvc.settings"]
    watch = publisher.root if settings.watch else None
    # Watch first, then build: a file saved while the first build runs is not missed.
    refresher = Refresher(publisher.refresh, publisher.next_wakeup, settings.refresh_seconds, watch).start()
    app.extensions["feedsvc.refresher"] = refresher
    REFRESHERS.append(refresher)
    refresher.run()  # the first build; the reading workers started ahead (main) go once nothing is left to read
    return refresher


def contend(app) -> threading.Thread:
    """Try the build lock now and every half refresh interval from a daemon thread; build once it is ours."""
    lock = BuildLock(lock_path(app.extensions["feedsvc.state_path"]))
    interval = max(0.5, app.extensions["feedsvc.settings"].refresh_seconds / 2)

    def loop() -> None:
        while not lock.try_acquire():
            time.sleep(interval)
        log.info("process %d holds the build lock: it builds from now on", os.getpid())
        app.extensions["feedsvc.lock"] = lock
        run_builder(app)

    thread = threading.Thread(target=loop, name="build-lock", daemon=True)
    thread.start()
    return thread


def spawn(overrides: Mapping[str, Any]) -> subprocess.Popen:
    """Start the dedicated builder process, handing it the build lock when nobody holds it.

    The lock is taken here, in the serving master, and its open file passed to the builder, so no worker
    forked afterwards can win it first and nobody waits for the builder to start; the master keeps no copy.
    """
    from .. import state_path
    from ..config import load_settings

    lock = BuildLock(lock_path(state_path(load_settings(dict(overrides)))))
    command = [sys.executable, "-m", "feedsvc.building.builder", json.dumps(dict(overrides))]
    if not lock.try_acquire():  # another deployment's builder holds it: this one waits its turn
        return subprocess.Popen(command, env={**os.environ, **BUILDER_ENV}, preexec_fn=_die_with_parent)
    try:
        return subprocess.Popen(command, pass_fds=(lock.fd,), env={**os.environ, LOCK_FD: str(lock.fd), **BUILDER_ENV},
                                preexec_fn=_die_with_parent)
    finally:
        os.close(lock.fd)


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the server gone, the builder goes too


def main(argv: list[str] | None = None) -> None:
    """The dedicated builder process: take the lock handed over (or wait for it), then build for ever."""
    from .. import create_app

    from ..reading.pool import prestart

    prestart()  # before any thread: the reading workers' imports overlap this process's own
    argv = sys.argv[1:] if argv is None else argv
    app = create_app(json.loads(argv[0]) if argv else {}, refresh=False, build=False)
    lock = BuildLock(lock_path(app.extensions["feedsvc.state_path"]))
    if LOCK_FD in os.environ:  # handed over by spawn(), already held
        lock.fd = int(os.environ.pop(LOCK_FD))
    else:
        lock.acquire()
    app.extensions["feedsvc.lock"] = lock
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_builder(app)
    threading.Event().wait()


if __name__ == "__main__":
    main()

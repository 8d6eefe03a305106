"""The build store: what the builder made, in the state store's SQLite file, for every serving process to read.

Its schema, and the reading side: any number of serving processes read (StoreReader: read-only, hot resources kept in
memory). One builder writes (building/storewriter.py: one transaction per build, so a reader sees the old build or the
new, never a mix). Its file also holds each file's parse result (building/parsed.py reads and keeps them; the writer
writes them with a build). Neutral: imports nothing of reading, building or serving.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import sqlite3
from urllib.parse import quote
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from .model import from_microseconds, microseconds, item_place
from .resource import Rendered
from .search import create_index
from .transactions import rows_for, setting_up, transaction
from .wanted import SCHEMA as WANTED_SCHEMA

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    version INTEGER PRIMARY KEY,  -- bumped in the transaction that commits the build's resources
    committed_at TEXT NOT NULL,
    report TEXT NOT NULL,  -- JSON: what /healthz tells of the build (articles, feeds, skipped, files read)
    -- For ?since= deltas (StoreReader.landed_after), microseconds since 1970: when the build became visible (read at the
    -- end of its transaction), and the earliest time anything it shows anew (an item published, updated or recorded,
    -- a tombstone's second) is dated at: its refresh's start, or an embargo's end (committer._dated); NULL: it shows
    -- nothing anew (a background build), or a feedsvc from before these columns wrote it.
    landed INTEGER,
    dated INTEGER
);
CREATE INDEX IF NOT EXISTS builds_by_landing ON builds (landed, dated);
CREATE TABLE IF NOT EXISTS resources (
    path TEXT PRIMARY KEY,  -- URL path without the leading slash; "#preview/<feed path>": a feed's page for browsers
    etag TEXT NOT NULL, media_type TEXT NOT NULL, last_modified TEXT NOT NULL, max_age INTEGER,
    headers TEXT NOT NULL,  -- JSON list of extra [name, value] headers
    -- Before the bodies: SQLite reaches a column past a big BLOB by reading its overflow pages (a sitemap's 300).
    made_from TEXT NOT NULL,  -- what the builder compares to skip unchanged rows
    version INTEGER NOT NULL,
    body BLOB NOT NULL, gzip BLOB, br BLOB  -- NULL coding: made by the worker on first request (article pages)
);
CREATE TABLE IF NOT EXISTS changes (version INTEGER NOT NULL, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_version ON changes (version);
CREATE TABLE IF NOT EXISTS listings (
    key TEXT PRIMARY KEY,  -- "" for the site-wide feed, a category slug, "tag/<slug>" or "author/<slug>"
    head BLOB NOT NULL,  -- pickled ListingHead
    size INTEGER NOT NULL,  -- how many items it lists (its rows in listing_items)
    made_from TEXT NOT NULL, version INTEGER NOT NULL
);
-- Each listing's live items, one row each, in the feeds' order by the key itself (newest first, equal times by ID):
-- a new article is one row in each of its listings, and a serving process reads the slice a page needs.
CREATE TABLE IF NOT EXISTS listing_items (
    listing TEXT NOT NULL,
    rank INTEGER NOT NULL,  -- minus the publication time in microseconds since 1970: ORDER BY rank, id is newest first
    id TEXT NOT NULL,
    updated INTEGER NOT NULL,  -- microseconds since 1970
    recorded INTEGER NOT NULL,  -- when this deployment recorded the item as it is (Article.recorded), microseconds
    categories TEXT NOT NULL,  -- JSON list of the article's category names (a partner's licensed view filters on them)
    PRIMARY KEY (listing, rank, id)
) WITHOUT ROWID;
-- When each archive page (page 2 on, counted from the oldest: paging.page_feed) last changed (versions.py), one row
-- a page: a new article moves one or two rows, not a list that grows with the archive.
CREATE TABLE IF NOT EXISTS listing_pages (
    listing TEXT NOT NULL, page INTEGER NOT NULL, modified TEXT NOT NULL,
    digest TEXT NOT NULL,  -- of what the page shows (its items, number and links), as versions.py dates it
    PRIMARY KEY (listing, page)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,  -- a live article's ID
    made_from TEXT NOT NULL, version INTEGER NOT NULL,
    article BLOB NOT NULL  -- the stamped Article, pickled: what a variant (a page, a delta, a partner's view) is rendered from
);
CREATE TABLE IF NOT EXISTS parsed (
    source TEXT PRIMARY KEY,  -- path inside the articles folder
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, parser_version TEXT NOT NULL, settings_hash TEXT NOT NULL,
    -- The pickled placement of an Article (reading/articles.py placement(): no text), before the result: a restart
    -- loads only these (~330 bytes an article at 10,000; its result ~11 KB), and SQLite reaches them without the
    -- result's overflow pages.
    -- NULL for a Skipped, which is small: the result itself is its placement.
    placement BLOB,
    -- The pickled Article or Skipped it gave, or the items row the Article is but for its dates (ItemRef); empty for
    -- a file read for placement only so far (a cold start's files past the first pages, until the background has read
    -- them): a restart places it without reading it.
    result BLOB NOT NULL
);
"""
# StoreReader.landed_after: the builds landed after a moment, read in builds_by_landing alone (a few rows: those landed
# in the seconds since a reader's last poll; KEEP_BUILDS at most).
LANDED_AFTER = "SELECT MIN(dated), MAX(landed) FROM builds WHERE landed > ? AND dated < ?"
PAGE_SIZE = 65536  # bytes of a new store file's pages (use_wal)
KEEP_BUILDS = 200  # builds rows (and their changes) kept; a worker further behind drops its whole cache
HEADS = 64  # listing heads a serving process keeps (a few hundred bytes each; tombstones make some longer)


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the store's file (autocommit; WAL set up by the writer)."""
    if readonly:
        # The path percent-encoded, as a URI's: a `#`, `?` or `%` in it (state#1.sqlite3) cut it short or read as a query.
        conn = sqlite3.connect(f"file:{quote(str(Path(path).absolute()))}?mode=ro", uri=True, timeout=30,
                               isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    with setting_up(conn):
        if readonly:
            # A small page cache per connection (one per thread): the rows a worker serves are in its own cache
            # and the kernel's; SQLite's default 2 MiB each would grow a worker with the size of the feeds.
            conn.execute("PRAGMA cache_size=-256")
        else:
            use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA journal_size_limit=67108864")  # a first build's WAL (hundreds of MB) is cut back after it
        conn.execute("PRAGMA busy_timeout=30000")
    return conn


def use_wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """Put the file in WAL mode (nothing to do once it is), waiting up to `wait` seconds for other processes.

    A new file's change of journal mode needs its exclusive lock, and when processes opening it at once would
    deadlock on that lock SQLite answers "database is locked" at once instead of calling the busy handler
    (https://www.sqlite.org/c3ref/busy_handler.html): two gunicorn workers starting on a fresh state file."""
    # A new file's pages are 64 KiB, SQLite's largest (https://www.sqlite.org/pragma.html#pragma_page_size): a store is
    # mostly feeds of hundreds of kB, each a chain of overflow pages, and a cold start's first build at 10,000
    # articles (39 MB) was written in 58 ms instead of 105 ms with 4 KiB pages, a one-file build's in 1.9 ms instead
    # of 3.8. Set before the file's first write (the change to WAL, below); a file that has pages keeps their size.
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def create_schema(path: str | Path) -> None:
    """Create the store's tables if missing (the serving master does it before any worker opens the file)."""
    conn = connect(path)
    try:
        if _outdated(conn):  # a store of an earlier layout: the builder's next build writes every row again
            for table in ("builds", "changes", "resources", "listings", "listing_items", "listing_pages", "items"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
        if _columns(conn, "parsed") and "placement" not in _columns(conn, "parsed"):
            conn.execute("DROP TABLE parsed")  # parse results without placements: files are read again, once
        _add_build_times(conn)
        conn.executescript(SCHEMA)
        create_index(conn)  # search.py's tables, which its SearchIndexer keeps
        # wanted.py's queue, here before any build: made by its first look instead, it waited for the write lock that a
        # cold start's first commit holds for seconds at 100,000 articles, and that look failed ("database is locked").
        conn.execute(WANTED_SCHEMA)
    finally:
        conn.close()


def has_build(path: str | Path) -> bool:
    """Whether the store at path holds a build (a restart), without creating the file (a cold start has none)."""
    if not Path(path).is_file():
        return False
    try:
        conn = connect(path, readonly=True)
        try:
            return conn.execute("SELECT 1 FROM builds LIMIT 1").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error:  # not a store yet, or one of another layout: the builder rebuilds it
        return False


def latest_on_disk(path: str | Path, wait_ms: int = 1000) -> int:
    """The latest build's version in the file at path now (0: none), read on a new connection: a kept one may still read
    a file deleted or replaced since, or pages it holds. sqlite3.Error when the file is gone or holds no store, or its
    lock was not had within wait_ms (a health check answers in a moment, not after connect's 30 s)."""
    conn = connect(path, readonly=True)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        return conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0
    finally:
        conn.close()


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """The (device, inode) of the file at path, or None when there is none: what tells a file replaced from the one open.
    OSError when it cannot be told now (its folder's permissions, I/O)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _outdated(conn: sqlite3.Connection) -> bool:
    """Whether the build tables are of an earlier layout (a listing's items as one JSON column; columns behind
    the bodies): they are made again, and the builder's next build (a start's) writes every row."""
    resources, items, pages = _columns(conn, "resources"), _columns(conn, "items"), _columns(conn, "listing_pages")
    listed = _columns(conn, "listing_items")
    return ("items" in _columns(conn, "listings") or (bool(pages) and "digest" not in pages) or (bool(resources) and resources.index("made_from") > resources.index("body"))
            or (bool(items) and items.index("made_from") > items.index("article")) or (bool(listed) and "recorded" not in listed))


def _add_build_times(conn: sqlite3.Connection) -> None:
    """Give a builds table of the layout before `landed` and `dated` those columns, its rows and everything else kept
    (their builds NULL: a delta goes by `since` alone for them, as it did). Under the write lock, so that two processes
    starting on one file (the serving master, a `feedsvc build`) add them once."""
    if "landed" in _columns(conn, "builds") or not _columns(conn, "builds"):
        return
    with transaction(conn):
        if "landed" not in _columns(conn, "builds"):  # not added meanwhile by another process
            conn.execute("ALTER TABLE builds ADD COLUMN landed INTEGER")
            conn.execute("ALTER TABLE builds ADD COLUMN dated INTEGER")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """A table's column names, in order ([] when there is no such table)."""
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


@dataclass(frozen=True)
class ListingHead:
    """What a variant's head needs of a listing: its Listing without items, and when the listing last changed."""

    key: str
    title: str
    description: str
    category: Any  # model.Category or None
    page_url: str
    changed: datetime
    deleted: tuple = ()  # the listing's tombstones (model.Deleted), for its partners' views and deltas
    cuts: tuple[int, ...] = ()  # its frozen archive pages' sizes, page 2 first (paging.Listing.cuts)


def short_digest(text: str) -> str:
    """A short hash of a text: what the builder keys what it made by (code, settings, site, times)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# The parse results' layout, part of every row's parser version (builder.start_building): rows that may hold an ItemRef
# are never found by code from before it (which would take the reference for a result), nor its rows by this code;
# the files are read once again after the upgrade, as after any change to the reading code.
PARSED_LAYOUT = "results-or-item-refs"


class ItemRef(NamedTuple):
    """A parse result stored as the items row it is but for its dates, not pickled and written a second time (a
    `feedsvc build` of 10,000 articles wrote 114 MB of each). Taken from the store only while that row is still made
    from the same (`made_from`: the reading code and settings, the file's content hash, path, ID, dates and
    categories); otherwise the file is read again. Pickled into the parsed table by this name (feedsvc.store.ItemRef):
    it stays here, with the schema, so that rows written by an earlier feedsvc load."""

    id: str
    made_from: str
    published: datetime | None  # the result's own dates (None: the file gives none), which the row has stamped
    updated: datetime | None


def code_version(*modules: Any) -> str:
    """A hash of these modules' source files: parse results of older code are never reused."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def package_version() -> str:
    """A hash of every file of the feedsvc package (its code, templates and static files), found by path: what a
    builder's start can key by before it imports the modules that build (builder.rebase_key)."""
    digest, root = hashlib.sha256(), os.path.dirname(__file__)
    found = []
    for folder, dirs, files in os.walk(root):  # os.walk, not pathlib: a builder's start, 80 files
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found.extend(os.path.join(folder, name) for name in files)
    for path in sorted(found):
        with open(path, "rb") as file:
            data = file.read()
        digest.update(f"{os.path.relpath(path, root)}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


LOOK_SECONDS = 0.02  # how old a worker's idea of the latest build may get: issue 10 wants a commit served within 50 ms


class StoreReader:
    """A serving process's side: resources by path at the latest build, hot ones kept in memory.

    The build version is looked at, at most every `interval` seconds, on a request; a new version drops
    from memory exactly the paths that build changed. Memory is bounded by `cache_bytes` of bodies.
    Each resource in memory has a dict beside it for what a server derives from it (feedsvc/serving/front.py's
    prepared headers), dropped with it.
    """

    def __init__(self, path: str | Path, *, interval: float = LOOK_SECONDS, cache_bytes: int = 2 << 20):
        self.path, self.interval, self.cache_bytes = Path(path), interval, cache_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[Rendered, dict]] = OrderedDict()  # path → (resource, derived from it)
        self._listings: OrderedDict[str, tuple] = OrderedDict()  # key → (head, size), the last HEADS asked
        self._bytes = 0  # bytes read from the store of the resources kept (a coding made here is not counted)
        self.version = 0
        # The state file's (device, inode) as this process's connections opened it: a file replaced at the path (renamed
        # into place, or made anew by the builder that took over after it was deleted) is read anew, its cache dropped.
        self._identity: tuple[int, int] | None = None
        self._probed = 0.0  # when a file found at the path in the place of the one read was last probed for a build
        self._checked = 0.0  # when the latest look at the version began
        self.seen = 0.0  # when the latest look that has ended began: what is in memory is at least that recent

    def _conn(self, quick: bool = False) -> sqlite3.Connection:
        """This thread's read-only connection; quick: one that never waits for a lock (busy_timeout 0)."""
        name = "quick" if quick else "conn"
        kept = getattr(self._local, name, None)
        if kept is None or kept[0] != os.getpid() or kept[1] != self._identity:
            if kept is not None and kept[0] == os.getpid():
                kept[2].close()  # of a file replaced since
            if self._identity is None:
                with contextlib.suppress(OSError):  # cannot be told now: the next connection asks again
                    self._identity = file_identity(self.path)
            conn = connect(self.path, readonly=True)
            if quick:
                conn.execute("PRAGMA busy_timeout=0")
            kept = (os.getpid(), self._identity, conn)
            setattr(self._local, name, kept)
        return kept[2]

    def current(self, force: bool = False, quick: bool = False) -> int:
        """The latest build's version, looked at if `interval` has passed (or force); forgets what that build changed.

        quick: on a connection that never waits (feedsvc/serving/front.py looks from the event loop): a file that is
        busy, which a reader of a WAL database meets only while it is being recovered, raises
        sqlite3.OperationalError instead of stopping the caller.
        """
        now = time.monotonic()
        if not force and now - self._checked < self.interval:
            return self.version
        self._checked = now
        self._follow_file()
        conn = self._conn(quick)
        try:
            latest = conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            self.seen = max(self.seen, now)  # nothing built yet
            return 0
        if latest != self.version:
            with self._lock:
                if latest != self.version:  # not done meanwhile by another thread's look
                    # Nothing held, nothing to forget: a fresh process's first look reads no change (the last 200 builds'
                    # changes, 10,000 rows after a cold start at 10,000 articles: 25 ms of a restart's first request).
                    if self._cache or self._listings:
                        self._forget_changes(conn, latest)
                    self.version = latest
        self.seen = max(self.seen, now)
        return self.version

    def _follow_file(self) -> None:
        """Read the file at the path from now on if it is another than the one read (replaced while feedsvc ran, or made
        anew after it was deleted), dropping all that is held: its builds are numbered anew. A file gone is left as it
        is: the connections held read it still, the last build served until the new file has one."""
        try:
            found = file_identity(self.path)
        except OSError:  # cannot be told now: looked at again at the next check
            return
        if found is None or self._identity is None or found == self._identity:
            return
        if time.monotonic() - self._probed < 1.0:  # asked of at every look (20 ms): a new file is probed once a second
            return
        self._probed = time.monotonic()
        try:  # one that holds a build: until the builder taking over has committed its first, the held one is served
            if not latest_on_disk(self.path, wait_ms=0):  # never waits: the event loop asks too (front.py)
                return
        except sqlite3.Error:
            return  # the last build served meanwhile, from the file held; looked at again at the next check
        with self._lock:
            if found != self._identity:
                log.warning("the state file %s is another file now: read from now on, this process's cache dropped", self.path)
                self._identity = found
                self._cache.clear(), self._listings.clear()
                self._bytes, self.version = 0, 0

    def _forget_changes(self, conn: sqlite3.Connection, latest: int) -> None:
        """Drop what builds after ours up to `latest` changed (everything, when the store no longer says what)."""
        oldest = conn.execute("SELECT MIN(version) FROM changes").fetchone()[0]
        if latest < self.version or oldest is None or oldest > self.version + 1:
            self._cache.clear(), self._listings.clear()
            self._bytes = 0
            return
        for (path,) in conn.execute("SELECT DISTINCT path FROM changes WHERE version > ? AND version <= ?", (self.version, latest)):
            self._listings.pop(path[len("#listing/"):], None) if path.startswith("#listing/") else self._forget(path)

    def age(self) -> float:
        """Seconds since the latest look at the version that has ended began (how old what cached() gives may be)."""
        return time.monotonic() - self.seen

    def cached(self, path: str) -> tuple[Rendered, dict] | None:
        """The resource at path and its derived dict if it is in memory, else None; never reads the file.

        For the event loop (feedsvc/serving/front.py), which calls current(quick=True) as age() reaches `interval`: no
        lock is taken, as each OrderedDict operation is atomic under the GIL and the pair is replaced whole.
        """
        found = self._cache.get(path)
        if found is not None:
            try:
                self._cache.move_to_end(path)
            except KeyError:  # forgotten by a thread meanwhile: what it held is still the build it was
                pass
        return found

    def _forget(self, path: str) -> None:
        found = self._cache.pop(path, None)
        if found is not None:
            self._bytes -= found[1].get(_HELD, 0)

    def resource(self, path: str) -> Rendered | None:
        """The resource at path in the latest build, or None."""
        self.current()
        with self._lock:
            found = self._cache.get(path)
            if found is not None:
                self._cache.move_to_end(path)
                return found[0]
            version = self.version
        # Its validators only: the bytes of the coding a request takes are read when it first does (Rendered.stored),
        # so a 304 reads none and a gzip client only the gzip column, and the cache holds what is served.
        row = self._conn().execute("SELECT etag, media_type, last_modified, max_age, headers FROM resources WHERE path = ?",
                                   (path,)).fetchone()
        if row is None:
            return None
        found = self.from_row(path, *row)
        with self._lock:
            if self.version != version:  # a build landed while it was read: the row may be the one it replaced
                return found
            self._forget(path)  # two threads that read it at once keep one
            self._cache[path] = (found, {})
        return found

    def from_row(self, path: str, etag: str, media: str, modified: str, max_age: int | None, headers: str) -> Rendered:
        """The resource of a row (its validators: etag, media_type, last_modified, max_age, headers), its bytes and
        codings read from the store when first asked for (Rendered.stored), counted in the cache while it is there."""
        held: list[Rendered] = []
        found = Rendered.stored(etag, media, datetime.fromisoformat(modified), max_age=max_age,
                                headers=tuple(tuple(h) for h in json.loads(headers)),
                                load=lambda column: self._column(path, etag, column, held))
        held.append(found)
        return found

    def _column(self, path: str, etag: str, column: str, held: list[Rendered]) -> bytes | None:
        """(Rendered.stored's load) A column of the row at path if it still holds these bytes (ETag), else
        LookupError; counted in the cache's bytes while the resource is in it, and dropped from it alone if big."""
        row = self._conn().execute(f"SELECT {_COLUMNS[column]} FROM resources WHERE path = ? AND etag = ?", (path, etag)).fetchone()
        if row is None:
            raise LookupError(f"/{path}: the build store no longer holds the bytes {etag} (a build replaced them)")
        data = None if row[0] is None else bytes(row[0])
        if data is not None:
            with self._lock:
                found = self._cache.get(path)
                if found is not None and held and found[0] is held[0]:
                    found[1][_HELD] = found[1].get(_HELD, 0) + len(data)
                    self._bytes += len(data)
                    if found[1][_HELD] > self.cache_bytes // 4:  # one huge resource never empties the cache
                        self._forget(path)
                    else:
                        self._cache.move_to_end(path)
                    while self._bytes > self.cache_bytes:
                        self._bytes -= self._cache.popitem(last=False)[1][1].get(_HELD, 0)
        return data

    def build(self) -> tuple[int, str, dict] | None:
        """(version, committed_at, report) of the latest build, or None before the first."""
        try:
            row = self._conn().execute("SELECT version, committed_at, report FROM builds ORDER BY version DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else (row[0], row[1], json.loads(row[2]))

    def landed_after(self, moment: datetime, dated_before: datetime) -> tuple[datetime, datetime] | None:
        """Of the builds that landed after `moment` and show anew what is dated from before `dated_before` (builds.dated):
        the earliest of those times and the latest landing; None when there is none. One look in the builds_by_landing
        index, in the pinned build inside pinned()."""
        try:
            row = self._conn().execute(LANDED_AFTER, (microseconds(moment), microseconds(dated_before))).fetchone()
        except sqlite3.OperationalError as exc:  # a store of the layout before landed and dated (create_schema adds them)
            if "no such column" not in str(exc):
                raise
            return None
        return None if row[0] is None else (from_microseconds(row[0]), from_microseconds(row[1]))

    def listing(self, key: str) -> tuple[ListingHead, "ListingIndex"] | None:
        """A listing's head and its item order (ListingIndex: read a slice at a time, never held whole).

        Heads are kept for the last HEADS asked; inside pinned() both come from the pinned build.
        """
        self.current()
        pinned = getattr(self._local, "pinned", 0)
        if not pinned:
            with self._lock:
                found = self._listings.get(key)
                if found is not None:
                    self._listings.move_to_end(key)
                    return found[0], ListingIndex(self, key, found[1])
        row = self._conn().execute("SELECT head, size FROM listings WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        head, size = pickle.loads(row[0]), row[1]
        if not pinned:
            with self._lock:
                self._listings[key] = (head, size)
                while len(self._listings) > HEADS:
                    self._listings.popitem(last=False)
        return head, ListingIndex(self, key, size)

    @contextmanager
    def pinned(self):
        """Every read of this thread inside sees one build (one SQLite read transaction): a feed made from a
        listing's head, its order and its articles is never a mix of two builds."""
        depth = getattr(self._local, "pinned", 0)
        conn = self._conn()
        if not depth:
            conn.execute("BEGIN")
            conn.execute("SELECT 1 FROM builds LIMIT 1").fetchone()  # the read transaction starts at its first read
        self._local.pinned = depth + 1
        try:
            yield
        finally:
            self._local.pinned = depth
            if not depth:
                conn.execute("COMMIT")

    def listing_ids(self, key: str, start: int, stop: int, where: str = "", params: tuple = ()) -> list[str]:
        """The IDs at positions start:stop of a listing's order (with an extra condition on its rows: where)."""
        if stop <= start:
            return []
        rows = self._conn().execute(f"SELECT id FROM listing_items WHERE listing = ?{where} ORDER BY rank, id LIMIT ? OFFSET ?",
                                    (key, *params, stop - start, start))
        return [row[0] for row in rows]

    def page_date(self, head: ListingHead, page: int) -> datetime:
        """When archive page `page` of a listing last changed (versions.py): its own row, else (none recorded) the
        listing's time, which moves whenever any page of it does."""
        row = self._conn().execute("SELECT modified FROM listing_pages WHERE listing = ? AND page = ?", (head.key, page)).fetchone()
        return head.changed if row is None else datetime.fromisoformat(row[0])

    def listing_count(self, key: str, where: str = "", params: tuple = ()) -> int:
        """How many of a listing's rows meet the condition."""
        return self._conn().execute(f"SELECT COUNT(*) FROM listing_items WHERE listing = ?{where}", (key, *params)).fetchone()[0]

    def category_links(self) -> dict[tuple[str, str], tuple[str, str, str]]:
        """Each published category's, tag's and author's (name, page URL, feed key) by (kind, name), as an article page links them."""
        links = {}
        for (blob,) in self._conn().execute("SELECT head FROM listings WHERE key != ''"):
            head = pickle.loads(blob)
            if head.category is not None:
                links[(head.category.kind, head.category.name)] = (head.category.name, head.page_url, head.key)
        return links

    def recorded(self, key: str, digest: str) -> datetime | None:
        """When the builder dated these bytes at this key (the state store's versions, same file), or None."""
        try:
            row = self._conn().execute("SELECT modified FROM versions WHERE key = ? AND digest = ?", (key, digest)).fetchone()
        except sqlite3.OperationalError:  # no versions table: nothing dated yet
            return None
        return None if row is None else datetime.fromisoformat(row[0])

    def articles(self, ids: list[str]) -> list:
        """The stored (stamped) articles with these IDs, in this order."""
        found = {id_: pickle.loads(blob) for id_, blob in rows_for(self._conn(), "SELECT id, article FROM items WHERE id IN ({marks})", ids)}
        return [found[i] for i in ids if i in found]


_HELD = "#bytes"  # in a cached resource's derived dict: the bytes read of it so far, counted in the cache's
_COLUMNS = {"body": "body", "gzip": "gzip", "br": "br"}  # what Rendered.stored may load, as the only names put in SQL


class ListingIndex:
    """One stored listing's items in order, as a serving process reads them: a count and the IDs of a slice,
    each one SQL query on listing_items; narrowed by time (newer_than) or by category (licensed) in SQL too."""

    def __init__(self, reader: StoreReader, key: str, size: int | None, where: str = "", params: tuple = ()):
        self.reader, self.key, self.where, self.params = reader, key, where, params
        self._size = size

    def __len__(self) -> int:
        if self._size is None:
            self._size = self.reader.listing_count(self.key, self.where, self.params)
        return self._size

    def ids(self, index: slice | int) -> list[str]:
        """The IDs at these positions (a slice, or one position)."""
        if not isinstance(index, slice):
            position = index + len(self) if index < 0 else index
            if not 0 <= position < len(self):
                raise IndexError(index)
            return self.reader.listing_ids(self.key, position, position + 1, self.where, self.params)
        positions = range(*index.indices(len(self)))
        if not positions:
            return []
        low, high = min(positions), max(positions)
        found = self.reader.listing_ids(self.key, low, high + 1, self.where, self.params)
        return found if positions.step == 1 else [found[p - low] for p in positions]

    def newer_than(self, since: datetime) -> "ListingIndex":
        """The items published, updated or recorded after `since` (paging.changed_after), in the same order."""
        moment = microseconds(since)
        return ListingIndex(self.reader, self.key, None, self.where + " AND (rank < ? OR updated > ? OR recorded > ?)",
                            (*self.params, -moment, moment, moment))

    def after(self, published: datetime, id_: str) -> "ListingIndex":
        """The items after this place in the order (an item's published time and id, model.item_place), in the same order."""
        return ListingIndex(self.reader, self.key, None, self.where + " AND (rank, id) > (?, ?)",
                            (*self.params, *item_place(published, id_)))

    def licensed(self, categories: Iterable[str]) -> "ListingIndex":
        """The items in at least one of these categories, in the same order."""
        names = sorted(categories)
        condition = f" AND EXISTS (SELECT 1 FROM json_each(categories) WHERE value IN ({','.join('?' * len(names))}))"
        return ListingIndex(self.reader, self.key, None, self.where + condition, (*self.params, *names))

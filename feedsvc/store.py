"""The build store: what the builder made, in the state store's SQLite file, for every serving process to read.

One builder writes (StoreWriter: one transaction per build, so a reader sees the old build or the new,
never a mix); any number of serving processes read (StoreReader: read-only, hot resources kept in memory).
Its file also holds each file's parse result (building/parsed.py reads and keeps them; StoreWriter writes them
with a build). Neutral: imports nothing of reading, building or serving.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import pickle
import sqlite3
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from .resource import Rendered
from .search import create_index
from .transactions import made_hash, rows_for, transaction
from .wanted import SCHEMA as WANTED_SCHEMA

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    version INTEGER PRIMARY KEY,  -- bumped in the transaction that commits the build's resources
    committed_at TEXT NOT NULL,
    report TEXT NOT NULL  -- JSON: what /healthz tells of the build (articles, feeds, skipped, files read)
);
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
PAGE_SIZE = 65536  # bytes of a new store file's pages (use_wal)
KEEP_BUILDS = 200  # builds rows (and their changes) kept; a worker further behind drops its whole cache
HEADS = 64  # listing heads a serving process keeps (a few hundred bytes each; tombstones make some longer)


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the store's file (autocommit; WAL set up by the writer)."""
    if readonly:
        conn = sqlite3.connect(f"file:{Path(path).absolute()}?mode=ro", uri=True, timeout=30, isolation_level=None,
                               check_same_thread=False)
        # A small page cache per connection (one per thread): the rows a worker serves are in its own cache
        # and the kernel's; SQLite's default 2 MiB each would grow a worker with the size of the feeds.
        conn.execute("PRAGMA cache_size=-256")
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
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


def _outdated(conn: sqlite3.Connection) -> bool:
    """Whether the build tables are of an earlier layout (a listing's items as one JSON column; columns behind
    the bodies): they are made again, and the builder's next build (a start's) writes every row."""
    resources, items, pages = _columns(conn, "resources"), _columns(conn, "items"), _columns(conn, "listing_pages")
    return ("items" in _columns(conn, "listings") or (bool(pages) and "digest" not in pages) or (bool(resources) and resources.index("made_from") > resources.index("body"))
            or (bool(items) and items.index("made_from") > items.index("article")))


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


@dataclass
class Build:
    """One build's rows: what to put and what to delete, table by table."""

    report: dict
    resources: dict[str, tuple] = field(default_factory=dict)  # path → (etag, media, last_modified, max_age, headers, body, gzip, br, made_from)
    listings: dict[str, tuple] = field(default_factory=dict)  # key → (head, size, made_from)
    # key → (whole, gone, rows): whole: its rows are exactly `rows` (all others deleted); else the rows to take out,
    # as (rank, id), and those to put (ItemRows). Only listings in `listings` have an entry.
    listing_items: dict[str, tuple[bool, list, ItemRows]] = field(default_factory=dict)
    # key → (its archive pages, the (page, modified, digest) rows to put): rows past the last page are deleted.
    listing_pages: dict[str, tuple[int, list]] = field(default_factory=dict)
    items: dict[str, tuple] = field(default_factory=dict)  # id → (Article, or its pickle, made_from)
    gone: dict[str, set] = field(default_factory=lambda: {"resources": set(), "listings": set(), "items": set()})
    parsed: list[tuple] = field(default_factory=list)
    # For each row of `parsed`, in order: the ItemRef its result is stored as, or None (stored whole); empty: all whole.
    parsed_refs: list["ItemRef | None"] = field(default_factory=list)
    deferred: dict[str, list] = field(default_factory=dict)  # article pages left for later builds: path → renderer entry
    recode: dict[str, tuple] = field(default_factory=dict)  # rows put without their codings, to put with them later
    later: dict[str, tuple] = field(default_factory=dict)  # rows left for a build right after this one (committer.Committer)
    previews: dict[str, tuple] = field(default_factory=dict)  # feed path → (snapshot, made_from): pages rendered for that build
    # path → (made_from, gzip, br): codings of rows already stored, put only if the row is still the one they were
    # made for; the row keeps its version (its bytes are those of the build that put it).
    codings: dict[str, tuple] = field(default_factory=dict)

    def changed_paths(self) -> list[str]:
        """The paths (and "#listing/<key>") a worker must forget when this build lands."""
        return sorted({*self.resources, *self.codings, *self.gone["resources"],
                       *("#listing/" + k for k in (*self.listings, *self.gone["listings"]))})

    def bytes_put(self) -> int:
        """The bytes of the resources this build puts (bodies and the codings made already) and of its codings."""
        return (sum(len(row[5]) + len(row[6] or b"") + len(row[7] or b"") for row in self.resources.values())
                + sum(len(gzip or b"") + len(br or b"") for _, gzip, br in self.codings.values()))

    def rows_written(self) -> int:
        """How many rows this build puts or deletes (tests count them: a build costs what changed)."""
        items = sum(len(gone) + len(rows) for _, gone, rows in self.listing_items.values())
        pages = sum(len(rows) for _, rows in self.listing_pages.values())
        return len(self.resources) + len(self.listings) + len(self.items) + items + pages + sum(map(len, self.gone.values()))


_EPOCH, _MICROSECOND = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(microseconds=1)


def microseconds(moment: datetime) -> int:
    """A moment as whole microseconds since 1970 (exact, unlike a float of seconds)."""
    return (moment - _EPOCH) // _MICROSECOND


def item_row(article) -> tuple:
    """An article's row in each listing that holds it: (rank, id, updated, categories) as listing_items keeps them."""
    return (-microseconds(article.published), article.id, microseconds(article.updated), _categories(article.categories))


def resource_row(res, made: str, *, coded: bool | None = None) -> tuple:
    """A Rendered's row in resources; coded: with both codings (made now if need be), False: with none, None: with
    those already made."""
    codings = ((res.coded("gzip"), res.coded("br")) if coded else (None, None) if coded is False
               else (res._coded.get("gzip"), res._coded.get("br")))
    return (res.etag, res.media_type, res.last_modified.isoformat(), res.max_age, json.dumps(res.headers), res.body, *codings, made)


def validators_of(res) -> str:
    """What a resource row's made_from ends with: the Rendered's validators, media type and headers."""
    return f"{res.etag} {res.http_date} {res.max_age} {res.media_type} {res.headers!r}"


def short_digest(text: str) -> str:
    """A short hash of a text: what the builder keys what it made by (code, settings, site, times)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ItemRows:
    """Articles' item_row()s, made as the commit writes them: never all held at once (a cold start's first commit at
    100,000 articles held 200,000, two listings' worth, with their copies for executemany: 40 MiB of its builder's peak)."""

    __slots__ = ("articles",)

    def __init__(self, articles: Sequence) -> None:
        self.articles = articles  # a listing's items (a tuple, never changed) or the ones that came to it

    def __len__(self) -> int:
        return len(self.articles)

    def __iter__(self) -> Iterator[tuple]:
        return map(item_row, self.articles)


@lru_cache(maxsize=4096)
def _categories(names: tuple[str, ...]) -> str:
    """listing_items' categories column: a few dozen distinct lists among 10,000 rows, each dumped once."""
    return json.dumps(list(names), separators=(",", ":"))


class StoreWriter:
    """The builder's side: commits a build in one transaction, and says what made each stored row (made_from)."""

    TABLES = {"resources": "path", "listings": "key", "items": "id"}

    def __init__(self, path: str | Path):
        self.path = Path(path)
        create_schema(self.path)
        self.conn = connect(self.path)
        self.conn.execute("PRAGMA wal_autocheckpoint=0")  # Checkpoints does it, off the commit's thread
        self.checkpoints = Checkpoints(self.path)
        self.version: int | None = None  # the last version this writer committed

    def held(self) -> dict[str, dict[str, int]]:
        """table → key → made_hash() of every row the store holds (a builder's first build compares all of them)."""
        return _held(self.conn)

    def uncoded(self, paths: Iterable[str]) -> set[str]:
        """Those of these resource rows that lack a coding: rows committed before their codings were made, by a
        builder stopped before it made them (a cold start's feeds, coded in the background)."""
        return {path for (path,) in rows_for(self.conn, "SELECT path FROM resources WHERE path IN ({marks}) "
                                                           "AND (gzip IS NULL OR br IS NULL)", paths)}

    def made_hashes(self, table: str, keys: Iterable[str]) -> dict[str, int]:
        """key → made_hash() of these rows of a table (those the store holds): a build after the first asks only
        for the rows its refresh changed."""
        column = self.TABLES[table]
        return {key: made_hash(made) for key, made in
                rows_for(self.conn, f"SELECT {column}, made_from FROM {table} WHERE {column} IN ({{marks}})", keys)}

    def commit(self, build: Build, now: datetime) -> int:
        """Write the build's rows, its changes and its builds row in one transaction; returns its version."""
        conn = self.conn
        with transaction(conn):
            version = (conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0) + 1
            conn.executemany("INSERT OR REPLACE INTO resources (path, etag, media_type, last_modified, max_age, headers, body, "
                             "gzip, br, made_from, version) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                             [(path, *row, version) for path, row in build.resources.items()])
            conn.executemany("UPDATE resources SET gzip = ?, br = ? WHERE path = ? AND made_from = ?",
                             [(gz, br, path, made) for path, (made, gz, br) in build.codings.items()])
            conn.executemany("INSERT OR REPLACE INTO listings VALUES (?,?,?,?,?)",
                             [(key, *row, version) for key, row in build.listings.items()])
            for key, (whole, gone, rows) in build.listing_items.items():
                if whole:
                    conn.execute("DELETE FROM listing_items WHERE listing = ?", (key,))
                else:
                    conn.executemany("DELETE FROM listing_items WHERE listing = ? AND rank = ? AND id = ?", [(key, *k) for k in gone])
                conn.executemany("INSERT OR REPLACE INTO listing_items VALUES (?,?,?,?,?)", ((key, *row) for row in rows))
            conn.executemany("DELETE FROM listing_items WHERE listing = ?", [(k,) for k in build.gone["listings"]])
            for key, (count, rows) in build.listing_pages.items():
                conn.execute("DELETE FROM listing_pages WHERE listing = ? AND page > ?", (key, count + 1))
                conn.executemany("INSERT OR REPLACE INTO listing_pages VALUES (?,?,?,?)", [(key, *row) for row in rows])
            conn.executemany("DELETE FROM listing_pages WHERE listing = ?", [(k,) for k in build.gone["listings"]])
            # Articles and parse results pickled one row at a time as SQLite takes them: a cold start's 10,000
            # are never all held as bytes at once beside the objects.
            conn.executemany("INSERT OR REPLACE INTO items (id, article, made_from, version) VALUES (?,?,?,?)",
                             ((id_, _pickled(article), made, version) for id_, (article, made) in build.items.items()))
            for table, key in self.TABLES.items():
                conn.executemany(f"DELETE FROM {table} WHERE {key} = ?", [(k,) for k in build.gone[table]])
            refs = build.parsed_refs if len(build.parsed_refs) == len(build.parsed) else itertools.repeat(None)
            conn.executemany("INSERT OR REPLACE INTO parsed (source, size, mtime_ns, parser_version, settings_hash, result, "
                             "placement) VALUES (?,?,?,?,?,?,?)",
                             (row[:5] + (b"" if row[5] is None else _pickled(row[5] if ref is None else ref),
                                         None if row[6] is None else _pickled(row[6]))
                              for row, ref in zip(build.parsed, refs)))
            conn.executemany("INSERT INTO changes VALUES (?, ?)", [(version, p) for p in build.changed_paths()])
            conn.execute("INSERT INTO builds VALUES (?, ?, ?)", (version, now.isoformat(), json.dumps(build.report, sort_keys=True)))
            conn.execute("DELETE FROM builds WHERE version <= ?", (version - KEEP_BUILDS,))
            conn.execute("DELETE FROM changes WHERE version <= ?", (version - KEEP_BUILDS,))
        self.version = version
        self.checkpoints.wake()
        return version


CUT_WAIT, CUT_TRIES = 0.1, 5  # seconds a checkpoint's cut of the log may hold back the next commit, and how often it tries


def held_at(path: str | Path) -> tuple[int, dict[str, dict[str, int]]]:
    """StoreWriter.held() read by another process ahead of a build (children.Ahead), with the version it is of: a
    build compares it only if that is still the latest (Committer.build). Read-only: no store is made where none is."""
    conn = connect(path, readonly=True)
    try:
        conn.execute("BEGIN")  # the version and the rows of one moment
        version = conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0
        return version, _held(conn)
    finally:
        conn.close()


def _held(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    # Row by row from the cursor, each text let go of once hashed: never all of them at once.
    return {table: {row: made_hash(made) for row, made in conn.execute(f"SELECT {column}, made_from FROM {table}")}
            for table, column in StoreWriter.TABLES.items()}


class Checkpoints:
    """The write-ahead log moved into the store's file and emptied after each build, on a thread of its own.

    SQLite's automatic checkpoint runs inside the commit that fills the log (a first build's 25-40 MB: 0.15-0.3 s of
    the builder's thread, copying and syncing) and leaves the log's bytes in place. A builder stopped soon after (a
    deploy) then leaves a log whose frames the next start copies again, whoever closes the file's last connection
    first: the master's check of the store before it starts anything, 0.33 s for 30 MB here, before the site
    answers. A TRUNCATE checkpoint copies the log and cuts it to nothing (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint),
    so a start finds none. The copy is made first without holding back the next commit (PASSIVE); the cut then waits
    at most CUT_WAIT for a commit under way or a reader still in the log, or is left to the next build's turn.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._running = self._again = False

    def wake(self) -> None:
        """A build was committed: checkpoint now, or once the checkpoint under way is done."""
        with self._lock:
            self._again = True
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="store-checkpoint", daemon=True).start()

    def _run(self) -> None:
        conn = None
        try:
            conn = connect(self.path)
            conn.execute(f"PRAGMA busy_timeout={int(CUT_WAIT * 1000)}")
            while True:
                with self._lock:
                    if not self._again:
                        self._running = False
                        return
                    self._again = False
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                for _ in range(CUT_TRIES):  # a commit or a reader held on: again a moment later, then at the next build
                    if not conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                        break
                    time.sleep(CUT_WAIT)
        except (sqlite3.Error, OSError) as exc:  # the edge where work must go on: SQLite checkpoints at the last close
            log.warning("the build store's write-ahead log could not be checkpointed (%s); it is at the next build", exc)
            with self._lock:
                self._running = False
        finally:
            if conn is not None:
                conn.close()

    def wait(self, timeout: float = 30) -> bool:
        """True once no checkpoint runs or is due (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return True
            time.sleep(0.01)
        return False


# The parse results' layout, part of every row's parser version (builder.start_building): rows that may hold an ItemRef
# are never found by code from before it (which would take the reference for a result), nor its rows by this code;
# the files are read once again after the upgrade, as after any change to the reading code.
PARSED_LAYOUT = "results-or-item-refs"


class ItemRef(NamedTuple):
    """A parse result stored as the items row it is but for its dates, not pickled and written a second time (a
    `feedsvc build` of 10,000 articles wrote 114 MB of each). Taken from the store only while that row is still made
    from the same (`made_from`: the reading code and settings, the file's content hash, path, ID, dates and
    categories); otherwise the file is read again."""

    id: str
    made_from: str
    published: datetime | None  # the result's own dates (None: the file gives none), which the row has stamped
    updated: datetime | None


def _pickled(value: Any) -> bytes:
    return value if isinstance(value, bytes) else pickle.dumps(value, protocol=5)


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


class StoreReader:
    """A serving process's side: resources by path at the latest build, hot ones kept in memory.

    The build version is looked at, at most every `interval` seconds, on a request; a new version drops
    from memory exactly the paths that build changed. Memory is bounded by `cache_bytes` of bodies.
    Each resource in memory has a dict beside it for what a server derives from it (feedsvc/serving/front.py's
    prepared headers), dropped with it.
    """

    def __init__(self, path: str | Path, *, interval: float = 0.02, cache_bytes: int = 2 << 20):
        self.path, self.interval, self.cache_bytes = Path(path), interval, cache_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[Rendered, dict]] = OrderedDict()  # path → (resource, derived from it)
        self._listings: OrderedDict[str, tuple] = OrderedDict()  # key → (head, size), the last HEADS asked
        self._bytes = 0  # bytes read from the store of the resources kept (a coding made here is not counted)
        self.version = 0
        self._checked = 0.0  # when the latest look at the version began
        self.seen = 0.0  # when the latest look that has ended began: what is in memory is at least that recent

    def _conn(self, quick: bool = False) -> sqlite3.Connection:
        """This thread's read-only connection; quick: one that never waits for a lock (busy_timeout 0)."""
        name = "quick" if quick else "conn"
        kept = getattr(self._local, name, None)
        if kept is None or kept[0] != os.getpid():
            conn = connect(self.path, readonly=True)
            if quick:
                conn.execute("PRAGMA busy_timeout=0")
            kept = (os.getpid(), conn)
            setattr(self._local, name, kept)
        return kept[1]

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
        """The items published or updated after `since` (paging.since_feed's rule), in the same order."""
        moment = microseconds(since)
        return ListingIndex(self.reader, self.key, None, self.where + " AND (rank < ? OR updated > ?)", (*self.params, -moment, moment))

    def licensed(self, categories: Iterable[str]) -> "ListingIndex":
        """The items in at least one of these categories, in the same order."""
        names = sorted(categories)
        condition = f" AND EXISTS (SELECT 1 FROM json_each(categories) WHERE value IN ({','.join('?' * len(names))}))"
        return ListingIndex(self.reader, self.key, None, self.where + condition, (*self.params, *names))

"""The store's one writer, the builder: a build's rows (Build) committed in one transaction, so a serving process reads
the old build or the new, never a mix (store.py reads them), and the write-ahead log emptied after each (Checkpoints).
"""
from __future__ import annotations

import itertools
import json
import logging
import pickle
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..model import from_microseconds, microseconds, item_place
from ..store import KEEP_BUILDS, ItemRef, connect, create_schema
from ..transactions import made_hash, rows_for, transaction

log = logging.getLogger(__name__)


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
    # The earliest time anything it shows anew (an item published, updated or recorded, a tombstone's second) is dated
    # at, for ?since= deltas (store.StoreReader.landed_after); None: it shows nothing anew (codings, pages, a rebase).
    dated: datetime | None = None

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


def item_row(article) -> tuple:
    """An article's row in each listing that holds it: (rank, id, updated, recorded, categories) as listing_items keeps them."""
    return (*item_place(article.published, article.id), microseconds(article.updated),
            microseconds(article.recorded or article.updated), _categories(article.categories))


def resource_row(res, made: str, *, coded: bool | None = None) -> tuple:
    """A Rendered's row in resources; coded: with both codings (made now if need be), False: with none, None: with
    those already made."""
    codings = ((res.coded("gzip"), res.coded("br")) if coded else (None, None) if coded is False
               else (res._coded.get("gzip"), res._coded.get("br")))
    return (res.etag, res.media_type, res.last_modified.isoformat(), res.max_age, json.dumps(res.headers), res.body, *codings, made)


def validators_of(res) -> str:
    """What a resource row's made_from ends with: the Rendered's validators, media type and headers."""
    return f"{res.etag} {res.http_date} {res.max_age} {res.media_type} {res.headers!r}"


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

    def dated(self) -> datetime | None:
        """The `dated` of the latest build that has one (None: none has): a builder's first build shows anew what changed
        since that build's refresh, some of it dated before this builder started (an embargo that ended meanwhile)."""
        row = self.conn.execute("SELECT dated FROM builds WHERE dated IS NOT NULL ORDER BY version DESC LIMIT 1").fetchone()
        return None if row is None else from_microseconds(row[0])

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
        """Write the build's rows, its changes and its builds row in one transaction; returns its version. The row
        has the build's `dated` and the moment it lands, read as its transaction ends (store.StoreReader.landed_after)."""
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
                conn.executemany("INSERT OR REPLACE INTO listing_items VALUES (?,?,?,?,?,?)", ((key, *row) for row in rows))
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
            conn.execute("DELETE FROM builds WHERE version <= ?", (version - KEEP_BUILDS,))
            conn.execute("DELETE FROM changes WHERE version <= ?", (version - KEEP_BUILDS,))
            # Last, as the build lands: a reader answered before this moment has not seen it. Not `now`, read before the
            # rows were written (a cold start's take seconds): a delta would take the build for seen that long too soon.
            landed = microseconds(datetime.now(timezone.utc))
            conn.execute("INSERT INTO builds VALUES (?, ?, ?, ?, ?)", (version, now.isoformat(), json.dumps(build.report, sort_keys=True),
                                                                       landed, None if build.dated is None else microseconds(build.dated)))
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


def _pickled(value: Any) -> bytes:
    return value if isinstance(value, bytes) else pickle.dumps(value, protocol=5)

"""The small persistent record that keeps article dates and identities stable: first seen, content
hash and updated per article ID, which file owns each ID, and each category's, tag's and author's URL slug.

Without it, an article with no `date:` would get a new date on every restart or `git clone`.
SQLite in WAL mode with a busy timeout, so several server processes can share one file.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)
# A version this far ahead of now was dated before the clock stepped back (NTP, a restored VM): a new one is dated now,
# not after it, or nothing new would be served until the clock caught up (a refresh waited out a 120 s step whole).
CLOCK_STEP = timedelta(seconds=5)


def wait_for(latest: datetime | None, now: datetime) -> float:
    """Seconds to wait before bytes dated `latest` are served (no Last-Modified later than its Date): a version dated up
    to a second ahead waits for it; none past CLOCK_STEP ahead, which only a clock stepped back leaves."""
    if latest is None or not now < latest <= now + CLOCK_STEP:
        return 0.0
    return (latest - now).total_seconds()

from ..model import Article, dated
from ..store import use_wal
from ..transactions import rows_for, setting_up

_ID = attrgetter("id")
_MICROSECOND = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated TEXT NOT NULL,  -- when the content last changed; '' while unchanged since first seen
    seen TEXT NOT NULL DEFAULT ''  -- the wall-clock time this content was recorded: no date is later
);
CREATE TABLE IF NOT EXISTS slugs (
    name TEXT PRIMARY KEY,  -- a category's name
    slug TEXT NOT NULL  -- the URL slug it was first published under, its own for good
);
CREATE TABLE IF NOT EXISTS term_slugs (
    kind TEXT NOT NULL,  -- "tag" or "author": each kind has its own slugs, apart from categories'
    name TEXT NOT NULL,  -- the tag or author as the articles name it
    slug TEXT NOT NULL,  -- the URL slug it was first published under, its own for good
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS versions (
    key TEXT PRIMARY KEY,  -- a resource's URL path, or "listing:<feed key>"
    digest TEXT NOT NULL,  -- a hash of its bytes as rendered without its own date
    modified TEXT NOT NULL  -- when those bytes were first recorded, in whole seconds: its Last-Modified
);
CREATE TABLE IF NOT EXISTS owners (
    id TEXT PRIMARY KEY,  -- an article ID
    source TEXT NOT NULL  -- the file that had it first, which keeps it while it exists
);
CREATE TABLE IF NOT EXISTS carried (
    ref TEXT PRIMARY KEY,  -- a published entry's id in the feeds (its article's guid)
    source TEXT NOT NULL,  -- the file it was read from
    listings TEXT NOT NULL,  -- JSON list of the listing keys whose feeds carry it ("" = site-wide, a category slug)
    categories TEXT NOT NULL  -- JSON list of its category names (a partner's view shows only licensed ones)
);
CREATE TABLE IF NOT EXISTS archive_cuts (
    listing TEXT PRIMARY KEY,  -- a listing key ("" = site-wide, a category slug, "tag/<slug>", "author/<slug>")
    -- JSON list of [rank, id]: the newest item's place (building/feeds.py order_key) of each frozen archive page,
    -- page 2 first (building/archive.py ArchiveCuts): where each complete page ends, for good
    bounds TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0  -- the items a page (FEED_MAX_ITEMS) they were cut for: another size cuts anew
);
CREATE TABLE IF NOT EXISTS clock (
    -- "released": the latest time an embargo was released at (the clock has been there); "first scan": the `seen` of a
    -- deployment's first scan, whose articles are news to no reader of it (Article.recorded)
    name TEXT PRIMARY KEY,
    moment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deletions (
    listing TEXT NOT NULL,  -- a listing key whose feeds carried the entry
    ref TEXT NOT NULL,  -- the entry's id
    deleted TEXT NOT NULL,  -- when it went, ISO 8601 in whole seconds, UTC
    categories TEXT NOT NULL,  -- JSON list of the categories it was in
    PRIMARY KEY (listing, ref)
);
"""


class StateError(RuntimeError):
    """The state database cannot be opened or written."""


def damaged(exc: BaseException, path: str | os.PathLike) -> str | None:
    """What to say of a state file SQLite finds damaged (not a database, a malformed page), with the fix; None for any
    other error (a read-only folder, a full disk: OperationalError)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return None
    return (f"state file {path} is damaged ({exc}); stop feedsvc, then restore it from a backup, or move it aside with its "
            "-wal and -shm files to start afresh (the articles are then dated anew, by their files' modification times)")


# A column only feedsvc's own table of that name has: a file with one of them is feedsvc's (its parts make their tables in
# any order); one whose tables have none is another program's, even with a table named as one of feedsvc's (`items`).
_OWN_COLUMNS = {"articles": "first_seen", "slugs": "slug", "versions": "digest", "builds": "committed_at",
                "resources": "made_from", "parsed": "parser_version", "websub_unsent": "url", "search_meta": "key",
                "wanted": "asked"}


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """Raise StateError for another program's SQLite database named as the state file: its tables were added to and
    every refresh failed on it ("table articles has no column named id")."""
    tables = {name: [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
              for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if tables and not any(column in tables.get(table, ()) for table, column in _OWN_COLUMNS.items()):
        raise StateError(f"state file {path} is another program's SQLite database (tables {', '.join(sorted(tables)[:5])}); "
                         "set STATE_PATH to a file of feedsvc's own, or to a new one")


WHOLE_FROM = 2000  # keys past which _select reads a whole table rather than look each up
# The writes a deployment's first build may hold back until its feeds are committed (transaction(hold=True)): every
# ID's owner and every article's first-seen row, 20,000 inserts at 10,000 articles (and the checkpoint they set off:
# 85 ms of its cold start) its feeds would wait for. Publisher._build says when.
_HELD_WRITES = {"owners": "INSERT OR REPLACE INTO owners (id, source) VALUES (?, ?)",
                "articles": "INSERT OR REPLACE INTO articles (id, first_seen, content_hash, updated, seen) VALUES (?, ?, ?, ?, ?)"}


def _unwritable(exc: Exception, path: Path) -> str | None:
    """What to fix when SQLite found the store read-only (a read-only folder that must hold its write-ahead log and
    index, the file's or the folder's permissions): lock.writable's words, which name the file or folder; else None."""
    if "readonly" not in str(exc):
        return None
    from .lock import writable

    return writable(str(path))


def state_problem(exc: BaseException, path: str | os.PathLike) -> str:
    """One line for what SQLite or the system refused of the state file, naming it and the fix: damaged, read-only
    (lock.writable's words), a full disk (or a file-size limit), else its words and where to look."""
    text = str(exc)
    if (said := damaged(exc, path) or _unwritable(exc, Path(path))) is not None:
        return said
    if "disk is full" in text or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"state file {path} cannot be written ({text}): its disk is full, or a limit on file size or disk quota "
                "holds it; free space there (or move STATE_PATH to a disk that has it)")
    if "disk I/O error" in text:  # SQLITE_IOERR: a full disk or a file-size limit too, or its log deleted, or the disk
        return (f"state file {path} cannot be written ({text}): its disk is full or failing, a limit on file size holds "
                "it, or its -wal or -shm file was removed while feedsvc ran; free space there or check the disk, and "
                "restart feedsvc if those files were removed")
    return f"state file {path}: {text}; set STATE_PATH to a writable file"


class StateStore:
    """First-seen and last-changed times per article ID, in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self.transactions = 0  # write transactions begun so far (tests: one a refresh)
        self.rolled_back = False  # the last transaction() block's writes were rolled back (see there)
        # Rows of _HELD_WRITES' tables written in a transaction(hold=True), by table and key: read as if in the file,
        # written there by the next transaction (a first build's pages, once its feeds are committed).
        self._held: dict[str, dict[str, tuple]] = {table: {} for table in _HELD_WRITES}
        self._taken: list[dict[str, dict[str, tuple]]] = []  # held rows being written: read still until committed
        self._held_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Closed here, not left to the cyclic collector (a connection and its statement cache hold each other): the
            # serving master makes this store, then forks the builder; closed after that fork, the connection's copy in
            # the builder let go of the builder's own locks on the file, and the master then deleted the write-ahead
            # log and its index under it (every write after: "disk I/O error").
            # https://sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_
            with contextlib.closing(self._connect()) as conn, conn:
                _refuse_foreign(conn, self.path)  # before anything is written to it
                use_wal(conn)
                conn.executescript(_SCHEMA)
                if "seen" not in {row[1] for row in conn.execute("PRAGMA table_info(articles)")}:  # a store from before
                    conn.execute("ALTER TABLE articles ADD COLUMN seen TEXT NOT NULL DEFAULT ''")
                if "size" not in {row[1] for row in conn.execute("PRAGMA table_info(archive_cuts)")}:
                    conn.execute("ALTER TABLE archive_cuts ADD COLUMN size INTEGER NOT NULL DEFAULT 0")
        except (OSError, sqlite3.Error) as exc:
            raise StateError(state_problem(exc, self.path)) from None

    def _kept(self) -> sqlite3.Connection:
        """This thread's own connection, kept open: an article page asks for its time on its first request."""
        kept = getattr(self._local, "conn", None)
        if kept is None or kept[0] != os.getpid():  # never a connection from before a fork
            kept = self._local.conn = (os.getpid(), self._connect())
        return kept[1]

    @contextlib.contextmanager
    def transaction(self, hold: bool = False) -> Iterator[None]:
        """Every write this thread makes inside the block in one transaction, committed at its end: a refresh's
        owners, stamps, slugs, versions and tombstones take the write lock once and sync once, not once each.

        The write lock is taken at the first write (a block that writes nothing takes none), on this thread's kept
        connection, which the block's reads use too, so they see its writes. Leaving the block by an exception
        still commits what was written (each write stands on its own, as it did in a transaction of its own); a
        write that fails rolls the whole block back, and `rolled_back` is set for the caller to forget what it
        learnt from the block's writes. Blocks nest: an inner one is part of the outer one.

        hold: the block's owners and articles rows are kept in memory, where every read of them looks (claim_ids,
        stamp, first_seen), and written by the next block, first thing: a deployment's first build commits its feeds
        before 20,000 inserts at 10,000 articles (Publisher._build). A process that ends between the two leaves
        the file with none of them, as before that first build: the next start stamps every file as a first scan
        again, by the same mtimes (its `seen` later: the one difference, a front matter `updated` between the two
        starts capped at the second)."""
        if getattr(self._local, "batch", None) is not None:
            yield
            return
        conn = self._kept()
        self._local.batch, self.rolled_back = conn, False
        taken = self._take_held()  # held by an earlier block: written in this transaction, before anything else
        try:
            if taken is not None:
                with self._writing() as batch:
                    self._write_into(batch, taken)
            self._local.hold, self._local.taken = hold, None
            yield
        finally:
            self._local.batch, self._local.hold = None, False
            try:
                if conn.in_transaction:
                    try:
                        conn.execute("COMMIT")
                    except sqlite3.Error as exc:
                        conn.rollback() if conn.in_transaction else None
                        self.rolled_back = True
                        raise StateError(f"state file {self.path}: {exc}; check that it is writable and not corrupt") from None
            finally:
                own, self._local.taken = getattr(self._local, "taken", None), None
                if hold and self.rolled_back:  # its own rows forgotten, as the caller forgets what it learnt from them
                    with self._held_lock:
                        self._held = {table: {} for table in _HELD_WRITES}
                self._settle(own, committed=not self.rolled_back, forget=True)
                self._settle(taken, committed=not self.rolled_back)

    def write_held(self) -> None:
        """Inside transaction(hold=True): write what it held so far in its transaction now, and hold nothing more."""
        self._local.hold = False
        self._local.taken = taken = self._take_held()
        if taken is not None:
            with self._writing() as conn:
                self._write_into(conn, taken)

    def _take_held(self) -> dict[str, dict[str, tuple]] | None:
        """The rows held, to be written now (None: none): the maps themselves, no copy of 100,000 rows, read still
        (_with_held) until _settle says whether they were committed."""
        with self._held_lock:
            if not any(self._held.values()):
                return None
            taken, self._held = self._held, {table: {} for table in _HELD_WRITES}
            self._taken.append(taken)
            return taken

    def _settle(self, taken: dict[str, dict[str, tuple]] | None, committed: bool, forget: bool = False) -> None:
        """Taken rows once their transaction ended: in the file, or not committed and held again (under any held
        since) unless `forget`."""
        if taken is None:
            return
        with self._held_lock:
            self._taken = [other for other in self._taken if other is not taken]
            if not committed and not forget:
                for table, rows in taken.items():
                    rows.update(self._held[table])
                    self._held[table] = rows

    @staticmethod
    def _write_into(conn: sqlite3.Connection, rows: Mapping[str, Mapping[str, tuple]]) -> None:
        for table, query in _HELD_WRITES.items():
            held = rows[table]
            if held:  # each row's text made as it is written, not all at once beside them
                conn.executemany(query, (_as_written(table, held[key]) for key in sorted(held)))

    def _put(self, conn: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
        """Write rows of a _HELD_WRITES table (sorted by key): held in memory inside transaction(hold=True)."""
        if getattr(self._local, "hold", False):
            with self._held_lock:
                self._held[table].update((row[0], row) for row in rows)
        else:
            conn.executemany(_HELD_WRITES[table], [_as_written(table, row) for row in rows])

    def _with_held(self, table: str, rows: list[tuple], keys: Iterable[str]) -> list[tuple]:
        """Rows read from the file for these keys, with the held ones (and those being written) in their place."""
        if not self._holds(table):
            return rows
        with self._held_lock:
            found = {row[0]: row for row in rows}
            for held in [*(taken[table] for taken in self._taken), self._held[table]]:  # the newest last
                found.update((key, _as_written(table, held[key])) for key in keys if key in held)
        return list(found.values())

    def _holds(self, table: str) -> bool:
        """Whether rows of this table are held, or being written."""
        return bool(self._held[table]) or any(taken[table] for taken in self._taken)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so two processes stamping
        # at once queue on the write lock (busy timeout) instead of failing with "locked".
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        with setting_up(conn):
            conn.execute("PRAGMA busy_timeout=30000")
            # WAL with synchronous=NORMAL never corrupts the file; a power cut may only forget the last
            # few first-seen stamps, which the next scan writes again. It saves an fsync per refresh.
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on a fresh connection, committed at the end of the block.

        BEGIN IMMEDIATE takes the write lock first, so processes writing at once queue on the busy
        timeout instead of failing with "locked"; a database error becomes a StateError that says the fix.
        """
        batch = getattr(self._local, "batch", None)
        if batch is not None:  # inside transaction(): its connection, its one transaction
            try:
                if not batch.in_transaction:
                    batch.execute("BEGIN IMMEDIATE")
                    self.transactions += 1
                yield batch
            except sqlite3.Error as exc:
                batch.rollback() if batch.in_transaction else None
                self.rolled_back = True
                raise StateError(f"state file {self.path}: {exc}; check that it is writable and not corrupt") from None
            return
        conn = self._connect()
        taken, committed = None, False
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.transactions += 1
            taken = self._take_held()  # a held block's rows go first, as in transaction(): a later write of one wins
            if taken is not None:
                self._write_into(conn, taken)
            yield conn
            conn.execute("COMMIT")
            committed = True
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise StateError(f"state file {self.path}: {exc}; check that it is writable and not corrupt") from None
        finally:
            conn.close()
            self._settle(taken, committed)

    def stamp(self, articles: Iterable[Article], now: datetime, appeared: Mapping[str, datetime] | None = None) -> list[Article]:
        """Give each article its published and updated times, recording new and changed content.

        A file that appears in a running deployment is news: it is first seen now. Only the first scan
        of a deployment (an empty store) dates a back catalogue by when each file appeared (`appeared`,
        its mtime), never later than now. Either way no two articles of one scan share a time.
        """
        articles = sorted(articles, key=_ID)
        appeared = appeared or {}
        moments = _Moments()
        with self._writing() as conn:
            first_scan = not self._holds("articles") and conn.execute("SELECT 1 FROM articles LIMIT 1").fetchone() is None
            if first_scan and len(set(map(_ID, articles))) == len(articles):
                return self._stamp_first(conn, articles, now, appeared, moments)
            return self._stamp_any(conn, articles, now, appeared, moments, first_scan)

    def forget_recorded(self, ids: Iterable[str]) -> None:
        """Note that these articles went: one that comes back, its content as it was, is recorded again then (its
        `seen` emptied, which the next stamp sets), so that a `?since=` delta holds it (paging.changed_after)."""
        ids = sorted(set(ids))
        if not ids:
            return
        with self._writing() as conn:
            rows = self._with_held("articles", self._select(
                conn, "SELECT id, first_seen, content_hash, updated, seen FROM articles WHERE id IN ({marks})", ids), ids)
            self._put(conn, "articles", sorted(row[:4] + ("",) for row in rows if row[4]))

    def _stamp_any(self, conn: sqlite3.Connection, articles: list[Article], now: datetime,
                   appeared: Mapping[str, datetime], moments: "_Moments", first_scan: bool) -> list[Article]:
        """stamp() of any scan, its articles sorted by ID: each row read, compared and written where it changes."""
        ids = [a.id for a in articles]
        if first_scan:
            self._note_first_scan(conn, now)
        rows = {} if first_scan else {row[0]: row for row in self._with_held("articles", self._select(
            conn, "SELECT id, first_seen, content_hash, updated, seen FROM articles WHERE id IN ({marks})", ids), ids)}
        writes = []
        seen = _text(now)
        # The times of texts this stamp made, so _dated need not read them back: each new article's first moment (by
        # ID), and `seen`, which every row it writes has.
        firsts: dict[str, datetime] = {}
        seens = {seen: datetime.fromisoformat(seen)}
        # Newest file first, so a burst of new files keeps the order they were written in.
        new = sorted((a for a in articles if a.id not in rows), key=lambda a: (appeared.get(a.id, now), a.id), reverse=True)
        bases = [min(appeared.get(a.id, now), now) for a in new] if first_scan else [now] * len(new)
        for a, first in zip(new, moments.claim_down(bases)):
            firsts[a.id] = first = first.astimezone(timezone.utc)
            rows[a.id] = (a.id, _text(first), a.content_hash, "", seen)  # "": unchanged since first seen
            writes.append(rows[a.id])
        for a in articles:
            row = rows[a.id]
            if row[2] != a.content_hash and not row[2].startswith("b:"):
                # Recorded by a feedsvc that hashed the decoded text (articles.content_hash): the new hash taken
                # over as it is, the article not called updated for it (a change made meanwhile goes unseen).
                row = (a.id, row[1], a.content_hash, row[3], row[4] or seen)
            elif row[2] != a.content_hash:
                # A change is dated when it is seen (an rsync -t copy keeps an old mtime), and always
                # after the previous one.
                previous = datetime.fromisoformat(row[3] or row[1]) + timedelta(microseconds=1)
                moment = moments.claim(max(now, previous), step=1)
                # Seen at that moment, which may be a microsecond past now (another article of this stamp has now):
                # seen at now, _dated would cap the two to one time.
                row = (a.id, row[1], a.content_hash, moment, max(seen, moment))
            elif not row[4]:  # recorded before `seen` was kept: from now on
                row = row[:4] + (seen,)
            else:
                continue
            writes.append(row)
            rows[a.id] = row
        writes.sort()  # by ID (one row each): the key's index is filled in its order, not at random (0.1 s at 100,000)
        self._put(conn, "articles", writes)
        first_seen = self._first_scan(conn)
        return [_dated(a, rows[a.id], firsts.get(a.id), seens, first_seen) for a in articles]

    def _note_first_scan(self, conn: sqlite3.Connection, now: datetime) -> None:
        """Keep the `seen` of a deployment's first scan: the articles it records were news to no one who polled before.
        Replaced, not kept: a first scan whose rows were never written (its builder stopped before its pages) is made
        again by the next start, whose rows have its own `seen`."""
        conn.execute("INSERT OR REPLACE INTO clock (name, moment) VALUES ('first scan', ?)", (_text(now),))

    def _first_scan(self, conn: sqlite3.Connection) -> str | None:
        """The `seen` of this deployment's first scan, as kept (None from a store older than it)."""
        row = conn.execute("SELECT moment FROM clock WHERE name = 'first scan'").fetchone()
        return row[0] if row else None

    def _stamp_first(self, conn: sqlite3.Connection, articles: list[Article], now: datetime,
                     appeared: Mapping[str, datetime], moments: "_Moments") -> list[Article]:
        """stamp() of a deployment's first scan (an empty store, one article an ID, sorted by ID): every article new, so
        each row is its first moment and `seen`, and no row is read or compared (a cold start's 100,000: 0.3 s less)."""
        seen = _text(now)
        seen_at = datetime.fromisoformat(seen)
        self._note_first_scan(conn, now)
        new = sorted(articles, key=lambda a: (appeared.get(a.id, now), a.id), reverse=True)
        firsts = {a.id: first.astimezone(timezone.utc)
                  for a, first in zip(new, moments.claim_down([min(appeared.get(a.id, now), now) for a in new]))}
        stamped = [_stamped(a, a.published or firsts[a.id], None, seen_at, None) for a in articles]  # unchanged since first seen
        # The rows made apart from the articles, which live on: held until the feeds are committed, then freed together,
        # not scattered among them (with the held maps no longer copied to be written, the builder's peak at 100,000
        # articles went from 401-424 to 391-404 MiB in process). By ID: the key's index is filled in its order.
        self._put(conn, "articles", [(a.id, firsts[a.id], a.content_hash, "", seen) for a in articles])  # text: _as_written
        return stamped

    def latest_seen(self) -> datetime | None:
        """The latest moment any article's content was recorded, or an embargo released at (record_release): the clock
        has been there, whatever it says now."""
        with self._writing() as conn:
            found = conn.execute("SELECT max(m) FROM (SELECT max(seen) AS m FROM articles "
                                 "UNION ALL SELECT moment FROM clock WHERE name = 'released')").fetchone()[0]
        return datetime.fromisoformat(found) if found else None

    def record_release(self, moment: datetime) -> None:
        """Note that an embargo was released at `moment` (no content recorded then: a restart with the clock set back
        would otherwise hold the article back again, withdraw it and announce it deleted)."""
        with self._writing() as conn:
            conn.execute("INSERT INTO clock (name, moment) VALUES ('released', ?) ON CONFLICT (name) DO UPDATE "
                         "SET moment = max(moment, excluded.moment)", (_text(moment),))

    def first_seen(self, ids: list[str]) -> dict[str, str]:
        """When each of these IDs was first seen (ISO 8601 text, UTC), for those the store has."""
        with self._writing() as conn:  # the refresh's own transaction (transaction()), if in one
            rows = self._with_held("articles", self._select(conn, "SELECT id, first_seen FROM articles WHERE id IN ({marks})", ids), ids)
        return {row[0]: row[1] for row in rows}

    def claim_ids(self, candidates: Mapping[str, Sequence[str]], held: Iterable[str] = ()) -> dict[str, str]:
        """The file that owns each ID: its first owner, recorded when the ID was first seen.

        candidates: ID → the files that have it now, in path order. held: files present but not
        readable now (half-written, invalid): an owner among them keeps its ID. An owner that was
        deleted, or now has another ID, hands it on to the first candidate, which is recorded.
        """
        held = set(held)
        with self._writing() as conn:
            ids = list(candidates)
            owners = dict(self._with_held("owners", self._select(conn, "SELECT id, source FROM owners WHERE id IN ({marks})", ids), ids))
            writes = []
            for id_, sources in candidates.items():
                owner = owners.get(id_)
                if owner is None or (owner not in sources and owner not in held):
                    owners[id_] = sources[0]
                    writes.append((id_, sources[0]))
            self._put(conn, "owners", writes)
        found = {}
        for id_, sources in candidates.items():
            owner = owners[id_]
            if owner is not sources[0] and owner in sources:  # the caller's own string, shared with its article: not the
                owner = sources[sources.index(owner)]  # store's copy (the builder keeps this map: 7 MB at 100,000 articles)
            found[id_] = owner
        return found

    def claim_slugs(self, names: Iterable[str], choose: Callable[[set[str], dict[str, str]], dict[str, str]]) -> dict[str, str]:
        """Each name's slug: as recorded, or as choose(names, recorded) gives it, recorded for good."""
        names = set(names)
        with self._writing() as conn:
            recorded = dict(conn.execute("SELECT name, slug FROM slugs").fetchall())
            chosen = choose(names, recorded)
            conn.executemany("INSERT OR REPLACE INTO slugs (name, slug) VALUES (?, ?)",
                             [(name, slug) for name, slug in sorted(chosen.items()) if recorded.get(name) != slug])
        return chosen

    def claim_term_slugs(self, kind: str, names: Iterable[str],
                         choose: Callable[[set[str], dict[str, str]], dict[str, str]]) -> dict[str, str]:
        """Each tag's or author's (kind) slug: as recorded, or as choose(names, recorded) gives it, recorded for good."""
        names = set(names)
        with self._writing() as conn:
            recorded = dict(conn.execute("SELECT name, slug FROM term_slugs WHERE kind = ?", (kind,)).fetchall())
            chosen = choose(names, recorded)
            conn.executemany("INSERT OR REPLACE INTO term_slugs (kind, name, slug) VALUES (?, ?, ?)",
                             [(kind, name, slug) for name, slug in sorted(chosen.items()) if recorded.get(name) != slug])
        return chosen

    def record_versions(self, digests: Mapping[str, str], now: datetime) -> dict[str, datetime]:
        """When each resource's bytes (by digest) were first recorded: its Last-Modified, whole seconds.

        The same digest keeps its time, in every worker and after restarts. A new digest is dated now
        (a key's first, a second before), and always at least a second after the previous one (If-Modified-Since has whole seconds), so a
        client holding the old time never takes the new bytes for unchanged. The time may then be up to
        a second ahead of `now`; the caller serves the new bytes only once it has come.
        """
        keys = sorted(digests)
        query = "SELECT key, digest, modified FROM versions WHERE key IN ({marks})"
        conn = self._kept()
        batch = getattr(self._local, "batch", None) is conn  # inside transaction(): its transaction, committed at its end
        try:
            rows = {row[0]: row for row in self._select(conn, query, keys)}
            if all(rows.get(k, (None, None))[1] == digests[k] for k in keys):
                return {k: datetime.fromisoformat(rows[k][2]) for k in keys}  # nothing new: no write lock
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
                self.transactions += 1
                rows = {row[0]: row for row in self._select(conn, query, keys)}  # another worker may have been first
            second = now.astimezone(timezone.utc).replace(microsecond=0)
            writes = []
            for k in keys:
                row = rows.get(k)
                if row is None or row[1] != digests[k]:
                    # Bytes never served before are dated a second back, so a change right after start-up
                    # (or a resource's first appearance) can take `second` without waiting for the next one.
                    when = second - timedelta(seconds=1) if row is None else max(second, datetime.fromisoformat(row[2]) + timedelta(seconds=1))
                    if when - second > CLOCK_STEP:  # dated before the clock stepped back: now (web.not_modified copes)
                        log.warning("%s was dated %s, %s ahead of the clock: the clock stepped back; dated %s",
                                    k, row[2], when - second, second.isoformat())
                        when = second
                    rows[k] = (k, digests[k], when.isoformat())
                    writes.append(rows[k])
            conn.executemany("INSERT OR REPLACE INTO versions (key, digest, modified) VALUES (?, ?, ?)", writes)
            if not batch:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.rollback() if conn.in_transaction else None
            self.rolled_back = self.rolled_back or batch
            raise StateError(f"state file {self.path}: {exc}; check that it is writable and not corrupt") from None
        return {k: datetime.fromisoformat(rows[k][2]) for k in keys}

    def recorded_versions(self, keys: list[str]) -> dict[str, tuple[str, datetime]]:
        """The digest and time recorded for each of these keys that has one."""
        try:
            rows = self._select(self._kept(), "SELECT key, digest, modified FROM versions WHERE key IN ({marks})", keys)
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path}: {exc}; check that it is readable and not corrupt") from None
        return {key: (digest, datetime.fromisoformat(modified)) for key, digest, modified in rows}

    # --- archive pages that keep their place (building/archive.py) ---

    def archive_bounds(self, size: int) -> dict[str, list[tuple[int, str]]]:
        """Each listing's frozen archive pages' bounds, page 2 first (ArchiveCuts), as cut for pages of `size` items:
        those cut for another size are left out (FEED_MAX_ITEMS changed: every page is cut anew)."""
        try:
            rows = self._kept().execute("SELECT listing, bounds FROM archive_cuts WHERE size = ?", (size,)).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path}: {exc}; check that it is readable and not corrupt") from None
        found = {}
        for key, text in rows:
            bounds = _bounds(text)
            if bounds is None:  # written by hand or by a bug: that feed's pages are cut by count again, not a refresh stopped
                log.warning("state file %s: archive page bounds of feed %r are not a list of [rank, id] from the oldest "
                            "page's; its archive pages are cut by count again", self.path, key)
                continue
            found[key] = bounds
        return found

    def record_bounds(self, put: Mapping[str, Sequence[tuple[int, str]]], gone: Iterable[str], size: int) -> None:
        """Record listings' frozen archive pages' bounds (cut for pages of `size` items), and forget those of listings
        that are gone."""
        with self._writing() as conn:
            conn.executemany("INSERT OR REPLACE INTO archive_cuts (listing, bounds, size) VALUES (?, ?, ?)",
                             [(key, json.dumps(bounds, ensure_ascii=False), size) for key, bounds in sorted(put.items())])
            conn.executemany("DELETE FROM archive_cuts WHERE listing = ?", [(key,) for key in sorted(gone)])
            conn.execute("DELETE FROM archive_cuts WHERE size != ?", (size,))  # cut for another size: never read again

    # --- tombstones (RFC 6721): what the feeds carried, and what went from them (feedsvc/tombstones.py) ---

    def carried(self) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """Every entry the last build published: ref → (source, listing keys, categories)."""
        try:
            rows = self._kept().execute("SELECT ref, source, listings, categories FROM carried").fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path}: {exc}; check that it is readable and not corrupt") from None
        decoded: dict[str, tuple[str, ...]] = {}  # a few dozen distinct lists among 10,000 rows: each decoded once

        def names(text: str) -> tuple[str, ...]:
            found = decoded.get(text)
            if found is None:
                found = decoded[text] = tuple(json.loads(text))
            return found
        return {ref: (source, names(keys), names(cats)) for ref, source, keys, cats in rows}

    def carries_nothing(self) -> bool:
        """Whether no entry was ever recorded as carried nor as deleted (a deployment's first build): no tombstone yet."""
        try:
            return self._kept().execute("SELECT NOT EXISTS (SELECT 1 FROM carried) AND NOT EXISTS (SELECT 1 FROM deletions)").fetchone()[0] == 1
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path}: {exc}; check that it is readable and not corrupt") from None

    def deletions(self) -> list[tuple[str, str, datetime, tuple[str, ...]]]:
        """Every recorded deletion: (listing key, ref, when, categories)."""
        try:
            rows = self._kept().execute("SELECT listing, ref, deleted, categories FROM deletions").fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path}: {exc}; check that it is readable and not corrupt") from None
        return [(key, ref, datetime.fromisoformat(when), tuple(json.loads(cats))) for key, ref, when, cats in rows]

    def record_carried(self, put: Mapping[str, tuple[str, tuple[str, ...], tuple[str, ...]]], dropped: Iterable[str],
                       deleted: Iterable[tuple[str, str, datetime, tuple[str, ...]]], returned: Iterable[str],
                       expired_before: datetime) -> None:
        """In one transaction: entries now carried (ref → source, listing keys, categories), entries no longer
        carried, deletions (listing key, ref, when, categories), refs published again (their deletions go),
        and deletions at or before `expired_before` (past the retention period) forgotten."""
        texts: dict[tuple[str, ...], str] = {}  # a few dozen distinct lists among 10,000 rows at a cold start

        def text(names: tuple[str, ...]) -> str:
            found = texts.get(names)
            if found is None:
                found = texts[names] = json.dumps(names, ensure_ascii=False)
            return found

        with self._writing() as conn:
            conn.executemany("INSERT OR REPLACE INTO carried (ref, source, listings, categories) VALUES (?, ?, ?, ?)",
                             [(ref, source, text(keys), text(cats)) for ref, (source, keys, cats) in sorted(put.items())])
            conn.executemany("DELETE FROM carried WHERE ref = ?", [(ref,) for ref in sorted(dropped)])
            conn.executemany("INSERT OR REPLACE INTO deletions (listing, ref, deleted, categories) VALUES (?, ?, ?, ?)",
                             [(key, ref, _text(when), json.dumps(cats, ensure_ascii=False)) for key, ref, when, cats in deleted])
            conn.executemany("DELETE FROM deletions WHERE ref = ?", [(ref,) for ref in sorted(returned)])
            conn.execute("DELETE FROM deletions WHERE deleted <= ?", (_text(expired_before),))

    @staticmethod
    def _select(conn: sqlite3.Connection, query: str, keys: list[str]) -> list[tuple]:
        """Rows for many keys (the first column), as transactions.rows_for asks for them; past
        WHOLE_FROM keys, the whole table read once and filtered here (a fresh process asks for every article:
        one scan takes a third of the time of twenty lookups)."""
        if len(keys) > WHOLE_FROM:
            wanted = set(keys)
            return [row for row in conn.execute(query.partition(" WHERE ")[0]) if row[0] in wanted]
        return list(rows_for(conn, query, keys))


def _bounds(text: str) -> list[tuple[int, str]] | None:
    """A listing's stored archive bounds (archive_cuts), or None when they are not [rank, id] pairs, each page's newer
    than the one before (order_key descending)."""
    try:
        bounds = [(rank, id_) for rank, id_ in json.loads(text)]
    except (ValueError, TypeError):
        return None
    if not all(type(rank) is int and isinstance(id_, str) for rank, id_ in bounds):
        return None
    if any(newer >= older for older, newer in zip(bounds, bounds[1:])):
        return None
    return bounds


class _Moments:
    """Hands out timestamps no other article of this scan got, stepping by microseconds from a base.

    Two entries with one `updated` make readers (and the W3C validator) treat them as duplicates.
    New articles step back, never past `now`, or they would look embargoed for a microsecond.
    """

    def __init__(self) -> None:
        self.taken: set[datetime] = set()
        self.steps: dict[tuple[datetime, int], int] = {}  # (base, direction) → steps used so far

    def claim_down(self, bases: Sequence[datetime]) -> list[datetime]:
        """claim(base) of each base in turn, bases that never rise, as the first claims: each moment is its base, or a
        microsecond before the moment handed out last when that is not earlier. Every moment handed out before is at
        or after the last, and the ones between it and its base were handed out: claim would step down to the same
        moment, but looking each one up (a cold start's 100,000 articles: 0.2 s more). As moments, not texts."""
        if self.taken:
            raise ValueError("claim_down makes the first claims only")
        moments: list[datetime] = []
        last = None
        for base in bases:
            last = base if last is None or base < last else last - _MICROSECOND
            moments.append(last)
        self.taken.update(moments)
        return moments

    def claim(self, base: datetime, step: int = -1) -> str:
        """The first free moment at base, base+step, base+2·step, … as ISO 8601 text."""
        n = self.steps.get((base, step), 0)
        moment = base + timedelta(microseconds=n * step)
        while moment in self.taken:  # rare: another base landed here
            n += 1
            moment = base + timedelta(microseconds=n * step)
        self.steps[(base, step)] = n + 1
        self.taken.add(moment)
        return _text(moment)


def _dated(article: Article, row: tuple, first: datetime | None, seens: dict[str, datetime], first_scan: str | None) -> Article:
    """The article with its dates from its row; first: row[1] as a time, where known; seens: `seen` texts as times,
    those read here added (a stamp reads thousands of rows of a few `seen` values); first_scan: the first scan's `seen`."""
    seen = seens.get(row[4])
    if seen is None:
        seen = seens[row[4]] = datetime.fromisoformat(row[4])
    return _stamped(article, article.published or first or datetime.fromisoformat(row[1]),
                    datetime.fromisoformat(row[3]) if row[3] else None, seen, None if row[4] == first_scan else seen)


def _stamped(article: Article, published: datetime, changed: datetime | None, seen: datetime,
             recorded: datetime | None) -> Article:
    """The article published then, updated when its content last changed (changed; None: unchanged since first seen),
    never later than when that content was recorded (seen), never before it was published; recorded: when it was news
    to this deployment's readers (None: at its first scan, to none: a delta goes by its dates, paging.changed_after)."""
    # Content unchanged since first seen: updated is the published time, so a fresh clone with a
    # dated article gives the same feed as the server that has run for a year.
    # A front matter `updated` later than when this content was recorded (2099-01-01) is not believed:
    # it would sort the item first for ever and date the feed in the future.
    return dated(article, published, max(min(article.updated or changed or published, seen), published), recorded)


def _as_written(table: str, row: tuple) -> tuple:
    """A row as the file has it: a first scan's articles row holds its first-seen time as a datetime until it is
    written or read (its ISO 8601 text, 1 µs a row, made after a first build's feeds, not before: StateStore._put)."""
    if table == "articles" and type(row[1]) is datetime:
        return (row[0], _text(row[1]), *row[2:])
    return row


def _text(moment: datetime) -> str:
    """A moment as the state file keeps it: ISO 8601 text in UTC, to the microsecond (every time column)."""
    return (moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)).isoformat(timespec="microseconds")

"""Search's index: SQLite FTS5 in the build store beside the stored articles, over the text as searchtext.py
normalises it; kept by the builder (SearchIndexer, a refresh observer), read by every serving process
(SearchIndex). Neutral like store.py: imports nothing of reading, building or serving.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import unicodedata
import zlib
from itertools import compress
from operator import is_not, itemgetter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from . import allocator
from .searchtext import SPLITS, TABLE, TOKENIZER, match_expression, normalise
from .transactions import made_hash, transaction

FIELDS = ("title", "body", "terms")  # terms: categories, tags and author

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS search_docs (
    rowid INTEGER PRIMARY KEY,  -- the same rowid as the article's row in search_text
    id TEXT NOT NULL UNIQUE,  -- a live article's ID
    published INTEGER NOT NULL,  -- microseconds since 1970: newest first, as the feeds order
    made_from TEXT NOT NULL,  -- what the row was made from (made_from()): unchanged articles are not indexed again
    words BLOB NOT NULL  -- the FIELDS as indexed, JSON, zlib: what FTS5 needs to take the row out again
);
-- Contentless (content=''): the index keeps no copy of the text (61 MB at 10,000 articles), only its words.
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5({", ".join(FIELDS)}, content='', tokenize="{TOKENIZER}");
CREATE TABLE IF NOT EXISTS search_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# The index is made again from the live articles when what it was made with changes.
VERSION = hashlib.sha256(repr((sorted(TABLE.items()), TOKENIZER, FIELDS, "NFKC casefold", "contentless", SPLITS, "summary in body",
                               unicodedata.unidata_version)).encode()).hexdigest()[:16]
CHUNK = 200  # articles indexed in one transaction (about 0.1 s): the builder's own commits never wait long
# Articles indexed in one sync from which the memory their texts took is given back at its end (allocator.trim): a cold
# start's background step (500), not a saved file. A settled 100,000-article builder held 35 MiB more without.
TRIM_FROM = 100
_EPOCH, _MICROSECOND = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(microseconds=1)
_NEWEST = itemgetter(0, 1)  # (published, id): newest first once reversed, equal times by ID as the feeds order

log = logging.getLogger(__name__)


class IndexBehindError(Exception):
    """The index does not hold the latest build's articles yet (a cold start indexes them all): try again soon."""


def document(article) -> tuple[str, str, str]:
    """An article's fields as the index holds them (FIELDS)."""
    terms = " ".join((*article.categories, *article.tags, *((article.author,) if article.author else ())))
    # The summary with the body: a front matter `summary:` is what readers see of the item, words the body may not have.
    written = article.summary and article.summary.removesuffix("…") not in article.body_text  # not the body's own lead, cut
    body = f"{article.body_text}\n{article.summary}" if written else article.body_text
    return normalise(article.title), normalise(body), normalise(terms)


def create_index(conn: sqlite3.Connection) -> None:
    """The index's tables, if missing (store.create_schema() calls this)."""
    conn.executescript(SCHEMA)


def made_from(article) -> str:
    """What an article's index row depends on: its file's text (content_hash), its place and its date."""
    return f"{article.content_hash} {article.published.isoformat()} {article.source}"


class SearchIndexer:
    """The builder's side: an observer of each refresh (site.Publisher.observers) that brings the index to the
    refresh's live articles in a background thread, so a refresh never waits for it.

    Only articles whose made_from() changed are indexed again, and only those gone are dropped: one saved file
    is one row out and one in. A cold start (every article new) is indexed newest first, CHUNK to a transaction.
    When the index holds a refresh's articles, it records that refresh's site-wide listing time (the `listing`
    row of search_meta): a serving process answers a search only when that is the time of the listing it
    serves, so an answer is always the build's articles, as the build has them (SearchIndex.holds).
    Only live articles are ever indexed (snapshot.articles): never a draft, never an article before its embargo
    ends, and an article withdrawn or made a draft again leaves the index with the refresh that withdrew it.
    """

    def __init__(self, path: str | Path, full: Callable[[Any], Any] | None = None,
                 unread: Callable[[Any], bool] | None = None, made_by: str = ""):
        self.path = Path(path)
        # What the index is made with besides its own rules (VERSION): the code and settings that read the articles
        # (building/builder.py), whose text a reading rule changed (a footnote's "↩2" left): another, and it is made anew.
        self.version = f"{VERSION} {made_by}".strip()
        # The builder holds most articles as placements, without their text (building/site.py load_full): `full`
        # gives an article with its text, or None while it is not read yet (then it is indexed once it is), and
        # `unread` says so at once: a cold start's background syncs once per step, each past up to 100,000 of them.
        self.full = full
        self.unread = unread or (lambda article: False)
        self._wanted: tuple = (None, None)  # the latest refresh's live articles (id → Article) and listing time
        self._asked = self._done = 0  # syncs asked for, and done (or failed)
        # id → made_hash() of made_from, as the index holds them (None: read it): an int, not the text, 180 bytes an article
        # less (18 MiB at 100,000). Python's str hash, this process's, never stored; two texts of one ID with one
        # 64-bit hash (a change left unindexed) are a 2**-64 chance.
        self._indexed: dict[str, int] | None = None
        self._objects: dict[str, object] = {}  # id → the Article object last indexed (unchanged objects: no hash)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.indexed = 0  # articles indexed since start (for tests and measurements)
        self.failed = False  # the last sync failed: the next refresh tries again even if nothing changed

    def observe(self, refreshed) -> None:
        """Publisher observer: index this refresh's live articles (in the background)."""
        if not refreshed.ok:
            return
        snapshot = refreshed.snapshot
        when = snapshot.changed.get("")
        wanted = (snapshot.articles, None if when is None else when.isoformat())
        with self._cond:
            if wanted[0] is self._wanted[0] and wanted[1] == self._wanted[1] and not self.failed:
                return
            self._wanted, self.failed = wanted, False
            self._asked += 1
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="search-index", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the index holds the latest refresh's articles; True if it does (tests, tools)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done == self._asked, timeout) and not self.failed

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._done != self._asked)
                wanted, asked = self._wanted, self._asked
            try:
                self.sync(*wanted)
            except Exception:  # the edge where work must go on: the next refresh tries again, from what the store holds
                log.exception("the search index could not be updated; the next refresh tries again")
                self._indexed, self._objects, self.failed = None, {}, True
            with self._cond:
                self._done = asked
                self._cond.notify_all()

    def sync(self, articles: Mapping[str, object], listing: str | None) -> None:
        """Bring the index to exactly these live articles (id → Article), newest first, CHUNK to a transaction,
        then record the site-wide listing time (ISO 8601) they are the articles of."""
        if self._conn is None:
            from .store import connect

            self._conn = connect(self.path)
            create_index(self._conn)
        conn = self._conn
        if self._indexed is None:
            self._indexed = self._held(conn)
        indexed, objects = self._indexed, self._objects
        put = []
        # Only the articles that are not the objects last indexed (a C loop: one saved file is one or two here).
        ids = list(articles)
        # After a cold start most are placements not read yet: one the index never held is passed over until it is
        # read (one the index holds is taken out: its text changed), and a row of `put` holds no made_from text.
        unread = self.unread
        for id_ in compress(ids, map(is_not, map(objects.get, ids), articles.values())):
            article = articles[id_]
            if id_ not in indexed and unread(article):
                objects[id_] = article  # last looked at: passed over again only once it is another object
                continue
            if indexed.get(id_) != made_hash(made_from(article)):
                put.append((article.published, id_, article))
            else:
                objects[id_] = article
        put.sort(key=_NEWEST, reverse=True)
        gone = sorted(indexed.keys() - articles.keys())
        for start in range(0, max(len(put), 1 if gone else 0), CHUNK):
            chunk = put[start:start + CHUNK]
            with transaction(conn):
                for id_ in [*(gone if start == 0 else ()), *(row[1] for row in chunk)]:
                    if id_ in indexed:  # else the index has no row of it (one SELECT less for each article not read yet)
                        _delete(conn, id_)
                taken = []  # (id, article, hash of made_from) of each row put in, recorded once the chunk commits
                for _, id_, article in chunk:
                    whole = article if self.full is None else self.full(article)
                    if whole is None:
                        continue
                    made = made_from(article)
                    published = (article.published - _EPOCH) // _MICROSECOND
                    fields = document(whole)
                    words = zlib.compress(json.dumps(fields, ensure_ascii=False).encode("utf-8"), 1)
                    rowid = conn.execute("INSERT INTO search_docs (id, published, made_from, words) VALUES (?, ?, ?, ?)",
                                         (id_, published, made, words)).lastrowid
                    conn.execute("INSERT INTO search_text (rowid, title, body, terms) VALUES (?, ?, ?, ?)", (rowid, *fields))
                    taken.append((id_, article, made_hash(made)))
            if start == 0:
                for id_ in gone:
                    indexed.pop(id_, None)
                    objects.pop(id_, None)
            for _, id_, _ in chunk:  # each taken out above, and put back only when read
                indexed.pop(id_, None)
            for id_, article, made in taken:
                indexed[id_], objects[id_] = made, article
            self.indexed += len(taken)
        for id_ in objects.keys() - articles.keys():
            del objects[id_]
        with transaction(conn):  # the articles are all in: now say whose they are
            conn.execute("INSERT OR REPLACE INTO search_meta VALUES ('listing', ?)", (listing or "",))
            conn.execute("UPDATE search_meta SET value = value + 1 WHERE key = 'generation'")
        if len(put) >= TRIM_FROM:  # the texts it loaded and indexed, given back now (the builder trims at its commits only)
            allocator.trim()

    def _held(self, conn: sqlite3.Connection) -> dict[str, int]:
        """What the index holds (id → hash of made_from); emptied first when it was made by other rules (or never)."""
        with transaction(conn):
            row = conn.execute("SELECT value FROM search_meta WHERE key = 'version'").fetchone()
            if row is None or row[0] != self.version:
                conn.execute("INSERT INTO search_text (search_text) VALUES ('delete-all')")
                conn.execute("DELETE FROM search_docs")
                conn.execute("DELETE FROM search_meta WHERE key = 'listing'")
                conn.execute("INSERT OR REPLACE INTO search_meta VALUES ('version', ?)", (self.version,))
                conn.execute("INSERT OR IGNORE INTO search_meta VALUES ('generation', 0)")
                conn.execute("UPDATE search_meta SET value = value + 1 WHERE key = 'generation'")
            held = {id_: made_hash(made) for id_, made in conn.execute("SELECT id, made_from FROM search_docs")}
        return held


def _delete(conn: sqlite3.Connection, id_: str) -> None:
    """Take an article's row out; a contentless FTS5 table is told the very words it was given.
    https://www.sqlite.org/fts5.html#the_delete_command"""
    found = conn.execute("SELECT rowid, words FROM search_docs WHERE id = ?", (id_,)).fetchone()
    if found is not None:
        fields = json.loads(zlib.decompress(found[1]))
        conn.execute("INSERT INTO search_text (search_text, rowid, title, body, terms) VALUES ('delete', ?, ?, ?, ?)",
                     (found[0], *fields))
        conn.execute("DELETE FROM search_docs WHERE rowid = ?", (found[0],))


class SearchIndex:
    """A serving process's side: the IDs of the newest live articles matching a query."""

    def __init__(self, path: str | Path, full: Callable[[Any], Any] | None = None):
        self.path = Path(path)
        # The builder holds most articles as placements, without their text (building/site.py load_full): `full`
        # gives an article with its text, or None while it is not read yet (then it is indexed once it is).
        self.full = full
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        from .store import connect

        kept = getattr(self._local, "conn", None)
        if kept is None or kept[0] != os.getpid():
            kept = self._local.conn = (os.getpid(), connect(self.path, readonly=True))
        return kept[1]

    def holds(self, listing: datetime) -> bool:
        """Whether the index holds the articles of the build whose site-wide listing changed at this time."""
        try:
            row = self._conn().execute("SELECT value FROM search_meta WHERE key = 'listing'").fetchone()
        except sqlite3.OperationalError:  # a store made before search existed, not built since
            return False
        return row is not None and row[0] == listing.isoformat()

    def generation(self) -> int:
        """A number that moves on whenever the index changes: one row read, so an answer kept for the last
        generation is never served after the index moved (a search costs far more than this read)."""
        try:
            row = self._conn().execute("SELECT value FROM search_meta WHERE key = 'generation'").fetchone()
        except sqlite3.OperationalError:  # a store made before search existed, not built since
            return 0
        return int(row[0]) if row else 0

    def newest(self, query: str, limit: int) -> list[str]:
        """The IDs of the newest `limit` articles holding every word of the query, newest first (equal times by
        ID, as the feeds order them). Raises QueryError for a query that cannot be run."""
        expression = match_expression(query)
        try:
            rows = self._conn().execute(
                "SELECT d.id FROM search_text JOIN search_docs AS d ON d.rowid = search_text.rowid "
                "WHERE search_text MATCH ? ORDER BY d.published DESC, d.id LIMIT ?", (expression, limit)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        return [row[0] for row in rows]

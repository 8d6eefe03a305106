"""The parse store: each file's parse result keyed by what it was made from, in the build store's file, so a restart
reads again only the files whose stat changed, and a big one holds their placements alone (building/builder.py).
"""
from __future__ import annotations

import logging
import pickle
import threading
from pathlib import Path
from typing import Any, Iterable

from ..model import dated
from ..reading.folder import shown
from ..store import ItemRef, connect, create_schema
from ..transactions import rows_for

log = logging.getLogger(__name__)


class ParsedCache:
    """Each file's parse result keyed by (source, size, mtime_ns, parser version, settings hash).

    Two settings hashes: site_hash covers the site's URL too, settings_hash does not. A result that names the site
    (model.names_site: a Markdown file's links, a relative `image:`) is kept under site_hash, any
    other under settings_hash, so a deployment that moves to another URL reads again only the files that name it.

    get() answers from the store; put() keeps a result until the next build commits it (Build.parsed).
    placed() answers with the results' placements only (no text), which is all a restart of a big folder holds.
    `read` counts the files actually read since start, which is what a restart over an unchanged folder
    must keep at 0; `loaded` counts the full results taken from the store (a restart that holds placements
    loads only those a refresh renders).
    """

    def __init__(self, path: str | Path, parser_version: str, settings_hash: str, site_hash: str | None = None):
        self.path, self.parser_version, self.settings_hash = Path(path), parser_version, settings_hash
        self.site_hash = site_hash or settings_hash
        self._keys = (parser_version, settings_hash, self.site_hash)  # the parameters of every lookup
        create_schema(self.path)
        self._conn = connect(self.path, readonly=True)
        self._lock = threading.Lock()
        self._pending: dict[str, tuple] = {}
        self._flight: dict[str, tuple] = {}  # taken, not yet committed
        self._first: dict[str, tuple] | None = None  # every stored result, until handed out
        self._placements: dict[str, tuple] | None = None  # every stored placement, until handed out
        self.read = 0
        self.loaded = 0
        self.unreadable = 0  # stored rows that could not be loaded (_unpickled): their files are read again

    def get(self, source: str, stat: tuple[int, int]) -> Any | None:
        """The stored result for this file as it is now (same stat, parser and settings), else None.

        The first call loads every result of this parser and these settings in one query (a restart of a small
        folder asks for all of them), unless placed() was asked first (a restart of a big one then asks for a
        few: one query each); each is handed out once, then asked of the store again.
        """
        pending = self._pending.get(source) or self._flight.get(source)
        if pending is not None and tuple(pending[1:3]) == stat:  # read now, not committed yet (None: placed only)
            return pending[5]
        with self._lock:
            if self._first is None and self._placements is None:
                self._first = self._load("result")
            row = None if self._first is None else self._first.pop(source, None)
            if row is None:
                row = self._conn.execute("SELECT size, mtime_ns, result FROM parsed WHERE source = ? AND parser_version = ? "
                                         "AND settings_hash IN (?, ?)", (source, *self._keys)).fetchone()
        if row is None or tuple(row[:2]) != stat or not row[2]:  # empty: placed only
            return None
        loaded = self._unpickled(row[2], source)
        result = None if loaded is _UNREADABLE else self._resolved({source: loaded}).get(source)
        self.loaded += result is not None
        return result

    def previous(self, source: str) -> tuple[tuple[int, int], Any] | None:
        """(stat, result) of the file as it was last read and stored, whatever its stat now: the version published before
        this process started, of a file being written again (held back: it stays published meanwhile); None if none."""
        pending = self._pending.get(source) or self._flight.get(source)
        if pending is not None:
            stat = tuple(pending[1:3])
        else:
            with self._lock:
                row = None if self._first is None else self._first.get(source)
                if row is None:
                    row = self._conn.execute("SELECT size, mtime_ns FROM parsed WHERE source = ? AND parser_version = ? "
                                             "AND settings_hash IN (?, ?)", (source, *self._keys)).fetchone()
            if row is None:
                return None
            stat = tuple(row[:2])
        result = self.get(source, stat)
        return None if result is None else (stat, result)

    def get_all(self, stats: Iterable[tuple[str, tuple[int, int]]]) -> dict[str, Any]:
        """get() of many files (source, stat) at once: source → result for each stored (or read) at that stat. Those
        not loaded yet are asked in one query a few hundred (the first pages' thousand articles after placed())."""
        found: dict[str, Any] = {}
        wanted: dict[str, tuple[int, int]] = {}
        for source, stat in stats:
            pending = self._pending.get(source) or self._flight.get(source)
            if pending is not None and tuple(pending[1:3]) == stat and pending[5] is not None:
                found[source] = pending[5]
            elif pending is None or tuple(pending[1:3]) != stat:
                wanted[source] = stat
        rows: dict[str, tuple] = {}
        if not wanted:
            return found
        with self._lock:
            if self._first is None and self._placements is None:
                self._first = self._load("result")
            if self._first is not None:
                rows = {source: row for source in wanted if (row := self._first.pop(source, None)) is not None}
            asked = [source for source in wanted if source not in rows]
            rows.update((row[0], row[1:]) for row in rows_for(
                self._conn, "SELECT source, size, mtime_ns, result FROM parsed WHERE parser_version = ? AND settings_hash IN (?, ?) "
                "AND source IN ({marks})", asked, self._keys))
        loaded = {source: self._unpickled(result, source) for source, (size, mtime_ns, result) in rows.items()
                  if wanted[source] == (size, mtime_ns) and result}
        results = self._resolved({source: result for source, result in loaded.items() if result is not _UNREADABLE})
        self.loaded += len(results)
        return found | results

    def _resolved(self, results: dict[str, Any]) -> dict[str, Any]:
        """These results (source → what its row held), each ItemRef replaced by its items row dated back as read, or
        dropped where that row is gone or made from other things now (the file is read again)."""
        refs = {source: ref for source, ref in results.items() if type(ref) is ItemRef}
        if not refs:
            return results
        with self._lock:
            rows = {id_: (made, article) for id_, made, article in rows_for(
                self._conn, "SELECT id, made_from, article FROM items WHERE id IN ({marks})", {ref.id for ref in refs.values()})}
        for source, ref in refs.items():
            row = rows.get(ref.id)
            article = _UNREADABLE if row is None or row[0] != ref.made_from else self._unpickled(row[1], source)
            if article is _UNREADABLE:
                del results[source]
            else:
                results[source] = dated(article, ref.published, ref.updated)
        return results

    def _unpickled(self, blob: bytes, source: str) -> Any:
        """A stored row's object, or _UNREADABLE. The parse store only saves reading a file again, so a row it cannot
        load is a miss, never a failed refresh: written by a feedsvc whose classes have since moved or changed shape
        (an `ItemRef` pickled as `feedsvc.store.ItemRef`, loaded by code that keeps it elsewhere), or damaged on disk."""
        try:
            return pickle.loads(blob)
        except Exception as exc:  # noqa: BLE001 - pickle raises whatever loading the stored class raises
            self._unreadable(source, exc)
            return _UNREADABLE

    def _unreadable(self, source: str, exc: Exception) -> None:
        """Count a row that cannot be loaded; say so once a process (an upgrade may make every row one)."""
        self.unreadable += 1
        (log.warning if self.unreadable == 1 else log.debug)(
            "the stored parse result of %s cannot be loaded (%s: %s); its file is read again%s", shown(source),
            type(exc).__name__, exc, ", and so is any other such file (logged at debug level)" if self.unreadable == 1 else "")

    def placed(self, stats: Iterable[tuple[str, tuple[int, int]]]) -> "Placements":
        """The stored placements of these files (source, stat) as they are now (a Skipped result as it is; a result
        stored without one comes whole): source → placement, and in `.unread` those stored without a full result
        (placed only). The first call loads every placement in one query; each is handed out once. All at once, not
        a call a file: a fresh process's first scan asks of 10,000."""
        stats = list(stats)
        found = Placements()
        if self._pending or self._flight:
            for source, stat in stats:
                pending = self._pending.get(source) or self._flight.get(source)
                if pending is not None and tuple(pending[1:3]) == stat:
                    found[source] = pending[5] if pending[6] is None else pending[6]
                    if pending[5] is None:
                        found.unread.add(source)
        with self._lock:
            if self._placements is None:
                self._placements = self._load("COALESCE(placement, result), length(result) = 0")
            rows = self._placements
            if not rows:  # a cold start: nothing stored to look each file up in (0.2 s of 100,000 lookups)
                return found
            taken = [(source, stat, rows.pop(source, None)) for source, stat in stats if source not in found]
        loads = pickle.loads
        for source, (size, mtime_ns), row in taken:
            if row is not None and row[0] == size and row[1] == mtime_ns:
                try:  # inline, not _unpickled: a restart's 100,000 placements
                    found[source] = loads(row[2])
                except Exception as exc:  # noqa: BLE001 - as _unpickled: the file is read again
                    self._unreadable(source, exc)
                    continue
                if row[3]:
                    found.unread.add(source)
        return found

    def _load(self, column: str) -> dict[str, tuple]:
        """source → (size, mtime_ns, pickle, …) of every stored row of this parser and these settings."""
        return {row[0]: row[1:] for row in self._conn.execute(
            f"SELECT source, size, mtime_ns, {column} FROM parsed WHERE parser_version = ? AND settings_hash IN (?, ?)",
            self._keys)}

    def put(self, source: str, stat: tuple[int, int], result: Any, placement: Any = None, names_site: bool = True) -> None:
        """Note a file read now, and the placement cut from its result (None: the result is small as it is); taken
        into the next build. names_site=False: the result is the same at any site URL (kept under settings_hash)."""
        self.read += 1
        key = self.site_hash if names_site else self.settings_hash
        self._pending[source] = (source, *stat, self.parser_version, key, result, placement)  # pickled as committed

    def put_placement(self, source: str, stat: tuple[int, int], placement: Any, names_site: bool = True) -> None:
        """Note a file read for placement only (a cold start's past the first pages): a restart before the background
        reads it in full places it from the store, and reads it then; get() does not give it."""
        self.put(source, stat, None, placement, names_site)

    @property
    def waiting(self) -> bool:
        """Whether results were noted that no build has taken yet."""
        return bool(self._pending)

    def take(self) -> list[tuple]:
        """The rows noted since the last take(), for Build.parsed; get() still finds them until landed()."""
        pending, self._pending = self._pending, {}
        rows = list(pending.values())
        self._flight.update((row[0], row) for row in rows)
        return rows

    def landed(self, rows: list[tuple]) -> None:
        """These taken rows are in the store now (or lost with a failed build: then the files are read again)."""
        for row in rows:
            if self._flight.get(row[0]) is row:
                del self._flight[row[0]]


class Placements(dict):
    """ParsedCache.placed(): source → placement, and the sources stored without a full result (`unread`)."""

    def __init__(self) -> None:
        super().__init__()
        self.unread: set[str] = set()


_UNREADABLE = object()  # what ParsedCache._unpickled gives for a stored row it cannot load

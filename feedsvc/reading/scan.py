"""Incremental reading of the articles folder: stat every file, parse only new or changed ones,
and hold back a file that is still being written until it is complete (closed, or settled).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..model import Article
from .articles import Options, Skipped
from .folder import Folder
from .pool import POOL_FROM, read_files

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.3  # a file changed more recently than this may still be being written (when the kernel cannot say)
BUSY_HOLD_SECONDS = 10.0  # a file open for writing but unchanged this long is read anyway: its writer never closes it
COMPLETE_EVENTS = frozenset({"closed", "moved"})  # what a watcher saw last of a file that is complete (scheduler.py)


@dataclass(frozen=True)
class ScanResult:
    """What one scan found: the articles read, skipped files, what moved, and when each article's file was modified."""

    articles: tuple[Article, ...]  # in path order; an ID may repeat (see unique_ids)
    skipped: tuple[Skipped, ...]
    changed: frozenset[str] = frozenset()  # sources added, changed or removed since the last scan
    pending: frozenset[str] = frozenset()  # sources still being written: looked at again shortly
    modified: Mapping[str, float] = field(default_factory=dict)  # source → its mtime (Unix seconds) when it was read


@dataclass
class _Entry:
    stat: tuple[int, int]  # (size, mtime_ns) when it was read
    result: Article | Skipped


@dataclass
class Scanner:
    """Remembers every file's stat and parse result between scans of one folder."""

    root: Path
    options: Options
    settle: float = SETTLE_SECONDS
    clock: Callable[[], float] = time.time
    pool_from: int = POOL_FROM  # files to read in one scan from which worker processes read them
    parsed: Any = None  # a store of parse results by (source, stat): get(source, stat) / put(source, stat, result)
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _passed: tuple[Skipped, ...] = ()
    _passed_by_source: dict[str, Skipped] = field(default_factory=dict)
    _looks: dict[str, tuple[tuple[int, int], float]] = field(default_factory=dict)  # files held back: stat, since when
    _last: tuple | None = None  # (articles, skipped, modified) of the last scan, reused when nothing changed
    _modified: dict[str, float] = field(default_factory=dict)  # each article's file: its mtime when it was read

    def scan(self, hints: Iterable[str] | None = None) -> ScanResult:
        """Look at the folder; read only files whose size or mtime changed and that have settled.

        hints: absolute paths a file watcher saw change since the last scan. Then only those (and files
        still settling) are looked at, instead of a walk of the whole folder; a folder among them, or
        no earlier scan, means a full walk. A mapping of path → what the watcher saw last may say a file
        is complete: "closed" (closed after writing, inotify IN_CLOSE_WRITE) or "moved" (renamed into
        place); such a file is read at once, with no settle wait (see _ready for the rest).
        """
        if not self.root.is_dir():
            raise FileNotFoundError(f"articles folder {self.root} does not exist; set ARTICLES_DIR or create it")
        folder = Folder(self.root)  # its real path, resolved once per scan
        targets = None if hints is None or self._last is None else self._targets(folder, hints)
        finished = self._finished(folder, hints)
        if targets is None:
            files, passed = folder.walk()
            listing = {source: (size, mtime_ns) for source, size, mtime_ns in files}
            gone = [s for s in self._entries if s not in listing]
            noted = self._note_passed(passed)
        else:
            listing, gone, noted = {}, [], dict(self._passed_by_source)
            for source in targets | set(self._looks):
                looked = folder.look(source)  # the walk's rule, for one file
                noted.pop(source, None), noted.pop(source + "/", None)
                if isinstance(looked, tuple):
                    listing[source] = looked
                    continue
                if isinstance(looked, Skipped):
                    noted[source + "/" if looked.source.endswith("/") else source] = looked
                if source in self._entries:
                    gone.append(source)
            noted = self._note_passed(noted)
        now = self.clock()
        changed: set[str] = set(gone) | noted
        pending: set[str] = set()
        batch: list[tuple[str, tuple[int, int], bool]] = []  # (source, stat, whether an open writer holds it back)
        read: list[tuple[str, tuple[int, int], Article | Skipped]] = []  # results taken, stored or read now
        for source, stat in listing.items():
            entry = self._entries.get(source)
            if entry is not None and entry.stat == stat:
                continue
            # Parsed before with this very stat (a restart): the stored result, without reading the file.
            known = None if self.parsed is None else self.parsed.get(source, stat)
            if known is not None:
                read.append((source, stat, known))
                continue
            if not self._ready(folder, source, stat, now, source in finished):
                pending.add(source)  # keep serving the previous version, if any, until it is complete
                continue
            batch.append((source, stat, self.settle > 0 and not self._held_too_long(source, stat, now)))
        for source, stat, result in self._read(folder, batch):
            if result is None or _stat(self.root / source) != stat:  # still open for writing, or written to while read
                self._look(source, stat, now)
                pending.add(source)
                continue
            if self.parsed is not None:
                self.parsed.put(source, stat, result)
            read.append((source, stat, result))
        for source, stat, result in read:
            if isinstance(result, Skipped):
                log.warning("skipped %s", result)
                self._modified.pop(source, None)
            else:
                self._modified[source] = stat[1] / 1e9
            self._entries[source] = _Entry(stat, result)
            changed.add(source)
        self._looks = {s: st for s, st in self._looks.items() if s in pending}
        for source in gone:
            del self._entries[source]
            self._modified.pop(source, None)
        if changed or self._last is None or targets is None:
            # Every article read, in path order, IDs repeated as they are: who owns a repeated ID is the
            # state store's to say (its first owner), so the publisher applies unique_ids().
            results = [self._entries[s].result for s in sorted(self._entries)]
            articles = [r for r in results if isinstance(r, Article)]
            skipped = [r for r in results if isinstance(r, Skipped)]
            # When each article's file was modified, from the stat it was read with (no second stat); a copy, so
            # this result stays as it is when later scans move on.
            modified = MappingProxyType(dict(self._modified))
            self._last = (tuple(articles), tuple(sorted(self._passed + tuple(skipped), key=lambda s: s.source)), modified)
        articles, skipped, modified = self._last
        return ScanResult(articles, skipped, frozenset(changed), frozenset(pending), modified)

    def _targets(self, folder: Folder, hints: Iterable[str]) -> set[str] | None:
        """Sources among the hinted paths; None when a folder changed (walk everything)."""
        targets = set()
        for hint in hints:
            source = folder.source_of(hint)
            if source == Folder.FULL_WALK:
                return None
            if source is not None:
                targets.add(source)
        return targets

    def _finished(self, folder: Folder, hints: Iterable[str] | None) -> set[str]:
        """Sources the watcher saw closed after writing or moved into place: complete, unless reopened since."""
        if not isinstance(hints, Mapping):
            return set()
        sources = {folder.source_of(path) for path, seen in hints.items() if seen in COMPLETE_EVENTS}
        return {s for s in sources if s is not None and s != Folder.FULL_WALK}

    def _ready(self, folder: Folder, source: str, stat: tuple[int, int], now: float, finished: bool) -> bool:
        """Whether a new or changed file is complete enough to read now.

        Complete: the watcher saw it closed after writing (or moved into place); no process has it open
        for writing (the kernel says so: folder.writing); or, where the kernel cannot say, it is older than
        the settle time or unchanged since the previous look (also for clocks that disagree). A file
        read is still checked for an open writer (read_or_skip's busy) and for a change while it was read.
        """
        if self.settle <= 0 or finished:
            return True
        look = self._looks.get(source)
        if 0 <= self.settle <= now - stat[1] / 1e9 or (look is not None and look[0] == stat):
            return True
        if folder.writing(source) is False:
            return True
        self._look(source, stat, now)
        return False

    def _look(self, source: str, stat: tuple[int, int], now: float) -> None:
        """Remember a file held back, and since when it has had this stat."""
        if self._looks.get(source, (None,))[0] != stat:
            self._looks[source] = (stat, now)

    def _held_too_long(self, source: str, stat: tuple[int, int], now: float) -> bool:
        """A file open for writing but unchanged for BUSY_HOLD_SECONDS: a writer that never closes it."""
        look = self._looks.get(source)
        return look is not None and look[0] == stat and now - look[1] >= BUSY_HOLD_SECONDS

    def _read(self, folder: Folder, batch: list[tuple[str, tuple[int, int], bool]]) -> Iterator[tuple[str, tuple[int, int], Article | Skipped | None]]:
        """Read a batch of files (in worker processes when it is big: feedsvc/reading/pool.py): (source, stat, result),
        the result None for a file another process still has open for writing."""
        stats = {source: stat for source, stat, _ in batch}
        for source, result in read_files(self.root, self.options, [(s, busy) for s, _, busy in batch], folder, self.pool_from):
            yield source, stats[source], result

    def _note_passed(self, passed: dict[str, Skipped]) -> set[str]:
        """Keep what was passed over (logging the new ones); the sources whose verdict changed."""
        before = self._passed_by_source
        noted = {s for s in passed.keys() | before.keys() if passed.get(s) != before.get(s)}
        for source in sorted(noted):
            if source in passed:
                log.info("not an article: %s", passed[source])
        self._passed_by_source = passed
        self._passed = tuple(passed.values())
        return noted


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:  # removed between listing and stat
        return None
    return st.st_size, st.st_mtime_ns

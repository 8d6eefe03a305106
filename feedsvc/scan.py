"""Incremental reading of the articles folder: stat every file, parse only new or changed ones,
and hold back a file that is still being written until it has settled.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .articles import Options, Skipped, read_or_skip
from .folder import Folder
from .model import Article
from .progress import reading

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.3  # a file changed more recently than this may still be being written


@dataclass(frozen=True)
class ScanResult:
    """What one scan found: the articles read, skipped files, and what moved."""

    articles: tuple[Article, ...]  # in path order; an ID may repeat (see unique_ids)
    skipped: tuple[Skipped, ...]
    changed: frozenset[str] = frozenset()  # sources added, changed or removed since the last scan
    pending: frozenset[str] = frozenset()  # sources still being written: looked at again shortly


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
    parsed: Any = None  # a store of parse results by (source, stat): get(source, stat) / put(source, stat, result)
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _passed: tuple[Skipped, ...] = ()
    _passed_by_source: dict[str, Skipped] = field(default_factory=dict)
    _looks: dict[str, tuple[int, int]] = field(default_factory=dict)  # stats of files not yet settled
    _last: tuple | None = None  # (articles, skipped) of the last scan, reused when nothing changed

    def scan(self, hints: Iterable[str] | None = None) -> ScanResult:
        """Look at the folder; read only files whose size or mtime changed and that have settled.

        hints: absolute paths a file watcher saw change since the last scan. Then only those (and files
        still settling) are looked at, instead of a walk of the whole folder; a folder among them, or
        no earlier scan, means a full walk.
        """
        if not self.root.is_dir():
            raise FileNotFoundError(f"articles folder {self.root} does not exist; set ARTICLES_DIR or create it")
        folder = Folder(self.root)  # its real path, resolved once per scan
        targets = None if hints is None or self._last is None else self._targets(folder, hints)
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
        for source, stat in listing.items():
            entry = self._entries.get(source)
            if entry is not None and entry.stat == stat:
                continue
            path = self.root / source
            # Parsed before with this very stat (a restart): the stored result, without reading the file.
            result = None if self.parsed is None else self.parsed.get(source, stat)
            if result is None:
                if not self._settled(source, stat, now):
                    pending.add(source)  # keep serving the previous version, if any, until it settles
                    continue
                with reading(source):  # /healthz names the file a stuck refresh is on (feedsvc/progress.py)
                    result = read_or_skip(path, self.root, self.options, folder)
                if _stat(path) != stat:  # written to while we read it
                    pending.add(source)
                    continue
                if self.parsed is not None:
                    self.parsed.put(source, stat, result)
            if isinstance(result, Skipped):
                log.warning("skipped %s", result)
            self._entries[source] = _Entry(stat, result)
            changed.add(source)
        self._looks = {s: st for s, st in self._looks.items() if s in pending}
        for source in gone:
            del self._entries[source]
        if changed or self._last is None or targets is None:
            # Every article read, in path order, IDs repeated as they are: who owns a repeated ID is the
            # state store's to say (its first owner), so the publisher applies unique_ids().
            results = [self._entries[s].result for s in sorted(self._entries)]
            articles = [r for r in results if isinstance(r, Article)]
            skipped = [r for r in results if isinstance(r, Skipped)]
            self._last = (tuple(articles), tuple(sorted(self._passed + tuple(skipped), key=lambda s: s.source)))
        return ScanResult(*self._last, frozenset(changed), frozenset(pending))

    def modified(self, source: str) -> float | None:
        """The modification time (Unix seconds) a file had when it was read, without another stat."""
        entry = self._entries.get(source)
        return entry.stat[1] / 1e9 if entry is not None else None

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

    def _settled(self, source: str, stat: tuple[int, int], now: float) -> bool:
        """Old enough to be complete, or unchanged since the previous look (also for clocks that disagree)."""
        if self.settle <= 0 or 0 <= self.settle <= now - stat[1] / 1e9:
            return True
        if self._looks.get(source) == stat:
            return True
        self._looks[source] = stat
        return False


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:  # removed between listing and stat
        return None
    return st.st_size, st.st_mtime_ns
